"""Search over the posts' titles, labels and bodies, from the cached posts list alone.

`parse(raw)` checks a query (at most `MAX_QUERY` characters, no control characters; an `Invalid`
error otherwise) and splits it into at most `MAX_TERMS` distinct words. `rank(items, words)` keeps
the posts that match any word, best first: more of the words matched, then a higher score (per word:
`TITLE` for each time it is a word of the title, `LABEL` when it is a label's word, and the times it
is in the body, at most `BODY_CAP`), then newest first.

A word matches a whole word, any case and accents kept (``café`` is not ``cafe``). The body is
searched through the summary's ``excerpt`` and its ``terms``: `index_terms` keeps the body's most
frequent words with their counts in at most `TERMS_CHARS` characters, so that the list of 400 posts
stays one storage value (DynamoDB: 400 KB). A word used only once or twice deep in a long post can
therefore be missed; titles and labels are searched whole.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..core.errors import Invalid

MAX_QUERY = 100
MAX_TERMS = 10
TERMS_CHARS = 300
TITLE = 10
LABEL = 6
BODY_CAP = 10
_WORD = re.compile(r"\w+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Words too common to tell posts apart (English; a query of only these finds nothing).
STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "how", "i", "if", "in",
    "is", "it", "its", "not", "of", "on", "or", "so", "that", "the", "their", "this", "to", "was", "we", "what",
    "when", "which", "who", "why", "will", "with", "you", "your"))


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded, in order (stop words and one-letter words left out)."""
    return [w for w in _WORD.findall(text.casefold()) if len(w) > 1 and w not in STOP_WORDS]


def parse(raw: str | None) -> list[str] | None:
    """The distinct words of query ``raw`` (at most `MAX_TERMS`); None for no query; `Invalid` when hostile."""
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_QUERY or _CONTROL.search(raw):
        raise Invalid(f"A search is at most {MAX_QUERY} printable characters.", code="invalid_q")
    return list(dict.fromkeys(words(raw)))[:MAX_TERMS]


def index_terms(text: str) -> str:
    """``text``'s most frequent words as ``"word*count word ..."`` (count written when above 1), in at most
    `TERMS_CHARS` characters: what `rank` searches a body by beyond its excerpt."""
    kept, size = [], 0
    for word, count in Counter(words(text)).most_common():
        token = f"{word}*{count}" if count > 1 else word
        if size + len(token) + 1 > TERMS_CHARS:
            continue
        kept.append(token)
        size += len(token) + 1
    return " ".join(kept)


def _body_counts(item: dict[str, Any]) -> Counter:
    counts: Counter = Counter()
    for token in (item.get("terms") or "").split():
        word, _, count = token.partition("*")
        counts[word] = max(counts[word], int(count) if count.isdigit() else 1)
    for word, count in Counter(words(item.get("excerpt") or "")).items():
        counts[word] = max(counts[word], count)  # the excerpt is the body's start: already counted in terms
    return counts


def rank(items: list[dict[str, Any]], query: list[str]) -> list[dict[str, Any]]:
    """The ``items`` (newest first) that match any of ``query``'s words, best first (see the module)."""
    found = []
    for position, item in enumerate(items):
        title = Counter(words(item["title"]))
        labels = {w for tag in item["tags"] for w in words(tag)}
        body = _body_counts(item)
        matched, score = 0, 0
        for word in query:
            points = TITLE * title[word] + (LABEL if word in labels else 0) + min(body[word], BODY_CAP)
            matched += points > 0
            score += points
        if matched:
            found.append((-matched, -score, position, item))
    return [item for *_, item in sorted(found, key=lambda entry: entry[:3])]
