"""A blog written as GitHub issues: the posts list, one post, and the Atom feed.

A post is an open issue of ``BLOG_REPO`` labelled ``BLOG_LABEL`` and opened
by ``BLOG_AUTHOR`` (default: the repository's owner). Issues by anyone
else, pull requests, closed and unlabelled issues are never posts.

Every function that answers takes the app's `Deps` first (its storage holds
the cache and the counters, its clock dates the feed) and calls GitHub
through `service.github.client.call`.

`posts(deps)` is one cached entry (``BLOG_CACHE_TTL``) holding every post's
summary, fetched page by page (100 issues per page, up to `MAX_PAGES`),
each page conditional on its own ETag so an unchanged page costs a 304.
`post(deps, number)` answers only numbers in that list, from a cached entry per
post (the issue fetched conditionally, its body rendered by
`markdown.render`). ``views`` come from the visitor counter at answer time.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import cache
from ..core.config import require
from ..core.errors import NotFound
from ..core.paths import page_key
from ..core.upstream import UpstreamError, web_url
from ..github import client
from . import markdown, search

if TYPE_CHECKING:
    from ..core.deps import Deps

PER_PAGE = 100
#: Pages read: the newest 400 posts, which keeps the list one storage value (DynamoDB: under 400 KB).
MAX_PAGES = 4
WORDS_PER_MINUTE = 200
EXCERPT_CHARS = 200
FEED_ENTRIES = 20
ATOM = "http://www.w3.org/2005/Atom"
THREAD = "http://purl.org/syndication/thread/1.0"
# Characters XML 1.0 cannot carry, lone surrogates included (an upstream JSON string may hold one).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.ASCII)


def _settings(settings: Mapping[str, Any]) -> tuple[str, str, str]:
    """(repo, label, author) from ``settings``, or a `NotConfigured` error."""
    (repo,) = require(settings, "BLOG_REPO")
    return repo, settings["BLOG_LABEL"], author_of(settings)


def author_of(settings: Mapping[str, Any]) -> str:
    """Whose issues are posts: ``BLOG_AUTHOR``, or the owner of ``BLOG_REPO`` (which must be set)."""
    return settings["BLOG_AUTHOR"] or settings["BLOG_REPO"].split("/", 1)[0]


def slugify(title: str) -> str:
    """``"Hello, World!"`` -> ``"hello-world"`` (ASCII letters and digits joined by hyphens; at most 80)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:80].rstrip("-") or "post"


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    cut = text[:EXCERPT_CHARS].rsplit(" ", 1)[0] or text[:EXCERPT_CHARS]
    return cut.rstrip(" ,;:.-") + "…"


def is_post(issue: Any, label: str, author: str) -> bool:
    """Whether a GitHub issue object is a published post (see the module docstring)."""
    if not isinstance(issue, dict) or "pull_request" in issue or issue.get("state") != "open":
        return False
    user = issue.get("user") if isinstance(issue.get("user"), dict) else {}
    if not isinstance(user.get("login"), str) or user["login"].lower() != author.lower():
        return False
    if not isinstance(issue.get("number"), int) or not isinstance(issue.get("title"), str):
        return False
    return label.lower() in {name.lower() for name in _labels(issue)}


def _labels(issue: dict) -> list[str]:
    return [item["name"] if isinstance(item, dict) else item for item in issue.get("labels") or []
            if isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("name"), str))]


#: The label that shows a post first on the blog's index (any case). It is a signal, not a topic: a summary
#: carries it as ``pinned`` (true or false), never among its ``tags``.
PIN_LABEL = "pinned"


def timestamp(value: Any) -> str | None:
    """``value`` if it is an RFC 3339 date-time string (what GitHub sends) of a real moment, else None: an
    upstream's malformed date is no date."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    try:  # the pattern passes a 13th month or a 25-hour offset
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def summary(issue: dict, label: str, *, terms: bool = False) -> dict[str, Any]:
    """A post's list fields (``views`` is added when answering); with ``terms``, also the body's words for
    search (`search.index_terms`: the list holds them, the answers do not)."""
    text = markdown.plain(issue.get("body") if isinstance(issue.get("body"), str) else "")
    return {**({"terms": search.index_terms(text)} if terms else {}),
        "number": issue["number"],
        "title": issue["title"],
        "slug": slugify(issue["title"]),
        "created_at": timestamp(issue.get("created_at")),
        "updated_at": timestamp(issue.get("updated_at")),
        "tags": [name for name in _labels(issue) if name.lower() not in (label.lower(), PIN_LABEL)],
        "pinned": any(name.lower() == PIN_LABEL for name in _labels(issue)),
        "reading_minutes": max(1, math.ceil(len(text.split()) / WORDS_PER_MINUTE)),
        "excerpt": _excerpt(text),
        "comments": comment_count(issue),
    }


def comment_count(issue: dict) -> int:
    """GitHub's count of an issue's comments (0 when missing or malformed)."""
    count = issue.get("comments")
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def is_pinned(item: dict[str, Any]) -> bool:
    """Whether a post summary carries the `PIN_LABEL` label (its ``pinned`` field)."""
    return item.get("pinned") is True


def pinned_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` with the pinned posts first; each group keeps its order (newest first)."""
    return sorted(items, key=lambda item: not is_pinned(item))


