"""GitHub REST API client: conditional GETs with rate-limit bookkeeping.

`get` makes one GET and returns an `Answer` (200 with JSON, or 304 when the
ETag still matches). It raises `UpstreamError` for everything else:
`RateLimited` (403/429 with the rate limit spent or a ``Retry-After``;
transient, ``reset`` is the Unix time the limit resets, when known),
transient errors for timeouts, connection failures, 5xx and malformed JSON,
and non-transient ones for other 4xx (a bad token, a missing user or
repository: ``status`` says which). The token travels only in the
``Authorization`` header; messages never carry it or the upstream's body.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

    from ..core.deps import Deps

from ..core import cache
from ..core.upstream import TIMEOUT, Client, UpstreamError, header_seconds, json_body

#: GitHub's rate-limit window: no pause is longer.
MAX_PAUSE = 3600
_NEXT = re.compile(r'<[^>]*>\s*;\s*rel="?next"?')


class RateLimited(UpstreamError):
    """GitHub refused because the rate limit is spent; ``reset`` is when it refills (Unix time) or None."""

    def __init__(self, message: str, *, status: int, retry_after: float | None, reset: float | None):
        super().__init__(message, status=status, transient=True, retry_after=retry_after)
        self.reset = reset


@dataclasses.dataclass(frozen=True)
class Answer:
    """A usable answer: ``status`` 200 (``data`` is the JSON) or 304 (``data`` None: reuse yours)."""

    status: int
    data: Any
    etag: str | None
    has_next: bool
    remaining: int | None
    reset: float | None


class GitHub(Client):
    """The GitHub REST API at ``GITHUB_API_URL``, with the optional token (``GITHUB_TOKEN``)."""

    def __init__(self, base_url: str, *, token: str | None = None, read_timeout: float = TIMEOUT[1]):
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        super().__init__(base_url, read_timeout=read_timeout, headers=headers)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> GitHub:
        return cls(settings["GITHUB_API_URL"], token=settings["GITHUB_TOKEN"] or None,
                   read_timeout=settings["UPSTREAM_TIMEOUT"])

    def get(self, path: str, *, params: dict[str, Any] | None = None, etag: str | None = None) -> Answer:
        """GET ``path``; conditional on ``etag`` when given. Raises `UpstreamError` (see module)."""
        response = self.request("GET", path, params=params, headers={"If-None-Match": etag} if etag else None)
        return _answer(response, etag)


def _answer(response: requests.Response, etag: str | None) -> Answer:
    remaining = header_seconds(response.headers.get("X-RateLimit-Remaining"))
    reset = header_seconds(response.headers.get("X-RateLimit-Reset"))
    retry_after = header_seconds(response.headers.get("Retry-After"))
    status = response.status_code
    if status in (403, 429) and (remaining == 0 or retry_after is not None):
        raise RateLimited(f"GitHub rate limit reached (HTTP {status})", status=status, retry_after=retry_after,
                          reset=reset)
    if status >= 500:
        raise UpstreamError(f"GitHub answered HTTP {status}", status=status, transient=True)
    if status not in (200, 304):
        raise UpstreamError(f"GitHub answered HTTP {status}", status=status, transient=False)
    data = None
    if status == 200:
        try:
            data = json_body(response)
        except ValueError:
            raise UpstreamError("GitHub answered malformed JSON", status=status, transient=True) from None
    has_next = bool(_NEXT.search(response.headers.get("Link", "")))
    return Answer(status, data, response.headers.get("ETag") or etag, has_next,
                  None if remaining is None else int(remaining), reset)


def call(deps: Deps, path: str, *, params: dict[str, Any] | None = None, etag: str | None = None) -> Answer:
    """One GET on the GitHub API with the app's client and the shared rate-limit pause; raises `UpstreamError`.

    Refuses (transient `UpstreamError`) while the rate limit is spent and, from every answer's
    ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``, pauses all GitHub calls until the reset once it
    reaches 0 (`cache.hold`). The activity widget and the blog both call GitHub through here.
    """
    cache.held(deps, "github")
    try:
        answer = deps.client("github", GitHub.from_settings).get(path, params=params, etag=etag)
    except RateLimited as exc:
        now = deps.now()
        until = max(exc.reset or 0, now + (exc.retry_after or 0))
        if until <= now:
            until = now + cache.FAILURE_TTL
        until = min(until, now + MAX_PAUSE)
        cache.hold(deps, "github", until)
        _spent(deps, until)
        exc.retry_after = until - now
        raise
    if answer.remaining == 0 and answer.reset:
        now = deps.now()
        if answer.reset > now:
            cache.hold(deps, "github", min(answer.reset, now + MAX_PAUSE))
            _spent(deps, min(answer.reset, now + MAX_PAUSE))
    return answer


def _spent(deps: Deps, until: float) -> None:
    """Tell the owner (the ``alert`` event) that GitHub's rate limit is spent until ``until``."""
    deps.emit("alert", "github_rate_limit", f"GitHub's rate limit is spent until {int(until - deps.now())} s from "
              "now" + ("" if deps.settings["GITHUB_TOKEN"] else "; a GITHUB_TOKEN raises it to 5,000 requests/h"))


def html_base(settings: Mapping[str, Any]) -> str:
    """The web address matching ``GITHUB_API_URL`` (github.com, or a GitHub Enterprise host)."""
    api = settings["GITHUB_API_URL"]
    if re.fullmatch(r"https://api\.github\.com/?", api):
        return "https://github.com"
    return re.sub(r"/api/v3/?$", "", api)
