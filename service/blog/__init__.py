"""A blog written as GitHub issues: server-rendered pages, feeds, the sitemap and ``/api/blog``.

`posts` holds the logic (the cached list and posts, the Atom feed), `comments` the issue comments,
`feeds` the full-content feeds, `markdown` rendering and sanitising, `pages` the HTML pages and
`routes` the JSON API.
"""

from __future__ import annotations

from ..core.config import Setting, boolean, integer, matching, text
from ..core.feature import Feature
from . import pages, routes

SETTINGS = (
    Setting("BLOG_REPO", "", matching(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", "owner/name"),
            "Repository whose issues are the blog, as owner/name (empty: no blog)."),
    Setting("BLOG_LABEL", "published", text, "Label that publishes an issue as a post."),
    Setting("BLOG_AUTHOR", "", matching(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", "a GitHub user name"),
            "Only issues by this user are posts (empty: the repository's owner)."),
    Setting("BLOG_CACHE_TTL", "300", integer(30, 86400), "Seconds /api/blog answers from cache."),
    Setting("BLOG_COMMENTS", "true", boolean, "Show each post's GitHub comments under it (false: none, and "
            "no GitHub call for them)."),
)

FEATURE = Feature("blog", blueprints=((routes.bp, "/api"), (pages.bp, "")), settings=SETTINGS, card="blog",
                  requires=("BLOG_REPO",), setup=pages.setup)
