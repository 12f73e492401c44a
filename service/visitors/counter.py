"""The visitor counter: which keys a page view touches, and counting one view in one storage step.

Counter keys: ``page:<path>`` (views of one page), ``site:views`` (all views),
``site:uniques`` (all-time sum of daily unique visitors) and, per UTC day,
``site:day:<date>:views`` / ``site:day:<date>:uniques``. A visitor's daily
marker is ``visitor:<date>:<hash>`` (48 h). The daily series keeps the
finished days in one value, ``visitors:daily-history`` (see `daily`), so
its cost does not grow with ``days``. Views are counted by one
`Storage.hit`: rate limit, counters, unique marker and the read-back in
one atomic step (one round trip on Redis and SQLite).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.clock import utc_date
from ..core.paths import page_key
from ..core.privacy import subject_hash, visitor_hash
from ..core.ratelimit import too_many, window
from ..storage import Hit, Storage, Tally

if TYPE_CHECKING:
    from ..core.deps import Deps

VISITOR_TTL = 48 * 3600
#: Longest daily series the API answers (``days``).
MAX_DAYS = 365
#: Days whose counters may still grow (today, yesterday): read live; older ones come from `HISTORY_KEY`.
LIVE_DAYS = 2
#: The value holding the finished days of the daily series (see `_history`).
HISTORY_KEY = "visitors:daily-history"
#: Real seconds the history value is kept (refolded from the counters if it is lost).
HISTORY_TTL = 400 * 86400


@dataclasses.dataclass(frozen=True)
class Visit:
    """Who is viewing, reduced to what counting needs."""

    ip: str
    user_agent: str
    opted_out: bool


def _read_keys(path: str) -> list[str]:
    return [page_key(path), "site:views", "site:uniques"]


def _answer(path: str, counts: dict[str, int], counted: bool) -> dict:
    return {"path": path, "page_views": counts[page_key(path)], "total_views": counts["site:views"],
            "unique_visitors": counts["site:uniques"], "counted": counted}


def read(deps: Deps, path: str) -> dict:
    """The counts for ``path`` without counting."""
    return _answer(path, deps.storage.counters(_read_keys(path), consistent=False), counted=False)


def count(deps: Deps, path: str, visit: Visit, *, at: float, tally: Sequence[Tally] = (),
          unique_tally: Sequence[Tally] = ()) -> dict:
    """Count one view of ``path`` made at ``at`` (the app's clock, read once by the caller, so the stats
    `Tally`s it made for that day land in the same step and day); raise a `RateLimited` error when the
    visitor's rate limit (``VISITOR_RATE_LIMIT``) is full. The visitor hash is keyed by ``SECRET_KEY``
    and ``SITE_URL``."""
    now, settings = at, deps.settings
    secret, site, rate = settings["SECRET_KEY"], settings["SITE_URL"], settings["VISITOR_RATE_LIMIT"]
    date = utc_date(now)
    unique = None
    if not visit.opted_out:
        unique = (f"visitor:{date}:{visitor_hash(secret, date, visit.ip, visit.user_agent, site)}", VISITOR_TTL)
    limit = window(rate, "visit", subject_hash(secret, date, visit.ip), now) if rate else None
    result = deps.storage.hit(Hit(
        incr=[page_key(path), "site:views", f"site:day:{date}:views"],
        limit=limit,
        unique=unique,
        unique_incr=["site:uniques", f"site:day:{date}:uniques"],
        read=_read_keys(path),
        tally=tally,
        unique_tally=unique_tally,
    ))
    if not result.allowed:
        raise too_many(rate, now, "too many page views from this address; try again later")
    return _answer(path, result.counts, counted=True)


def _day_keys(date: str) -> list[str]:
    return [f"site:day:{date}:views", f"site:day:{date}:uniques"]


def _history(storage: Storage, today: dt.date) -> dict[str, list[int]]:
    """``{date: [views, uniques]}`` of the finished days in the series' reach, from `HISTORY_KEY`.

    Days up to the day before yesterday are final (a view is counted on the day it happens), so
    they are read from their counters once and kept in one value; a request that finds days
    missing folds them in (normally one day, once a day) and stores the value again. Concurrent
    folds compute the same value, so no lock is needed.
    """
    last = today - dt.timedelta(days=LIVE_DAYS)
    oldest = today - dt.timedelta(days=MAX_DAYS - 1)
    raw = storage.get(HISTORY_KEY)
    try:
        stored = json.loads(raw) if raw else {}
        through = dt.date.fromisoformat(stored["through"]) if stored else oldest - dt.timedelta(days=1)
        days = {d: [int(v), int(u)] for d, (v, u) in stored.get("days", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        through, days = oldest - dt.timedelta(days=1), {}
    if through >= last:
        return days
    start = max(through + dt.timedelta(days=1), oldest)
    missing = [(start + dt.timedelta(days=n)).isoformat() for n in range((last - start).days + 1)]
    counts = storage.counters([key for d in missing for key in _day_keys(d)], consistent=False)
    for d in missing:
        views, uniques = (counts[key] for key in _day_keys(d))
        if views or uniques:
            days[d] = [views, uniques]
    days = {d: value for d, value in days.items() if d >= oldest.isoformat()}
    storage.set(HISTORY_KEY, json.dumps({"through": last.isoformat(), "days": days}, separators=(",", ":")),
                ttl=HISTORY_TTL)
    return days


def daily(deps: Deps, days: int) -> list[dict]:
    """Views and unique visitors for the last ``days`` UTC days (at most `MAX_DAYS`), oldest first,
    today included.

    Two storage calls whatever ``days`` is: the history value (finished days, see `_history`) and
    one eventually consistent read of the `LIVE_DAYS` still counting (today and yesterday).
    """
    storage = deps.storage
    today = dt.datetime.fromtimestamp(deps.now(), dt.UTC).date()
    dates = [(today - dt.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
    history = _history(storage, today) if days > LIVE_DAYS else {}
    live = [(today - dt.timedelta(days=offset)).isoformat() for offset in range(LIVE_DAYS)]
    counts = storage.counters([key for d in live for key in _day_keys(d)], consistent=False)
    for d in live:
        history[d] = [counts[key] for key in _day_keys(d)]
    return [{"date": d, "views": history.get(d, [0, 0])[0], "unique_visitors": history.get(d, [0, 0])[1]}
            for d in dates]


def badge_svg(label: str, value: str) -> str:
    """A shields-style flat badge (Verdana 11px metrics approximated at 7 px per character)."""
    left, right = 10 + 7 * len(label), 10 + 7 * len(value)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {value}"><title>{label}: {value}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#007ec6"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label}</text><text x="{left + right / 2}" y="14">{value}</text></g></svg>'
    )
