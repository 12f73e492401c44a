"""Heading anchors and a table of contents for a post's sanitised HTML.

`anchor(html)` gives every heading an ``id`` and a self-link, and returns the headings for a table of
contents (the post page shows one from `MIN_HEADINGS` headings). An id is ``h-`` and the slug of the
heading's own text (Unicode letters and digits joined by hyphens, at most `MAX_SLUG` characters),
with ``--2``, ``--3``... for a repeated text (a slug never holds two hyphens in a row, so no heading's
own slug can equal another's numbered one): editing, adding or removing another heading never changes
it, unless that heading has the same text. The ``h-`` prefix keeps an author's heading from taking an
id the page itself uses (``main``, ``post-title``, ``comments``...), and the slug's characters need
no escaping. The sanitiser lets no ``id`` through, so these are the only ones in a post's body.
"""

from __future__ import annotations

import html as htmllib
import re
from typing import NamedTuple

MIN_HEADINGS = 3
MAX_SLUG = 64
PREFIX = "h-"
# The sanitiser's output: headings carry no attribute and never nest.
_HEADING = re.compile(r"<h([1-6])>(.*?)</h\1>", re.S)
_TAG = re.compile(r"<[^>]*>")
_NOT_WORD = re.compile(r"[\W_]+")


class Heading(NamedTuple):
    level: int
    id: str
    text: str


def slug(text: str) -> str:
    """``"Why Redis? (2027)"`` -> ``"why-redis-2027"``; ``"section"`` when nothing is left."""
    return _NOT_WORD.sub("-", text.casefold()).strip("-")[:MAX_SLUG].rstrip("-") or "section"


def anchor(html: str) -> tuple[str, list[Heading]]:
    """``html`` (sanitised) with ids and self-links on its headings, and those headings in order."""
    headings: list[Heading] = []
    seen: dict[str, int] = {}

    def replace(match: re.Match) -> str:
        level, inner = int(match.group(1)), match.group(2)
        text = " ".join(htmllib.unescape(_TAG.sub("", inner)).split())
        base = PREFIX + slug(text)
        seen[base] = seen.get(base, 0) + 1
        ident = base if seen[base] == 1 else f"{base}--{seen[base]}"
        headings.append(Heading(level, ident, text))
        return (f'<h{level} id="{ident}">{inner} <a class="anchor" href="#{ident}">'
                f'<span aria-hidden="true">#</span><span class="visually-hidden">Link to this section</span>'
                f"</a></h{level}>")

    return _HEADING.sub(replace, html), headings
