"""News for the owner, through the outbox: the weekly digest and alerts.

Both are queued as outbox notices (`delivery.notify`: Telegram HTML and
plain text with the same numbers) for the channels ``NOTIFY_DIGEST`` and
``NOTIFY_ALERTS`` route them to, and delivered like contact messages, by
the compose worker or the Lambda schedule. Nothing is queued when no
channel is routed (none configured) or the feature is switched off
(``STATS_DIGEST``, ``STATS_ALERTS``).

* The digest is due during the week's ``STATS_DIGEST_DAY`` at
  ``STATS_DIGEST_HOUR``, in the owner's ``STATS_TIMEZONE``, for that hour
  (no worker running then: no digest that week); it covers the seven local
  days before that moment against the seven before them (one report with
  its comparison). Whoever sees it due first
  claims the week with ``add("stats:digest:<date>")`` (set-if-absent), so
  several workers and the schedule send it once.
* An alert of one kind (``dead_letter``, ``spotify_reauthorize``,
  ``storage_errors``, ``github_rate_limit``) is queued at most once per
  ``STATS_ALERT_INTERVAL``, claimed the same way (``stats:alert:<kind>``).
  Each says when it was raised, in ``STATS_TIMEZONE``.
  Alerts never raise: the failure they report must not become another.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from typing import TYPE_CHECKING

from ..core.clock import local_time
from ..storage import Storage, StorageError

if TYPE_CHECKING:
    from ..core.deps import Deps

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Seconds after the scheduled moment in which the digest may go out (the worker looks every few seconds,
#: the Lambda schedule every 5 minutes).
DIGEST_WINDOW = 3600
#: Rows of each list in the digest.
DIGEST_TOP = 5
#: The window in which storage errors are counted for the alert (seconds).
STORAGE_WINDOW = 300



class _State:
    """What one app's process remembers between events: the digest period it already handled (to skip the
    storage call) and its recent storage errors. Kept per app (`state`), never in module globals."""

    def __init__(self):
        self.sent_period: str | None = None
        self.errors: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()


def state(deps: Deps) -> _State:
    """The app's `_State`, made on first use (kept by ``deps`` like its upstream clients)."""
    return deps.client("stats.notify", lambda _settings: _State())


def digest_moment(at: float, day: str, hour: int, zone: str = "UTC") -> dt.datetime:
    """The latest scheduled digest moment at or before ``at``: ``day`` at ``hour`` in the time zone ``zone``
    (an aware datetime in that zone; across a daylight-saving change the hour is the local one)."""
    current = local_time(at, zone)
    monday = (current - dt.timedelta(days=current.weekday())).date()
    start = monday + dt.timedelta(days=DAYS.index(day.lower()))
    moment = dt.datetime(start.year, start.month, start.day, hour, tzinfo=current.tzinfo)
    if moment.timestamp() > at:
        earlier = start - dt.timedelta(days=7)
        moment = dt.datetime(earlier.year, earlier.month, earlier.day, hour, tzinfo=current.tzinfo)
    return moment


def _change(change: dict) -> str:
    """A total's change on the week before, as the digest words it: ``+50%``, ``new``, ``±0``."""
    if not change["previous"]:
        return "new" if change["delta"] else "±0"
    return f"{change['delta'] / change['previous']:+.0%}"


def digest(storage: Storage, moment: dt.datetime) -> tuple[str, str, str]:
    """The digest of the week before ``moment`` (its local days), against the week before it: its title, its
    Telegram HTML and its plain text, made from the same numbers. Stored values are escaped for Telegram's
    HTML and made `display.printable` in both."""
    from ..channels.telegram_api import escape
    from ..outbox import delivery
    from . import display, report
    end = moment.date() - dt.timedelta(days=1)
    zone = str(moment.tzinfo or "UTC")
    week = report.build(storage, report.Range(end - dt.timedelta(days=6), end, "custom", zone=zone), top=DIGEST_TOP)
    messages = storage.counters([delivery.received_key(day["date"]) for day in week["daily"]])
    changes = week["comparison"]["totals"]
    views, visitors = week["totals"]["views"], week["totals"]["visitors"]
    title = f"Weekly stats {week['from']} to {week['to']}"
    summary = [f"Views: {views:,} ({_change(changes['views'])} on the week before)",
               f"Visitors: {visitors:,} ({_change(changes['visitors'])})",
               f"Contact messages received: {sum(messages.values()):,}"]
    html, plain = [f"<b>Weekly stats</b> {week['from']} to {week['to']}", *summary], list(summary)
    for dimension, heading in (("pages", "Top pages"), ("referrers", "Top referrers")):
        rows = week["tables"][dimension]
        html.append(f"\n<b>{heading}</b>")
        html += [f"{row['count']:,}  <code>{escape(display.printable(row['value']))}</code>"
                 for row in rows] or ["none"]
        plain.append(f"\n{heading}")
        plain += [f"{row['count']:,}  {display.printable(row['value'])}" for row in rows] or ["none"]
    if week["events"]:  # events are named by the site's pages and its visitors' clicks: escaped like any value
        html.append("\n<b>Top events</b>")
        html += [f"{row['count']:,}  <code>{escape(display.printable(row['value']))}</code> "
                 f"({row['visitors']:,} visitors)" for row in week["events"]]
        plain.append("\nTop events")
        plain += [f"{row['count']:,}  {display.printable(row['value'])} ({row['visitors']:,} visitors)"
                  for row in week["events"]]
    return title, "\n".join(html), "\n".join(plain)


