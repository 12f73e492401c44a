"""The visitor counter: which keys a page view touches, recording one view in one storage step, and the
reads.

Counter keys: ``page:<path>`` (views of one page), ``site:views`` (all views),
``site:uniques`` (all-time sum of daily unique visitors) and, per day (the owner's
``STATS_TIMEZONE``: UTC unless set),
``site:day:<date>:views`` / ``site:day:<date>:uniques``. A view is counted by
one `Storage.hit` (one round trip): the rate limit, the view id (``view:<id>``,
24 h, when the page sent one, so a retry of the same view is counted once),
the page and site totals (atomic counters: the answer includes the view), and
the recorded view in the ``views`` log, which holds only what the stats keep
(see `record`). The page's later beacons (events, reading: `beacons`) are
recorded in the same log. The fold (`fold`) turns recorded views, in batches and exactly
once, into the daily counters, unique visitors (a visitor's daily marker is
``visitor:<date>:<hash>``, 48 h) and the owner's stats. The daily series
keeps the finished days in one value, ``visitors:daily-history`` (see
`daily`), so its cost does not grow with ``days``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from typing import TYPE_CHECKING

from ..core.clock import local_date, local_time
from ..core.errors import Invalid
from ..core.paths import page_key
from ..core.privacy import subject_hash, visitor_hash
from ..core.ratelimit import too_many, window
from ..stats import counting
from ..storage import Hit, Storage
from . import beacons

if TYPE_CHECKING:
    from ..core.deps import Deps

log = logging.getLogger(__name__)

#: The log of recorded views, folded by `fold`.
VIEWS_LOG = "views"
#: Records one fold reads and applies at a time.
FOLD_BATCH = 200
VISITOR_TTL = 48 * 3600
#: Seconds a view id is remembered: far longer than a page keeps retrying one view.
VIEW_ID_TTL = 24 * 3600
_VIEW_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
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


def view_id(raw: object) -> str | None:
    """The page's id of one view (16 to 64 of ``A-Z a-z 0-9 _ -``, e.g. a UUID), None when absent; else an
    `Invalid` error."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not _VIEW_ID.fullmatch(raw):
        raise Invalid("view_id must be 16 to 64 letters, digits, _ or -, such as a UUID", code="invalid_view_id")
    return raw


def _read_keys(path: str) -> list[str]:
    return [page_key(path), "site:views", "site:uniques"]


def _answer(path: str, counts: dict[str, int], counted: bool) -> dict:
    return {"path": path, "page_views": counts[page_key(path)], "total_views": counts["site:views"],
            "unique_visitors": counts["site:uniques"], "counted": counted}


def read(deps: Deps, path: str) -> dict:
    """The counts for ``path`` without counting."""
    return _answer(path, deps.storage.counters(_read_keys(path), consistent=False), counted=False)


def record(date: str, path: str, visitor: str | None, found: counting.Details) -> str:
    """The recorded view: JSON of only what the fold needs (no address, no User-Agent, no full referrer)."""
    return json.dumps({"d": date, "p": path, "v": visitor, "r": found.referrer, "u": dict(found.utm),
                       "b": found.browser, "dv": found.device, "o": found.system, "sz": found.screen,
                       "c": found.country}, separators=(",", ":"))


