"""The owner's recent public GitHub activity: ``GET /api/github``.

`activity` holds the logic (events and top repositories, cached), `client` the rate-limit-aware
GitHub REST client the blog shares, `routes` the endpoint.
"""

from __future__ import annotations

from ..core.config import Setting, http_url, integer, matching, text
from ..core.feature import Feature
from . import routes

SETTINGS = (
    Setting("GITHUB_API_URL", "https://api.github.com", http_url, "GitHub REST API base URL (GitHub Enterprise: "
            "https://HOST/api/v3)."),
    Setting("GITHUB_USERNAME", "", matching(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", "a GitHub user name"),
            "Whose public activity /api/github shows (empty: no activity widget)."),
    Setting("GITHUB_TOKEN", "", text, "Optional fine-grained token (read-only public access): 5,000 requests/h "
            "instead of 60; also used for the blog.", secret=True),
    Setting("GITHUB_TOP_REPOS", "6", integer(0, 30), "How many of the user's most-starred repositories "
            "/api/github lists (0: none, one upstream call less)."),
    Setting("GITHUB_CACHE_TTL", "300", integer(30, 86400), "Seconds /api/github answers from cache."),
)

FEATURE = Feature("github", blueprints=((routes.bp, "/api"),), settings=SETTINGS, card="github",
                  requires=("GITHUB_USERNAME",))
