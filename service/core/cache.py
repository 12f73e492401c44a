"""Stale-while-revalidate cache for upstream answers, held in the shared storage.

`cached(key, ttl, fetch)` returns a `Cached` value and promises:

* a value fetched less than ``ttl`` seconds ago (by the app's clock) is
  served as is, with no upstream call;
* an older value is refreshed by exactly one caller at a time (a storage
  lock with a TTL, so a crashed refresher frees it); concurrent callers
  serve the old value meanwhile;
* when the refresh fails (`UpstreamError`), the failure is remembered for
  `FAILURE_TTL` seconds (longer if the upstream asked for a longer wait)
  and, until then, the last good value is served without calling the
  upstream again;
* a value past its ``ttl`` is served with ``stale`` true and its ``age``;
  with no value at all the call raises an `Unavailable` error
  (``upstream_unavailable``, with ``Retry-After``).

Every function takes the app's `deps.Deps` first: its storage holds the entries, its clock decides
freshness: every entry stores
its own ``fetched_at``. Storage TTLs are real time and only collect garbage.

An entry carries ``state`` besides the value: what the fetcher needs to
refresh cheaply next time (ETags). ``fetch(previous)`` gets the previous
`Entry` (or None) and returns a new `Entry`, or ``previous`` itself when the
upstream said "not modified" (only its time is renewed).

`hold`, `held` and `held_until` keep an upstream-wide pause (a rate limit
that covers every key of one upstream): fetchers call `held` before any call
to that upstream.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Unavailable
from .upstream import UpstreamError, valid_text

if TYPE_CHECKING:
    from .deps import Deps

log = logging.getLogger(__name__)

#: Seconds a failed refresh is remembered (no upstream call meanwhile).
FAILURE_TTL = 60
#: Longest wait an upstream may ask for that we honour as given.
MAX_HOLD = 24 * 3600
#: Real seconds a refresher holds the lock; longer than any refresh can take (timeouts bound it).
LOCK_TTL = 60
#: Real seconds an entry is kept for serving stale (garbage collection only).
KEEP = 30 * 86400
#: Real seconds a caller with no value at all waits for another caller's refresh.
WAIT = 10.0
_POLL = 0.05


@dataclasses.dataclass
class Entry:
    """A cached value, when it was fetched (app clock) and the fetcher's state (e.g. ETags)."""

    value: Any
    fetched_at: float = 0.0
    state: Any = None


@dataclasses.dataclass(frozen=True)
class Cached:
    """What a caller serves: the value, its age in whole seconds, and whether it is past its TTL.

    ``fetched_at`` (app clock) tells one fetch of a value from another (memos of what was made from it).
    """

    value: Any
    age: int
    stale: bool
    ttl: int
    fetched_at: float = 0.0

    @property
    def max_age(self) -> int:
        """Seconds a CDN may keep the answer: what is left of the TTL, or briefly for a stale value."""
        return max(0, self.ttl - self.age) if not self.stale else min(self.ttl, FAILURE_TTL)


def _load(storage, key: str) -> Entry | None:
    raw = storage.get(key)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Entry(data["value"], float(data["fetched_at"]), data.get("state"))
    except (ValueError, KeyError, TypeError):
        log.warning("cache entry %s is unreadable; refetching", key)
        return None


def _pause_until(storage, key: str, now: float) -> float | None:
    raw = storage.get(key)
    try:
        until = float(json.loads(raw)["until"]) if raw else None
    except (ValueError, KeyError, TypeError):
        return None
    return until if until is not None and until > now else None


def _pause(storage, key: str, until: float, now: float) -> None:
    # The TTL (real time) only collects garbage; it outlives the pause by an hour so a pause judged by an
    # injected or skewed clock is never dropped early.
    storage.set(key, json.dumps({"until": until}), ttl=max(0.0, until - now) + 3600)


def hold(deps: Deps, name: str, until: float) -> None:
    """Make `held` report upstream ``name`` as paused until ``until`` (app clock; capped at a day)."""
    now = deps.now()
    _pause(deps.storage, f"hold:{name}", min(until, now + MAX_HOLD), now)


def held_until(deps: Deps, name: str) -> float | None:
    """When the pause set by `hold` for ``name`` ends (app clock), or None if there is none."""
    return _pause_until(deps.storage, f"hold:{name}", deps.now())


