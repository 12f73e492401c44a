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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from ..core.upstream import TIMEOUT, UpstreamError, classify, header_seconds, session

_session: requests.Session | None = None
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


def _session_() -> requests.Session:
    global _session
    if _session is None:
        _session = session()
        _session.headers["Accept"] = "application/vnd.github+json"
        _session.headers["X-GitHub-Api-Version"] = "2022-11-28"
    return _session


def get(base_url: str, path: str, *, params: dict[str, Any] | None = None, token: str | None = None,
        etag: str | None = None, read_timeout: float = TIMEOUT[1]) -> Answer:
    """GET ``base_url + path``; conditional on ``etag`` when given. Raises `UpstreamError` (see module)."""
    import requests
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if etag:
        headers["If-None-Match"] = etag
    try:
        response = _session_().get(base_url + path, params=params, headers=headers,
                                   timeout=(TIMEOUT[0], read_timeout), allow_redirects=False)
    except requests.RequestException as exc:
        raise classify(exc) from None
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
            data = response.json()
        except ValueError:
            raise UpstreamError("GitHub answered malformed JSON", status=status, transient=True) from None
    has_next = bool(_NEXT.search(response.headers.get("Link", "")))
    return Answer(status, data, response.headers.get("ETag") or etag, has_next,
                  None if remaining is None else int(remaining), reset)