def digest_text(storage: Storage, moment: dt.datetime) -> str:
    """The digest's Telegram HTML for the week before ``moment``."""
    return digest(storage, moment)[1]


def send_digest(deps: Deps, *, force: bool = False) -> bool:
    """Queue this week's digest if it is due and nobody queued it yet; True if queued.

    Raises `StorageError` when the storage does not answer.
    """
    from ..outbox import delivery, routing
    config = deps.settings
    if not config["STATS_DIGEST"] or not routing.routes(config, "digest"):
        return False
    at = deps.now()
    moment = digest_moment(at, config["STATS_DIGEST_DAY"], config["STATS_DIGEST_HOUR"], config["STATS_TIMEZONE"])
    period = moment.date().isoformat()
    if not force and at >= moment.timestamp() + DIGEST_WINDOW:
        return False  # past the digest's hour: a worker started later in the week does not send last week's
    if not force:
        memory = state(deps)
        if memory.sent_period == period:
            return False
        claimed = deps.storage.add(f"stats:digest:{period}", str(at), ttl=8 * 86400)
        memory.sent_period = period
        if not claimed:
            return False
    title, html, text = digest(deps.storage, moment)
    delivery.notify(deps, "digest", title=title, html=html, text=text, at=at)
    log.info("weekly stats digest for %s queued", period)
    return True


def digest_if_due(deps: Deps) -> None:
    """`send_digest` for loops and schedules (the ``periodic`` event): logs instead of raising."""
    try:
        send_digest(deps)
    except StorageError as exc:
        log.warning("weekly digest not queued, storage not answering: %s", exc)
    except Exception:  # the delivery loop must outlive a digest that failed to build
        log.exception("weekly digest not queued")


def alert(deps: Deps, kind: str, text: str) -> bool:
    """Queue an alert for the owner unless one of ``kind`` was queued within the interval; True if queued.

    The ``alert`` event's listener; never raises.
    """
    try:
        from ..channels.telegram_api import escape
        from ..outbox import delivery, routing

        config = deps.settings
        if not config["STATS_ALERTS"] or not routing.routes(config, "alert"):
            return False
        storage = deps.storage
        if not storage.add(f"stats:alert:{kind}", str(deps.now()), ttl=config["STATS_ALERT_INTERVAL"]):
            return False
        zone = config["STATS_TIMEZONE"]
        when = f"raised {local_time(deps.now(), zone):%Y-%m-%d %H:%M} ({zone})"
        # cut before escaping: whole entities
        delivery.notify(deps, "alert", title=f"Alert: {kind.replace('_', ' ')}",
                        html=f"<b>Alert</b>: {escape(text[:1000])}\n<i>{when}</i>", text=f"{text[:1000]}\n{when}",
                        at=deps.now())
    except StorageError as exc:
        log.warning("alert %s not queued, storage not answering: %s", kind, exc)
        return False
    except Exception:  # an alert is reporting a failure already: never add one
        log.exception("alert %s not queued", kind)
        return False
    log.info("alert %s queued", kind)
    return True


def listen(deps: Deps) -> None:
    """Make ``deps``' events reach the owner: alerts, storage errors, and the digest on ``periodic``."""
    deps.on("alert", alert)
    deps.on("storage_error", storage_failed)
    deps.on("periodic", digest_if_due)


def storage_failed(deps: Deps) -> None:
    """Count one storage error of this app's process (the ``storage_error`` event's listener); alert once
    ``STATS_ALERT_STORAGE_ERRORS`` fall in 5 minutes."""
    threshold = deps.settings["STATS_ALERT_STORAGE_ERRORS"]
    moment = time.monotonic()
    memory = state(deps)
    with memory.lock:
        memory.errors.append(moment)
        while memory.errors and memory.errors[0] < moment - STORAGE_WINDOW:
            memory.errors.popleft()
        due = len(memory.errors) >= threshold
        if due:
            memory.errors.clear()
    if due:
        alert(deps, "storage_errors", f"{threshold} or more storage errors within {STORAGE_WINDOW // 60} minutes")
