"""A post's comments: the GitHub issue's comments, sanitised exactly like post bodies.

`comments(deps, post)` answers the comments of a post (as `service.blog.posts.post`
returned it) from one cached entry per post (``BLOG_CACHE_TTL``), read
page by page (100 a page, following ``rel="next"``, at most `MAX_PAGES`),
each page conditional on its ETag so an unchanged page costs a 304, which
GitHub does not count against the rate limit. A post whose issue has no
comments costs no call at all. With ``BLOG_COMMENTS`` off the answer is
always empty and GitHub is never asked.

Each comment is ``{id, author, author_url, created_at, updated_at, url,
html, reactions}``; ``html`` comes from `markdown.render`, the function that
renders post bodies, so a comment can carry nothing a post could not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core import cache
from ..core.upstream import web_url
from . import markdown, posts

if TYPE_CHECKING:
    from ..core.deps import Deps

#: Pages of 100 comments read per post: 300 comments keep one storage value under DynamoDB's 400 KB.
MAX_PAGES = 3


def enabled(settings: Mapping[str, Any]) -> bool:
    """Whether ``settings`` show comments (``BLOG_COMMENTS``)."""
    return bool(settings["BLOG_COMMENTS"])


def comments(deps: Deps, post: dict[str, Any]) -> tuple[list[dict[str, Any]], cache.Cached | None]:
    """The post's comments, oldest first, and the cache result (None when nothing was looked up).

    Raises an `Unavailable` error when GitHub fails and nothing is cached.
    """
    if not enabled(deps.settings) or not post.get("comments"):
        return [], None
    repo, label, author = posts._settings(deps.settings)
    number = post["number"]
    result = cache.cached(deps, f"{posts._list_key(repo, label, author)}:{number}:comments",
                          deps.settings["BLOG_CACHE_TTL"],
                          lambda previous: posts.fetch_pages(deps, f"/repos/{repo}/issues/{number}/comments", {},
                                                             previous, MAX_PAGES, _keep))
    return result.value, result


def _keep(page: list) -> list[dict[str, Any]]:
    return [c for c in (comment(item) for item in page) if c is not None]


def comment(item: Any) -> dict[str, Any] | None:
    """One GitHub comment as shown under a post, or None when it is malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        return None
    user = item.get("user") if isinstance(item.get("user"), dict) else {}
    login = user.get("login") if isinstance(user.get("login"), str) else "ghost"
    body = item.get("body") if isinstance(item.get("body"), str) else ""
    return {
        "id": item["id"],
        "author": login,
        "author_url": web_url(user.get("html_url")),
        "created_at": posts.timestamp(item.get("created_at")),
        "updated_at": posts.timestamp(item.get("updated_at")),
        "url": web_url(item.get("html_url")),
        "html": markdown.render(body),
        "reactions": posts.reactions(item),
    }
