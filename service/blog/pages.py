"""The blog as server-rendered pages, feeds and sitemap (the same templates, stylesheet and CSP as the site).

Addresses (all GET; each answers 404 while ``BLOG_REPO`` is empty, except the sitemap):

* ``/blog/`` — the posts, pinned ones first (label ``pinned``), then newest first, 10 a page; ``?tag=``
  (any case) and ``?page=``; ``?q=`` searches (`service.blog.search`: best first, no pins).
* ``/blog/<number>/<slug>`` — one post with its reactions and comments; a wrong or missing slug
  answers 301 to the right one, as do the old addresses ``/blog/<number>`` and
  ``/blog/post.html?n=<number>``.
* ``/blog/<number>/card.png`` — the post's share card (`service.blog.card`), named by its page's
  ``og:image`` and ``twitter:image``.
* ``/blog/feed.xml`` (Atom) and ``/blog/feed.json`` (JSON Feed 1.1): the latest posts in full.
* ``/sitemap.xml`` — the resume, the blog and every published post with its ``lastmod``.

Pages come from the cached issues (`service.blog.posts`, `service.blog.comments`): rendering calls
GitHub only when a cache entry is past ``BLOG_CACHE_TTL``. Every answer carries an ETag and,
where the data has one, ``Last-Modified``, and answers 304 to a matching conditional request;
``Cache-Control`` lets a CDN keep it for what is left of the TTL (``s-maxage``), serve it stale
while it revalidates and when the app fails, while browsers revalidate every time
(``max-age=0``). A post that is unpublished, closed or deleted answers 404 and leaves the
index, the feeds and the sitemap within the TTL. Bad numbers, tags and pages answer a 4xx page,
never a 500. The script adds only the live view count.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from html import unescape
from typing import Any

from flask import Blueprint, Flask, Response, current_app, redirect, request

from ..core.deps import Deps, current
from ..core.errors import Invalid, NotConfigured, NotFound, ServiceError, status_of
from ..core.http import query_int
from ..theme.responses import Memo, Rendered, negotiate_gzip

bp = Blueprint("blogpages", __name__)

PER_PAGE = 10
MAX_PAGE = 10_000
MAX_TAG = 100
#: Seconds a CDN may serve a page past its freshness while it fetches a new one, or while the app fails.
STALE_IF_ERROR = 86400
_HEADING = re.compile(r"<(/?)h([1-6])\b", re.I)
_FIRST_IMAGE = re.compile(r'<img\b[^>]*?\ssrc="(https?://[^"]+)"', re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Rendered post pages kept per process (with their gzip): a cached post costs its storage reads, no render.
MEMO_PAGES = 64
REACTION_SIGNS = {"+1": ("👍", "thumbs up"), "-1": ("👎", "thumbs down"), "laugh": ("😄", "laugh"),
                  "hooray": ("🎉", "hooray"), "confused": ("😕", "confused"), "heart": ("❤️", "heart"),
                  "rocket": ("🚀", "rocket"), "eyes": ("👀", "eyes")}


#: The HTML error page of an error code: (status, heading, sentence); a None status is the error table's
#: (`status_of`), a None sentence the error's own message. Other errors: their status from the table with
#: the heading "Bad request", or, for a 5xx, a 503 "Blog unavailable".
ERROR_PAGES: dict[str, tuple[int | None, str, str | None]] = {
    "not_configured": (404, "Page not found", "There is no blog here."),  # no blog: a missing page, not a 503
    "not_found": (None, "Post not found", "There is no post at this address. It may have been removed."),
    "no_such_post": (None, "Post not found", None),
    "no_such_page": (None, "Page not found", None),
}
_UNAVAILABLE = "The posts cannot be loaded right now. Please try again in a few minutes."


# --- what the templates know -------------------------------------------------------------


def _render(template: str, **values: Any) -> str:
    from ..theme import render
    return render.render(template, reaction_signs=REACTION_SIGNS, **values)


def demote_headings(html: str, top: int) -> str:
    """``html`` with its headings shifted so the highest is ``<h{top}>`` (relative levels kept; at most h6).

    Only for the sanitiser's output, whose tags are well-formed and lower case.
    """
    levels = [int(level) for _, level in _HEADING.findall(html)]
    shift = top - min(levels) if levels else 0
    if shift <= 0:
        return html
    return _HEADING.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}", html)


def json_ld(data: dict[str, Any]) -> str:
    """JSON for a ``<script type="application/ld+json">`` block: nothing in it can close the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- answers -----------------------------------------------------------------------------