def held(deps: Deps, name: str) -> None:
    """Raise a transient `UpstreamError` (with ``retry_after``) while upstream ``name`` is paused."""
    until = held_until(deps, name)
    if until is not None:
        wait = until - deps.now()
        raise UpstreamError(f"{name} paused for {math.ceil(wait)} s (rate limit)", transient=True, retry_after=wait)


def _serve(entry: Entry, ttl: int, now: float) -> Cached:
    age = max(0, int(now - entry.fetched_at))
    return Cached(entry.value, age, now - entry.fetched_at >= ttl, ttl, entry.fetched_at)


def _unavailable(retry_after: float) -> Unavailable:
    return Unavailable("the upstream service is not answering; try again later", retry_after=retry_after)


def cached(deps: Deps, key: str, ttl: int, fetch: Callable[[Entry | None], Entry]) -> Cached:
    """The value under ``key``, refreshed through ``fetch`` when older than ``ttl`` (see module docstring).

    Raises an `Unavailable` error when there is no value and the upstream fails;
    a parsing error in ``fetch`` (ValueError, KeyError, TypeError, ...) counts
    as a failed refresh; `StorageError` propagates (the lock is released).
    """
    storage = deps.storage
    entry_key, failed_key, lock_key = f"cache:{key}", f"cache:{key}:failed", f"cache:{key}:lock"
    now = deps.now()
    entry = _load(storage, entry_key)
    if entry is not None and now - entry.fetched_at < ttl:
        return _serve(entry, ttl, now)
    failed_until = _pause_until(storage, failed_key, now)
    if failed_until is not None:
        if entry is not None:
            return _serve(entry, ttl, now)
        raise _unavailable(failed_until - now)

    token = secrets.token_hex(8)
    if not storage.add(lock_key, token, ttl=LOCK_TTL):
        if entry is not None:
            return _serve(entry, ttl, now)
        return _await(deps, entry_key, failed_key, ttl)
    try:
        # Another caller may have finished a refresh between our read and taking the lock.
        latest = _load(storage, entry_key)
        if latest is not None and now - latest.fetched_at < ttl:
            return _serve(latest, ttl, now)
        entry = latest or entry
        try:
            try:
                fresh = fetch(entry)
            except (ArithmeticError, AttributeError, KeyError, TypeError, ValueError) as exc:
                # an answer of a shape the parser did not expect is a failed refresh, remembered as one
                raise UpstreamError(f"malformed upstream answer ({type(exc).__name__})") from exc
        except UpstreamError as exc:
            wait = max(FAILURE_TTL, min(exc.retry_after or 0, MAX_HOLD))
            _pause(storage, failed_key, now + wait, now)
            level = logging.WARNING if exc.transient else logging.ERROR
            log.log(level, "refreshing %s failed (%s); %s for %d s", key, exc,
                    "serving the cached value" if entry else "nothing cached", wait)
            if entry is not None:
                return _serve(entry, ttl, now)
            raise _unavailable(wait) from None
        # A fetch answered 304 keeps the stored value, which an older version may have stored with lone
        # surrogates in it (upstream text is made valid where it arrives now): cleaned once per refresh.
        fresh = Entry(valid_text(fresh.value), now, fresh.state)
        # ASCII-escaped: a lone surrogate in an upstream string cannot break the store's encoding
        storage.set(entry_key, json.dumps(dataclasses.asdict(fresh), separators=(",", ":")),
                    ttl=KEEP)
        return _serve(fresh, ttl, now)
    finally:
        # Delete only our own lock; one that expired and was retaken belongs to someone else.
        if storage.get(lock_key) == token:
            storage.delete(lock_key)


def _await(deps: Deps, entry_key: str, failed_key: str, ttl: int) -> Cached:
    """Wait (real time, bounded) for the refresher holding the lock when nothing is cached yet."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        now = deps.now()
        entry = _load(deps.storage, entry_key)
        if entry is not None:
            return _serve(entry, ttl, now)
        failed_until = _pause_until(deps.storage, failed_key, now)
        if failed_until is not None:
            raise _unavailable(failed_until - now)
    raise _unavailable(FAILURE_TTL)
