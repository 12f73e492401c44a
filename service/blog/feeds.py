"""What the blog's two feeds share beyond the list: each latest post's full HTML, and the JSON Feed.

`contents` reads the newest `posts.FEED_ENTRIES` posts from their cached entries (one conditional
GitHub call per post only when its entry is past the TTL); a post that cannot be read right now is
carried with its summary alone. `json_feed` writes JSON Feed 1.1 (https://jsonfeed.org/version/1.1).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..core.errors import ServiceError
from . import posts

if TYPE_CHECKING:
    from ..core.deps import Deps


def contents(deps: Deps, items: list[dict[str, Any]]) -> dict[int, str]:
    """{post number: sanitised HTML} for the posts a feed carries (``items``: the posts list)."""
    found = {}
    for item in items[:posts.FEED_ENTRIES]:
        try:
            post, _ = posts.published(deps, item["number"], items)
        except ServiceError:  # gone since the list was read, or GitHub is down with nothing cached
            continue
        found[item["number"]] = post["html"]
    return found


def json_feed(deps: Deps, items: list[dict[str, Any]], html: dict[int, str], *, counts: bool = False) -> bytes:
    """JSON Feed 1.1 of the latest posts, with ``content_html`` where ``html`` has the post and, with ``counts``,
    each item's comments in the extension ``_vitae``: ``{"comment_count", "comments_url"}``."""
    site = deps.settings["SITE_URL"].rstrip("/")
    author = posts.author_of(deps.settings)
    entries = []
    for item in items[:posts.FEED_ENTRIES]:
        entry = {"id": f"{site}/blog/{item['number']}", "url": site + posts.address(item), "title": item["title"],
                 "summary": item["excerpt"], "date_published": item.get("created_at"),
                 "date_modified": item.get("updated_at") or item.get("created_at"), "tags": item["tags"]}
        if counts:
            entry["_vitae"] = {"comment_count": item.get("comments", 0),
                               "comments_url": f"{site}{posts.address(item)}#comments"}
        if item["number"] in html:
            entry["content_html"] = html[item["number"]]
        else:
            entry["content_text"] = item["excerpt"]
        entries.append({k: v for k, v in entry.items() if v is not None})
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": f"{author}'s blog",
            "home_page_url": f"{site}/blog/", "feed_url": f"{site}/blog/feed.json",
            "authors": [{"name": author}], "items": entries}
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