#: In every blog cache key: raised when what is kept of an issue changes (a summary's fields, the Markdown
#: rendering), since an entry cached before would otherwise be served as long as GitHub answers 304.
CACHE_VERSION = 3


def _list_key(repo: str, label: str, author: str) -> str:
    return f"blog:posts:v{CACHE_VERSION}:{repo.lower()}:{label.lower()}:{author.lower()}"


def posts(deps: Deps) -> tuple[list[dict[str, Any]], cache.Cached]:
    """Every post's summary, newest first, and the cache result; `Unavailable` when unavailable."""
    repo, label, author = _settings(deps.settings)
    result = cache.cached(deps, _list_key(repo, label, author), deps.settings["BLOG_CACHE_TTL"],
                          lambda previous: _fetch_posts(deps, repo, label, author, previous))
    return result.value, result


def _fetch_posts(deps: Deps, repo: str, label: str, author: str, previous: cache.Entry | None) -> cache.Entry:
    """Refresh the list page by page (see `fetch_pages`)."""
    params = {"state": "open", "labels": label, "creator": author, "sort": "created", "direction": "desc"}
    # Kept in GitHub's order (created, newest first): a 304 page is a slice of this very list, so
    # re-sorting (say by number: a transferred issue has a new number and an old date) would shift it.
    return fetch_pages(deps, f"/repos/{repo}/issues", params, previous, MAX_PAGES,
                       lambda data: [summary(issue, label, terms=True) for issue in data
                                     if is_post(issue, label, author)])


def fetch_pages(deps: Deps, path: str, params: dict[str, Any], previous: cache.Entry | None, max_pages: int,
                keep: Callable[[list], list]) -> cache.Entry:
    """A GitHub list read page by page (100 a page, following ``rel="next"``, at most ``max_pages``), each
    page conditional on its own ETag: a page answered 304 reuses its share of ``previous``'s value.

    ``keep`` turns one page's JSON list into the items kept. Raises `UpstreamError`.
    """
    old_pages = previous.state.get("pages", []) if previous and isinstance(previous.state, dict) else []
    old_items = previous.value if previous else []
    found: list[Any] = []
    pages: list[dict[str, Any]] = []
    for index in range(max_pages):
        known = old_pages[index] if index < len(old_pages) else None
        answer = client.call(deps, path, params={**params, "per_page": PER_PAGE, "page": index + 1},
                             etag=known["etag"] if known else None)
        if answer.status == 304:
            if known is None:
                raise UpstreamError("GitHub answered 304 to an unconditional request", status=304, transient=True)
            start = sum(page["count"] for page in old_pages[:index])
            kept = old_items[start:start + known["count"]]
            has_next = index + 1 < len(old_pages)
        else:
            if not isinstance(answer.data, list):
                raise UpstreamError("GitHub answer is not a list", status=200, transient=True)
            kept = keep(answer.data)
            has_next = answer.has_next and len(answer.data) > 0
        found.extend(kept)
        pages.append({"etag": answer.etag, "count": len(kept)})
        if not has_next:
            break
    return cache.Entry(found, state={"pages": pages})


