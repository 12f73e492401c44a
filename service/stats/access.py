"""Who may read the stats: the owner (STATS_TOKEN), or everyone with STATS_PUBLIC.

The page takes the token once through a login form and then carries a
signed, short-lived cookie scoped to ``/stats`` (HttpOnly, Secure,
SameSite=Strict); the API takes it as ``Authorization: Bearer``. Tokens are
compared in constant time. Wrong tokens count against
``STATS_LOGIN_RATE_LIMIT`` per (hashed, day-scoped) address; once the window
is full every attempt gets 429 without being compared. The visitor site
sets no cookie: only a successful owner login does, on ``/stats``.
"""

from __future__ import annotations

import hmac

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..core.clock import utc_date
from ..core.deps import current
from ..core.errors import NotFound, Unauthorized
from ..core.ratelimit import too_many, window
from ..visitors.privacy import subject_hash

COOKIE = "vitae_stats"
COOKIE_PATH = "/stats"


def enabled() -> bool:
    config = current_app.config
    return bool(config["STATS_PUBLIC"] or config["STATS_TOKEN"])


def public() -> bool:
    return bool(current_app.config["STATS_PUBLIC"])


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    # the token is part of the key: changing STATS_TOKEN signs every owner out
    return URLSafeTimedSerializer(f"{config['SECRET_KEY']}\x1f{config['STATS_TOKEN']}", salt="vitae-stats-owner")


def _limit():
    rate = current_app.config["STATS_LOGIN_RATE_LIMIT"]
    if rate is None:
        return None, None
    at = current().now()
    subject = subject_hash(current_app.config["SECRET_KEY"], utc_date(at), request.remote_addr or "")
    return rate, window(rate, "stats-login", subject, at)


def check_token(given: str) -> None:
    """Accept ``given`` if it is STATS_TOKEN; else 401 (counted unless empty) or 429 once the window is full."""
    token = current_app.config["STATS_TOKEN"]
    if not token:
        raise NotFound("stats are not served: set STATS_TOKEN or STATS_PUBLIC", code="stats_disabled")
    if not given:  # no attempt: nothing to count
        raise Unauthorized("wrong or missing stats password")
    storage = current().storage
    rate, limit = _limit()
    if limit is not None and storage.calls(limit) >= limit.max:
        raise too_many(rate, current().now(), "too many wrong stats passwords; try again later")
    if hmac.compare_digest(given.encode(), token.encode()):
        return
    if limit is not None and not storage.limit(limit)[0]:
        raise too_many(rate, current().now(), "too many wrong stats passwords; try again later")
    raise Unauthorized("wrong or missing stats password")


def owner_cookie_valid() -> bool:
    value = request.cookies.get(COOKIE)
    if not value or not current_app.config["STATS_TOKEN"]:
        return False
    try:
        _serializer().loads(value, max_age=current_app.config["STATS_SESSION_SECONDS"])
    except BadSignature:
        return False
    return True


def set_owner_cookie(response: Response) -> None:
    response.set_cookie(COOKIE, _serializer().dumps("owner"), max_age=current_app.config["STATS_SESSION_SECONDS"],
                        path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict")


def clear_owner_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="Strict")


def require_api() -> None:
    """The API's access rule: public, or the Bearer token; raises 401/404/429 `ServiceError`."""
    if public():
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    check_token(given.strip() if scheme.lower() == "bearer" else "")


def cache_control(response: Response) -> Response:
    response.headers["Cache-Control"] = "public, max-age=60" if public() else "private, no-store"
    if not public():
        response.vary.add("Authorization")
        response.vary.add("Cookie")
    return response
