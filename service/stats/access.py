"""Who may read the stats: the owner (STATS_TOKEN), or everyone with STATS_PUBLIC.

The page takes the token once through a login form and then carries a
signed, short-lived cookie scoped to ``/stats`` (HttpOnly, Secure,
SameSite=Strict) naming a session the server keeps in storage with the same
lifetime; sign-out deletes it, so a copied cookie dies with it. Sign-in and
sign-out refuse other sites' posts (`require_same_site_post`). The API takes
the token as ``Authorization: Bearer``. Tokens are compared in constant
time, each only after it took a slot of ``STATS_LOGIN_RATE_LIMIT`` per
(hashed, day-scoped) address; correct ones give theirs back (see
`check_token`). Once the window is full every attempt gets 429 without being
compared. Share links (`sharing`) are checked the same way: each attempt
takes a slot of the same window before the link is looked up. The visitor
site sets no cookie: only a successful owner login does, on ``/stats``
(and the owner's ``vitae_ignore`` flag, `exclusion`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Callable

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..core.clock import utc_date
from ..core.deps import current
from ..core.errors import NotFound, ServiceError, Unauthorized
from ..core.privacy import subject_hash
from ..core.ratelimit import too_many, window
from . import sharing

COOKIE = "vitae_stats"
COOKIE_PATH = "/stats"
#: Storage values of the owner's sessions: ``stats-session:<sha256 of the id>``, expiring with the cookie.
SESSION_PREFIX = "stats-session:"


def enabled() -> bool:
    config = current_app.config
    return bool(config["STATS_PUBLIC"] or config["STATS_TOKEN"])


def public() -> bool:
    return bool(current_app.config["STATS_PUBLIC"])


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    # the token is part of the key: changing STATS_TOKEN signs every owner out
    return URLSafeTimedSerializer(f"{config['SECRET_KEY']}\x1f{config['STATS_TOKEN']}", salt="vitae-stats-owner")


def _windows():
    """(rate, the attempts' window, the window of the attempts that succeeded) for this address now, or
    (None, None, None) with the limit off. Both windows start and end together."""
    rate = current_app.config["STATS_LOGIN_RATE_LIMIT"]
    if rate is None:
        return None, None, None
    at = current().now()
    subject = subject_hash(current_app.config["SECRET_KEY"], utc_date(at), request.remote_addr or "")
    succeeded = window(rate, "stats-login-ok", subject, at)
    # a count, not a cap: successes in one window are bounded by the requests the server can answer
    return rate, window(rate, "stats-login", subject, at), dataclasses.replace(succeeded, max=2**31)


def matches(given: str, token: str) -> bool:
    """Whether ``given`` is ``token``, compared in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


def _attempt[T](compare: Callable[[], T | None], wrong: ServiceError, refused: str) -> T:
    """``compare()``'s answer once the attempt took a slot of this address's window; ``wrong`` when it
    gives nothing, 429 with ``refused`` when the address has no attempt left.

    Every attempt first takes a slot of the address's window with the storage's atomic `limit` and only
    then is compared, so concurrent guesses cannot all pass a check before any is counted: at most the
    window's number of wrong guesses is ever compared. A right one gives its slot back (it is counted
    in a second window that raises the first one's cap by one), so the owner's own sign-ins and API calls,
    and a share link's views, never use up the limit; wrong ones keep theirs.
    """
    storage = current().storage
    rate, attempts, succeeded = _windows()
    if attempts is not None:
        # read first, counted after: a success landing in between only makes this cap one lower
        earned = storage.calls(succeeded)
        if not storage.limit(dataclasses.replace(attempts, max=attempts.max + earned))[0]:
            raise too_many(rate, current().now(), refused)
    result = compare()
    if not result:
        raise wrong
    if succeeded is not None:
        storage.limit(succeeded)
    return result


def check_token(given: str) -> None:
    """Accept ``given`` if it is STATS_TOKEN; else 401, or 429 when this address has no attempt left
    (`_attempt`). An empty token is no attempt and is not counted."""
    token = current_app.config["STATS_TOKEN"]
    if not token:
        raise NotFound("stats are not served: set STATS_TOKEN or STATS_PUBLIC", code="stats_disabled")
    if not given:  # no attempt: nothing to count
        raise Unauthorized("wrong or missing stats password")
    _attempt(lambda: matches(given, token), Unauthorized("wrong or missing stats password"),
             "too many wrong stats passwords; try again later")


def check_share(secret: str) -> sharing.Link:
    """The live share link ``secret`` opens; 404 for an unknown or revoked one, 429 when this address has
    no attempt left: guesses share the sign-in's window (`_attempt`)."""
    if not enabled():
        raise NotFound("stats are not served: set STATS_TOKEN or STATS_PUBLIC", code="stats_disabled")
    return _attempt(lambda: sharing.find(current().storage, secret),
                    NotFound("no such share link (revoked, or never made)", code="unknown_link"),
                    "too many wrong share links; try again later")


def _session_key(session_id: str) -> str:
    # stored hashed: a copy of the store holds no cookie that would sign anyone in
    return SESSION_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def _session_id() -> str | None:
    """The session id the request's cookie carries, if its signature holds and it is young enough."""
    value = request.cookies.get(COOKIE)
    if not value or not current_app.config["STATS_TOKEN"]:
        return None
    try:
        session_id = _serializer().loads(value, max_age=current_app.config["STATS_SESSION_SECONDS"])
    except BadSignature:
        return None
    return session_id if isinstance(session_id, str) and len(session_id) == 43 else None


def owner_cookie_valid() -> bool:
    """Whether the request carries the cookie of a session the server still holds (signed in, not signed
    out, not expired)."""
    session_id = _session_id()
    return session_id is not None and current().storage.get(_session_key(session_id)) is not None


def set_owner_cookie(response: Response) -> None:
    """Start a session: a random id kept in storage for ``STATS_SESSION_SECONDS``, sent signed as the cookie."""
    seconds = current_app.config["STATS_SESSION_SECONDS"]
    session_id = secrets.token_urlsafe(32)
    current().storage.set(_session_key(session_id), "owner", ttl=seconds)
    response.set_cookie(COOKIE, _serializer().dumps(session_id), max_age=seconds, path=COOKIE_PATH, secure=True,
                        httponly=True, samesite="Strict")


def end_session(response: Response) -> None:
    """Sign out: forget the request's session on the server (a copy of its cookie stops working) and clear
    the cookie."""
    session_id = _session_id()
    if session_id is not None:
        current().storage.delete(_session_key(session_id))
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