def with_views(deps: Deps, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` with each post's visitor-counter ``views`` (page ``/blog/<number>``), read in one storage call."""
    keys = {item["number"]: page_key(f"/blog/{item['number']}") for item in items}
    counts = deps.storage.counters(list(keys.values()), consistent=False) if keys else {}
    return [{**item, "views": counts.get(keys[item["number"]], 0)} for item in items]


def post(deps: Deps, number: int) -> tuple[dict[str, Any], list[cache.Cached]]:
    """One post with its ``html`` and ``views``; a `NotFound` error unless it is published; 503 when unavailable."""
    found, results = published(deps, number)
    return with_views(deps, [found])[0], results


def published(deps: Deps, number: int,
              listed: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[cache.Cached]]:
    """One post with its ``html`` (no ``views``: no counter read); errors as `post`.

    ``listed`` is the posts list when the caller already holds it (the feeds read many posts: the list is
    then read once, not once per post); the results then hold only the post's own entry.
    """
    repo, label, author = _settings(deps.settings)
    results = []
    if listed is None:
        listed, listing = posts(deps)
        results.append(listing)
    if not any(item["number"] == number for item in listed):
        raise NotFound(f"there is no post {number}")
    result = cache.cached(deps, f"{_list_key(repo, label, author)}:{number}", deps.settings["BLOG_CACHE_TTL"],
                          lambda previous: _fetch_post(deps, repo, label, author, number, previous))
    if result.value is None:
        raise NotFound(f"there is no post {number}")
    return result.value, [*results, result]


def _fetch_post(deps: Deps, repo: str, label: str, author: str, number: int,
                previous: cache.Entry | None) -> cache.Entry:
    etag = previous.state.get("etag") if previous and isinstance(previous.state, dict) else None
    try:
        answer = client.call(deps, f"/repos/{repo}/issues/{number}", etag=etag)
    except UpstreamError as exc:
        if exc.status in (404, 410):  # deleted or moved: not a post (remembered like any answer)
            return cache.Entry(None)
        raise
    if answer.status == 304:
        if previous is None:
            raise UpstreamError("GitHub answered 304 to an unconditional request", status=304, transient=True)
        return previous
    issue = answer.data
    if not isinstance(issue, dict):
        raise UpstreamError("GitHub issue answer is not an object", status=200, transient=True)
    if not is_post(issue, label, author):
        return cache.Entry(None, state={"etag": answer.etag})
    body = issue.get("body") if isinstance(issue.get("body"), str) else ""
    return cache.Entry({**summary(issue, label), "html": markdown.render(body), "reactions": reactions(issue),
                        "html_url": web_url(issue.get("html_url"))},
                       state={"etag": answer.etag})


#: GitHub's reaction names, in the order GitHub shows them.
REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")


def reactions(issue: dict) -> dict[str, int]:
    """The non-zero reaction totals of an issue or comment (GitHub's ``reactions`` object), in GitHub's order."""
    given = issue.get("reactions") if isinstance(issue.get("reactions"), dict) else {}
    return {name: given[name] for name in REACTIONS
            if isinstance(given.get(name), int) and not isinstance(given[name], bool) and given[name] > 0}


def address(item: dict[str, Any]) -> str:
    """A post's canonical path: ``/blog/<number>/<slug>``."""
    return f"/blog/{item['number']}/{item['slug']}"


def page(deps: Deps, items: list[dict[str, Any]], *, number: int, per_page: int, tag: str | None) -> dict[str, Any]:
    """The list answer: posts with ``tag`` (any case), page ``number`` of ``per_page``, with views."""
    if tag:
        items = [item for item in items if tag.lower() in (t.lower() for t in item["tags"])]
    start = (number - 1) * per_page
    shown = [{k: v for k, v in item.items() if k != "terms"} for item in items[start:start + per_page]]
    return {"posts": with_views(deps, shown), "page": number, "per_page": per_page, "total": len(items)}


def _xml_text(value: Any) -> str:
    return _XML_INVALID.sub("", value) if isinstance(value, str) else ""


def feed(deps: Deps, items: list[dict[str, Any]], contents: dict[int, str] | None = None,
         self_path: str = "/api/blog/feed.xml", *, counts: bool = False) -> bytes:
    """An Atom feed (RFC 4287) of the latest posts, as UTF-8 XML, served at ``self_path`` of ``SITE_URL``.

    Each entry links to the post's page and carries its summary and, when ``contents`` has the post's
    number, its full sanitised HTML as ``<content type="html">``; with ``counts``, its comment count
    (RFC 4685: ``<link rel="replies" thr:count>`` to the page's comments and ``<thr:total>``). With no post
    dated, the feed's ``updated`` is now by the app's clock.
    """
    import xml.etree.ElementTree as ET

    _, _, author = _settings(deps.settings)
    site = deps.settings["SITE_URL"]
    latest = items[:FEED_ENTRIES]
    # timestamp() again: a list cached before summaries checked their dates may hold numbers
    updated = max(filter(None, (timestamp(item.get("updated_at")) for item in latest)), default=None) or (
        dt.datetime.fromtimestamp(deps.now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root = ET.Element("feed", {"xmlns": ATOM, **({"xmlns:thr": THREAD} if counts else {})})

    def add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
        element = ET.SubElement(parent, tag, attributes)
        if text is not None:
            element.text = _xml_text(text)
        return element

    add(root, "id", f"{site}/blog/")
    add(root, "title", f"{author}'s blog")
    add(root, "updated", updated)
    add(root, "link", rel="self", type="application/atom+xml", href=f"{site}{self_path}")
    add(root, "link", rel="alternate", type="text/html", href=f"{site}/blog/")
    add(add(root, "author"), "name", author)
    add(root, "generator", "Vitae")
    for item in latest:
        entry = add(root, "entry")
        # the id stays /blog/<n> (stable when the title, so the slug, changes); the link is the canonical page
        add(entry, "id", f"{site}/blog/{item['number']}")
        add(entry, "title", item["title"])
        add(entry, "link", rel="alternate", type="text/html", href=site + address(item))
        published = timestamp(item.get("created_at"))
        add(entry, "published", published or updated)
        add(entry, "updated", timestamp(item.get("updated_at")) or published or updated)
        for tag in item["tags"]:
            add(entry, "category", term=_xml_text(tag))
        add(entry, "summary", item["excerpt"])
        if contents and item["number"] in contents:
            add(entry, "content", contents[item["number"]], type="html")
        if counts:
            total = str(item.get("comments", 0))
            add(entry, "link", rel="replies", type="text/html", href=f"{site}{address(item)}#comments",
                **{"thr:count": total})
            add(entry, "thr:total", total)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)