def _memoised(key: tuple, make: Callable[[], Rendered]) -> Rendered:
    """``make()``, kept per app and process under ``key`` (the cache entries' fetch times: a new fetch, a new
    key), the `MEMO_PAGES` most recently used."""
    memo: Memo = current_app.extensions["vitae.blog_pages"]
    return memo.get(key, make)


def _respond(page: Rendered, mimetype: str, results: list, *, compress: bool = True) -> Response:
    """A cacheable answer: ETag, Last-Modified, CDN-friendly Cache-Control, gzip (unless not ``compress``),
    304 when unchanged."""
    from ..theme import render
    response = Response(page.data, mimetype=mimetype)
    results = [r for r in results if r is not None]
    ttl = min((r.ttl for r in results), default=current().settings["BLOG_CACHE_TTL"])
    fresh = min((r.max_age for r in results), default=ttl)
    response.headers["Cache-Control"] = (f"public, max-age=0, s-maxage={fresh}, stale-while-revalidate={ttl}, "
                                         f"stale-if-error={STALE_IF_ERROR}")
    response.set_etag(page.etag)
    stamp = render.parse_time(page.modified)
    if stamp:
        response.last_modified = stamp
    response = response.make_conditional(request)
    return negotiate_gzip(response, len(page.data), page.gzipped) if compress else response


def _latest(values: list[Any]) -> str | None:
    from ..theme import render
    stamps = [v for v in values if render.parse_time(v)]
    return max(stamps, key=render.parse_time) if stamps else None


def _error_page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> Response:
    from ..theme.resume import ResumeError
    try:
        html = _render("blog/error.html", page={"canonical": None, "counted": None}, status=status, heading=title,
                       message=message)
    except (OSError, ResumeError):  # the error page must not fail on an unreadable resume
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    response = Response(html, status=status, mimetype="text/html")
    # a CDN may keep a missing post a minute; other errors are never cached
    response.headers["Cache-Control"] = ("public, max-age=0, s-maxage=60" if status in (404, 410) else "no-store")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(ServiceError)
def error_page(exc: ServiceError):
    """Every error of the blog's pages as an HTML page, its status from the error table (`status_of`)."""
    status = status_of(exc)
    if exc.code in ERROR_PAGES:
        fixed, heading, sentence = ERROR_PAGES[exc.code]
        return _error_page(fixed or status, heading, sentence or exc.message)
    if status >= 500:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return _error_page(503, "Blog unavailable", _UNAVAILABLE, headers)
    return _error_page(status, "Bad request", exc.message if exc.message.endswith(".") else f"{exc.message}.")


def _require_blog() -> None:
    if not current().settings["BLOG_REPO"]:
        raise NotConfigured("There is no blog here.", missing=["BLOG_REPO"])


def _number(raw: str | None) -> int:
    """A post number from an address: 1 to 999,999,999, else a 404 page."""
    if not raw or not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise NotFound("This address does not name a post.", code="no_such_post")
    return int(raw)


def _tag() -> str | None:
    tag = " ".join(request.args.get("tag", "").split())
    if len(tag) > MAX_TAG or _CONTROL.search(tag):
        raise Invalid(f"A tag is at most {MAX_TAG} printable characters.", code="invalid_tag")
    return tag or None


def _search() -> tuple[str | None, list[str]]:
    """The search (``?q=``) as typed, whitespace collapsed, and its words; (None, []) for none; a 400 page."""
    from . import search
    try:
        words = search.parse(request.args.get("q"))
    except ServiceError as exc:
        raise Invalid(f"{exc.message} Try fewer words.", code="invalid_q") from exc
    return (" ".join(request.args["q"].split()), words) if words is not None else (None, [])