def count(deps: Deps, path: str, visit: Visit, found: counting.Details, *, at: float, view: str | None = None) -> dict:
    """Count one view of ``path`` made at ``at`` (the app's clock, read once by the caller) with its stats
    values ``found``; raise a `RateLimited` error when the visitor's rate limit (``VISITOR_RATE_LIMIT``) is
    full. The visitor hash is keyed by ``SECRET_KEY`` and ``SITE_URL``. A view sent again with the same id
    ``view`` (see `view_id`) within `VIEW_ID_TTL` counts nothing more, not even against the rate limit, and
    answers the counts as they are now.

    The answer's ``page_views`` and ``total_views`` include this view (atomic counters); ``unique_visitors``
    is as of the last fold (this visitor's first view of the day is in it after the next fold).

    The view's day is its date in ``STATS_TIMEZONE``, decided here, once: the fold counts it on that day,
    and the visitor hash's salt rotates at that day's midnight (still once a day, whatever the zone)."""
    now, settings = at, deps.settings
    secret, site, rate = settings["SECRET_KEY"], settings["SITE_URL"], settings["VISITOR_RATE_LIMIT"]
    date = local_date(now, settings["STATS_TIMEZONE"])
    visitor = None if visit.opted_out else visitor_hash(secret, date, visit.ip, visit.user_agent, site)
    limit = window(rate, "visit", subject_hash(secret, date, visit.ip), now) if rate else None
    result = deps.storage.hit(Hit(
        incr=[page_key(path), "site:views"],
        limit=limit,
        once=(f"view:{view}", VIEW_ID_TTL) if view else None,
        record=(VIEWS_LOG, record(date, path, visitor, found)),
        read=_read_keys(path),
    ))
    if not result.allowed:
        raise too_many(rate, now, "too many page views from this address; try again later")
    return _answer(path, result.counts, counted=True)


def _folded_hits(text: str, cap: int, retention_days: int) -> list[Hit]:
    """What one record adds. A recorded view: its day's views, page tally and, for the day's first view of
    its visitor, the unique counters and the visitor tallies. A recorded beacon: see `beacons.fold_hits`.
    A record that cannot be read adds nothing (logged): it must not hold up the records behind it."""
    try:
        view = json.loads(text)
        if view.get("k") == beacons.KIND:
            return beacons.fold_hits(view, cap, retention_days)
        date, visitor = view["d"], view["v"]
        # views recorded before the operating system and screen class were kept carry neither
        found = counting.Details(referrer=view["r"], utm=dict(view["u"]), browser=view["b"], device=view["dv"],
                                 country=view["c"], system=view.get("o", counting.UNKNOWN),
                                 screen=view.get("sz", counting.UNKNOWN))
        tally, unique_tally = counting.tallies(date, view["p"], found, cap=cap, retention_days=retention_days)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.error("a recorded view could not be read and is skipped: %s", type(exc).__name__)
        return []
    return [Hit(incr=[f"site:day:{date}:views"], tally=tally,
                unique=(f"visitor:{date}:{visitor}", VISITOR_TTL) if visitor else None,
                unique_incr=["site:uniques", f"site:day:{date}:uniques"], unique_tally=unique_tally)]


def fold(deps: Deps, *, batch: int = FOLD_BATCH, rounds: int = 50, now: float | None = None) -> int:
    """Fold recorded views into the daily counters, unique visitors and the stats tallies, ``batch`` at a
    time, at most ``rounds`` batches; return how many views were folded.

    Exactly once (`Storage.fold`): a fold that stops part-way is finished by the next, and folds running
    at once (every gunicorn worker, the worker, the schedule) do not count a view twice. ``now`` is the
    storage's clock (tests). Raises `StorageError` when the storage does not answer.
    """
    storage, settings = deps.storage, deps.settings
    cap, retention = settings["STATS_DAILY_VALUES"], settings["STATS_RETENTION_DAYS"]
    folded = 0
    for _ in range(rounds):
        start, planned = storage.fold_position(VIEWS_LOG)
        # a fold that stopped part-way is finished with all its records (its end was written down)
        records = storage.log_read(VIEWS_LOG, start, batch if planned is None else 100 * batch, until=planned,
                                   now=now)
        if not records:
            break
        if storage.fold(VIEWS_LOG, start, planned or records[-1][0],
                        [hit for _, text in records for hit in _folded_hits(text, cap, retention)]):
            folded += len(records)
        if planned is None and len(records) < batch:
            break
    return folded


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
    """Views and unique visitors for the last ``days`` days (of ``STATS_TIMEZONE``; at most `MAX_DAYS`),
    oldest first, today included.

    Two storage calls whatever ``days`` is: the history value (finished days, see `_history`) and
    one eventually consistent read of the `LIVE_DAYS` still counting (today and yesterday).
    """
    storage = deps.storage
    today = local_time(deps.now(), deps.settings["STATS_TIMEZONE"]).date()
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