def _index_address(tag: str | None, number: int, query: str | None = None) -> str:
    from urllib.parse import urlencode

    query = urlencode([(k, v) for k, v in (("tag", tag), ("q", query), ("page", number if number > 1 else None))
                       if v])
    return "/blog/" + (f"?{query}" if query else "")


# --- routes ------------------------------------------------------------------------------


@bp.get("/blog/")
def index():
    from ..theme import render
    from . import posts, search
    _require_blog()
    tag = _tag()
    query, words = _search()
    number = query_int("page", 1, 1, MAX_PAGE)
    deps = current()
    items, listing = posts.posts(deps)
    chosen = [i for i in items if tag.lower() in (t.lower() for t in i["tags"])] if tag else items
    chosen = search.rank(chosen, words) if query else posts.pinned_first(chosen)
    pages = max(1, math.ceil(len(chosen) / PER_PAGE))
    if number > pages:
        raise NotFound(f"The blog has {pages} page{'s' if pages > 1 else ''}{' for this tag' if tag else ''}.",
                       code="no_such_page")
    shown = chosen[(number - 1) * PER_PAGE:number * PER_PAGE]
    tags = sorted({t for i in items for t in i["tags"]}, key=str.lower)
    site = render.context()[1]
    html = _render("blog/index.html", posts=shown, tag=tag, tags=tags, number=number, pages=pages,
                   is_pinned=posts.is_pinned, query=query, found=len(chosen),
                   comments_on=deps.settings["BLOG_COMMENTS"],
                   max_query=search.MAX_QUERY, address=posts.address, index_address=_index_address,
                   page={"canonical": site["url"] + _index_address(tag, number, query), "counted": "/blog",
                         "prev": _index_address(tag, number - 1, query) if number > 1 else None,
                         "next": _index_address(tag, number + 1, query) if number < pages else None})
    return _respond(Rendered.of(html, _latest([i.get("updated_at") for i in items])), "text/html", [listing])


@bp.get("/blog/index.html")
def index_file():
    return redirect(_index_address(request.args.get("tag") or None, 1), code=301)


@bp.get("/blog/post.html")
def old_post_address():
    _require_blog()
    return _to_canonical(current(), _number(request.args.get("n")))


@bp.get("/blog/<raw>")
@bp.get("/blog/<raw>/")
def short_post_address(raw: str):
    _require_blog()
    return _to_canonical(current(), _number(raw))


def _to_canonical(deps: Deps, number: int) -> Response:
    from . import posts
    items, _ = posts.posts(deps)
    found = next((item for item in items if item["number"] == number), None)
    if found is None:
        raise NotFound(f"there is no post {number}")
    response = redirect(posts.address(found), code=301)
    response.headers["Cache-Control"] = f"public, max-age=0, s-maxage={deps.settings['BLOG_CACHE_TTL']}"
    return response


@bp.get("/blog/<raw>/<slug>")
def post_page(raw: str, slug: str):
    from ..theme import render
    from . import comments, posts
    _require_blog()
    number = _number(raw)
    deps = current()
    post, results = posts.published(deps, number)
    if slug != post["slug"]:
        return _to_canonical(deps, number)
    replies, replies_result = comments.comments(deps, post)
    # the page changes only with a new fetch of the post or its comments (or another resume, app, setting)
    key = (render.resume_version(), number, results[-1].fetched_at,
           replies_result.fetched_at if replies_result else None)
    page = _memoised(key, lambda: _post_page(deps, post, replies))
    return _respond(page, "text/html", [*results, replies_result])


def _card_version(post: dict[str, Any], site: dict[str, Any]) -> tuple[str, str]:
    """(version, date) of ``post``'s share card: what names it and the date it shows."""
    from ..theme import render
    from . import card
    date = render.long_date(post.get("created_at"))
    return card.version(post["title"], site["name"], date), date


@bp.get("/blog/<raw>/card.png")
def card_image(raw: str):
    """A published post's share card (PNG), cached like the pages; a conditional request that names the
    current card is answered 304 before any drawing or storage read of the card."""
    from ..theme import render
    from . import card, posts
    _require_blog()
    number = _number(raw)
    deps = current()
    post, results = posts.published(deps, number)
    site = render.context()[1]
    name, date = _card_version(post, site)
    if request.if_none_match.contains_weak(name):
        page = Rendered(b"", name, post.get("updated_at"))  # make_conditional turns it into the 304
    else:
        page = _memoised(("card", name), lambda: Rendered(card.card(deps, post, site["name"], date)[1], name,
                                                          post.get("updated_at")))
    return _respond(page, "image/png", results, compress=False)


def _post_page(deps: Deps, post: dict[str, Any], replies: list[dict[str, Any]]) -> Rendered:
    from ..theme import render
    from . import card, comments, posts, toc
    number = post["number"]
    site = render.context()[1]
    canonical = site["url"] + posts.address(post)
    share = {"url": f"{site['url']}/blog/{number}/card.png?v={_card_version(post, site)[0]}",
             "width": card.WIDTH, "height": card.HEIGHT, "alt": f"{post['title']} · {site['name']}"}
    image = _FIRST_IMAGE.search(post["html"])
    # the src as the sanitised HTML holds it (``&amp;``): unescaped, or the template's escaping doubles it
    image = unescape(image.group(1)) if image else site["photo_absolute"]
    modified = _latest([post.get("updated_at"), *(c.get("updated_at") for c in replies)]) or post.get("created_at")
    author = posts.author_of(deps.settings)
    structured = {
        "@context": "https://schema.org", "@type": "BlogPosting", "headline": post["title"],
        "description": post["excerpt"], "url": canonical, "mainEntityOfPage": canonical,
        "datePublished": post.get("created_at"), "dateModified": post.get("updated_at") or post.get("created_at"),
        "author": {"@type": "Person", "name": site["name"], "url": site["url"] + "/"},
        "keywords": post["tags"], "commentCount": len(replies),
        **({"image": image} if image else {}),
    }
    body, headings = toc.anchor(demote_headings(post["html"], 2))
    html = _render("blog/post.html", post={**post, "html": body},
                   contents=headings if len(headings) >= toc.MIN_HEADINGS else [],
                   comments=[{**c, "html": demote_headings(c["html"], 4)} for c in replies],
                   comments_on=comments.enabled(deps.settings), share=share, json_ld=json_ld(structured),
                   github_author=author,
                   page={"canonical": canonical, "counted": f"/blog/{number}"})
    return Rendered.of(html, modified)


@bp.get("/blog/feed.xml")
def atom_feed():
    from . import feeds, posts
    _require_blog()
    deps = current()
    items, listing = posts.posts(deps)
    body = posts.feed(deps, items, feeds.contents(deps, items), self_path="/blog/feed.xml",
                      counts=deps.settings["BLOG_COMMENTS"])
    return _respond(Rendered.of(body, _latest([i.get("updated_at") for i in items])), "application/atom+xml",
                    [listing])


@bp.get("/blog/feed.json")
def json_feed():
    from . import feeds, posts
    _require_blog()
    deps = current()
    items, listing = posts.posts(deps)
    body = feeds.json_feed(deps, items, feeds.contents(deps, items), counts=deps.settings["BLOG_COMMENTS"])
    return _respond(Rendered.of(body, _latest([i.get("updated_at") for i in items])), "application/feed+json",
                    [listing])


@bp.get("/sitemap.xml")
def sitemap():
    from ..theme import render
    from . import posts
    items, results = [], []
    deps = current()
    if deps.settings["BLOG_REPO"]:
        try:
            items, listing = posts.posts(deps)
            results.append(listing)
        except ServiceError:  # the resume's entries still make a sitemap
            items = []
    body = _render("sitemap.xml", posts=items, address=posts.address, iso_date=render.iso_date)
    return _respond(Rendered.of(body), "application/xml", results)


def setup(app: Flask) -> None:
    """Give ``app`` its memo of rendered post pages."""
    app.extensions["vitae.blog_pages"] = Memo(max_items=MEMO_PAGES, size=lambda page: len(page.data))
