"""The outbox: messages for the owner (contact messages, the stats digest and alerts), kept in storage until
each channel they are routed to (Telegram, e-mail, webhook) has them.

`accept` writes a message to the ``outbox`` queue, **one record per channel** ``NOTIFY_CONTACT`` routes it
to (`routing.routes`; the payload's ``channel``; a record stored without one is Telegram's), and returns
once they are stored; its ``kind`` (``contact`` by default) names what its feature registered at start-up:
the Telegram parts (`Deps.lays_out`) and the channel-neutral `service.channels.Message` e-mail and webhooks
send (`Deps.describes`). `notify` queues an owner notice (digest or alert: ready Telegram HTML and plain
text) the same way, routed by ``NOTIFY_DIGEST`` / ``NOTIFY_ALERTS``. With no channel configured a contact
message is stored as Telegram's and waits (`flask outbox list` reads it). `deliver` is the one delivery
function (called right after accepting, by ``flask outbox deliver`` and by the Lambda schedule through
`service.tasks.deliver_outbox`); `work` is the loop worker around it. They all take the app's `Deps` first
(storage, settings, clock and the app's one client per channel). Each record is delivered on its own:

* it is **claimed** with a lease held in storage, so two workers never hold
  the same record; before each call the lease (and the caller's deadline)
  must leave room for the channel's timeout, or the record is given back
  untried instead of racing the next holder;
* a delivered record is **acked** (kept as ``done``); a Telegram message
  split in parts records each part sent, so a retry resumes after the last;
* a **transient** failure (timeout, connection error, 5xx, 429, refused
  credentials) releases the record for a retry after an exponential backoff
  (`backoff`, never sooner than the upstream's ``retry_after``) and
  **pauses that channel** for every worker (`cache.hold` under the channel's
  name) for ``retry_after``, or 10 s without one: its records claimed
  meanwhile are given back until the pause ends, while the other channels'
  records go on. The pause is short on purpose: a record that fails on its
  own backs off alone while the others go past it;
* a **permanent** refusal (a 4xx: chat not found, a webhook's 404, an SMTP
  5xx about the message) dead-letters that record at once with the reason,
  and so does a transient failure once the record is ``OUTBOX_MAX_AGE`` old;
  dead letters are kept, never deleted; a contact message's dead letter
  raises an alert, a notice's does not (it would loop);
* **per-sender order** within a channel: a record is sent only when no
  earlier record of the same channel from the same address is pending
  (messages are numbered on acceptance).

At least once, not exactly once, at one edge: if the process dies (or the
storage stops answering) after a channel accepted a record but before the
ack, the lease runs out and it is sent again. The same holds for a timeout
after the upstream received the request but before it answered.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..channels import CHANNELS
from ..core import cache
from ..core.clock import utc_date
from ..storage import PENDING, QueueItem, Storage, StorageError
from . import routing

if TYPE_CHECKING:
    from ..core.deps import Deps

log = logging.getLogger(__name__)

QUEUE = "outbox"
#: First retry delay and the longest one (seconds); the delay doubles per attempt in between.
BACKOFF_BASE = 10.0
BACKOFF_MAX = 3600.0
#: Messages claimed at once.
BATCH = 10
#: Pending messages read to keep per-sender order (far above what the global rate limit lets in).
PENDING_SCAN = 1000
#: A call is started only with at least this much lease / deadline left (seconds).
MIN_WINDOW = 0.5
#: Seconds to wait for a TCP connection to Telegram (and the allowance for a webhook's).
CONNECT_TIMEOUT = 1.0
#: Lease time kept in reserve for the ack after the last call.
LEASE_RESERVE = 1.0
#: How long a deferred message (waiting behind its sender's earlier one) waits at least.
DEFER = 1.0

#: Seconds a record routed to a channel that is not configured waits before it is looked at again.
UNCONFIGURED_WAIT = 300.0

_NUMBER_KEY = "outbox:number"
#: Payload kind of an owner notice (stats digest, alert): ready Telegram HTML and plain text.
NOTICE = "notice"
#: Payload kind of a message stored without one: a contact message (its feature registers its layout).
CONTACT = "contact"
#: The channel of a record stored without one (before routing existed), and the name of its pause.
TELEGRAM = "telegram"


def accept(deps: Deps, message: dict[str, Any], *, at: float) -> list[QueueItem]:
    """Number ``message`` and store it in the outbox, received at ``at`` (Unix time), once per channel
    ``NOTIFY_CONTACT`` routes it to (as Telegram's when no channel is configured); durable when this
    returns. The records, in `service.channels.CHANNELS` order.

    Raises `StorageError` if the storage does not take it.
    """
    storage = deps.storage
    number = storage.incr(_NUMBER_KEY)
    storage.incr(received_key(utc_date(at)))
    stored = {**message, "number": number, "received_at": at}
    return [storage.enqueue(QUEUE, {**stored, "channel": channel}, now=at)
            for channel in routing.routes(deps.settings, "contact") or (TELEGRAM,)]


def received_key(date: str) -> str:
    """The counter of contact messages accepted on a UTC day (the weekly digest reads it)."""
    return f"outbox:received:{date}"


def notify(deps: Deps, kind: str, *, title: str, html: str, text: str, at: float) -> list[QueueItem]:
    """Queue a notice of ``kind`` (``digest`` or ``alert``) for the owner, once per channel its ``NOTIFY_*``
    setting routes it to (none configured: nothing is queued). Telegram gets ``html`` (Telegram HTML, under
    4096 characters) as it is; e-mail and webhooks a message titled ``title`` with the plain ``text``."""
    payload = {"kind": NOTICE, "notice": kind, "title": title, "html": html[:4000], "text": text[:20000],
               "received_at": at}
    return [deps.storage.enqueue(QUEUE, {**payload, "channel": channel}, now=at)
            for channel in routing.routes(deps.settings, kind)]


def configured(settings: Mapping[str, Any]) -> bool:
    """True when the ``settings`` set up at least one channel."""
    return bool(routing.configured(settings))


def channel_of(item: QueueItem) -> str:
    """The channel a record is for (one stored before routing existed is Telegram's)."""
    channel = item.payload.get("channel")
    return channel if isinstance(channel, str) else TELEGRAM


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempts`` + 1: 10, 20, 40, ... up to an hour, at least ``retry_after``."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(max(attempts - 1, 0), 20))
    return max(delay, float(retry_after or 0))


def _progress_key(item_id: str) -> str:
    return f"outbox:sent:{item_id}"


def _sender(item: QueueItem) -> tuple[str, str]:
    email = item.payload.get("email")
    return channel_of(item), email.casefold() if isinstance(email, str) else f"id:{item.id}"


def _order(item: QueueItem) -> tuple:
    number = item.payload.get("number")
    return (number if isinstance(number, int) else math.inf, item.created_at, item.id)


def _channel(deps: Deps, name: str) -> Any:
    """The app's one client of channel ``name`` (kept by ``deps``; Telegram's is today's Bot API client)."""
    if name == TELEGRAM:
        from ..channels.telegram_api import Telegram

        return deps.client("telegram", Telegram.from_settings)
    from ..channels.mail import Mail
    from ..channels.webhook import Webhook

    return deps.client(f"channel:{name}", {"email": Mail, "webhook": Webhook}[name].from_settings)


def _call_time(settings: Mapping[str, Any], name: str) -> float:
    """Seconds one send on channel ``name`` may take at most (what the lease must still cover)."""
    if name == "email":
        return settings["SMTP_TIMEOUT"] * 2  # a conversation is several steps, each within SMTP_TIMEOUT
    if name == "webhook":
        return CONNECT_TIMEOUT + settings["WEBHOOK_TIMEOUT"]
    return MIN_WINDOW  # Telegram's call is cut to the window left (see _send_telegram)


class _Run:
    """One delivery run: deps, settings, deadline, counts, and what this run settled, deferred or skipped."""

    def __init__(self, deps: Deps, deadline: float | None, should_stop: Callable[[], bool] | None):
        settings = deps.settings
        self.deps = deps
        self.storage = deps.storage
        self.channels = routing.configured(settings)
        self.timeout = settings["TELEGRAM_TIMEOUT"]
        self.lease = settings["OUTBOX_LEASE_SECONDS"]
        self.max_age = settings["OUTBOX_MAX_AGE"]
        self.deadline = deadline
        self.should_stop = should_stop or (lambda: False)
        self.settled: set[str] = set()
        self.deferred: dict[str, float] = {}  # id -> ready_at given by this run
        self.counts = {"delivered": 0, "retrying": 0, "dead": 0, "deferred": 0}
        self.paused: dict[str, float] = {}  # channel -> end of its pause (here or in another worker)
        self.halted = False  # out of lease or deadline: stop claiming
        self.passed_over = False  # the last batch gave records back for later (a paused or unset channel)

    @property
    def paused_until(self) -> float | None:
        return min(self.paused.values()) if self.paused else None

    def summary(self) -> dict[str, Any]:
        return {"configured": True, **self.counts, "paused_until": self.paused_until, "paused": dict(self.paused)}

    def look_at_pauses(self) -> None:
        self.paused = {name: until for name in self.channels
                       if (until := cache.held_until(self.deps, name)) is not None}

    def window(self, item: QueueItem) -> float:
        """Seconds a call may take now for ``item`` (lease and deadline permitting)."""
        left = item.ready_at - self.deps.now() - LEASE_RESERVE
        if self.deadline is not None:
            left = min(left, self.deadline - time.monotonic())
        return left

    def give_back(self, items: list[QueueItem], ready_at: float) -> None:
        """Release claimed, untried items unchanged, claimable again at ``ready_at``."""
        for item in items:
            self.storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, error=item.last_error,
                                 now=self.deps.now())

    def pause(self, channel: str, until: float) -> None:
        """Hold every worker back from ``channel`` until ``until``."""
        self.paused[channel] = until
        cache.hold(self.deps, channel, until)


def deliver(deps: Deps, *, limit: int | None = None, deadline: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Deliver ready outbox records, each to its channel; return what happened.

    The answer: ``configured`` (False: no channel is set up, nothing was
    claimed), counts ``delivered``, ``retrying``, ``dead``, ``deferred``
    (waiting behind the sender's earlier message), ``paused`` (channel ->
    Unix time its pause ends, set by a transient failure here or in another
    worker) and ``paused_until`` (the earliest of those, or None). Runs
    until nothing is ready, ``limit`` records were claimed, the
    ``deadline`` (a `time.monotonic` value) is near, ``should_stop()`` is
    true, or every configured channel is paused; a paused channel's records
    are given back and the others go on. Needs no app context. Raises
    `StorageError` when the storage does not answer.
    """
    if not configured(deps.settings):
        return {"configured": False, "delivered": 0, "retrying": 0, "dead": 0, "deferred": 0, "paused_until": None,
                "paused": {}}
    run = _Run(deps, deadline, should_stop)
    claimed = 0
    earlier: dict[tuple[str, str], list[QueueItem]] | None = None
    while not run.halted and (limit is None or claimed < limit) and not run.should_stop():
        if deadline is not None and deadline - time.monotonic() < MIN_WINDOW:
            break
        run.look_at_pauses()
        if len(run.paused) == len(run.channels):
            break
        size = BATCH if limit is None else min(BATCH, limit - claimed)
        batch = sorted(run.storage.claim(QUEUE, lease=run.lease, limit=size, now=deps.now()), key=_order)
        if not batch:
            break
        claimed += len(batch)
        if earlier is None:  # once per run: it is stale only about messages that arrived during the run
            earlier = _pending_by_sender(run.storage)
        progress = sum(run.counts.values()) - run.counts["deferred"]
        run.passed_over = False
        for index, item in enumerate(batch):
            if run.halted or run.should_stop():
                run.give_back(batch[index:], deps.now())
                break
            _deliver_one(run, item, earlier)
        if sum(run.counts.values()) - run.counts["deferred"] == progress and not run.passed_over:
            break  # everything claimed was deferred or lacked time: claiming again now would repeat that
    return run.summary()


def _pending_by_sender(storage: Storage) -> dict[tuple[str, str], list[QueueItem]]:
    by_sender: dict[tuple[str, str], list[QueueItem]] = {}
    for item in storage.items(QUEUE, PENDING, limit=PENDING_SCAN):
        by_sender.setdefault(_sender(item), []).append(item)
    return by_sender


def _deliver_one(run: _Run, item: QueueItem, earlier: dict[tuple[str, str], list[QueueItem]]) -> None:
    from ..core.upstream import UpstreamError

    storage, now = run.storage, run.deps.now
    channel = channel_of(item)
    if channel not in CHANNELS:
        _settle_dead(run, item, f"malformed message (unknown channel {channel[:40]!r}); not sent")
        return
    if channel not in run.channels:  # routed before its settings were removed: it waits for them
        run.give_back([item], now() + UNCONFIGURED_WAIT)
        run.passed_over = True
        return
    if channel in run.paused:
        run.give_back([item], run.paused[channel])
        run.passed_over = True
        return
    blockers = [other for other in earlier.get(_sender(item), ())
                if other.id != item.id and other.id not in run.settled and _order(other) < _order(item)]
    if blockers:
        ready_at = max(now() + DEFER, min(run.deferred.get(other.id, other.ready_at) for other in blockers))
        storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, now=now(),
                        error="waiting for an earlier message from the same sender")
        run.deferred[item.id] = ready_at
        run.counts["deferred"] += 1
        return
    window = run.window(item)
    if window < MIN_WINDOW:  # not enough lease or deadline left for any call: hand it back untried, stop
        run.give_back([item], now())
        run.halted = True
        return
    if window < _call_time(run.deps.settings, channel):  # a slower channel's call does not fit: leave it
        run.give_back([item], now() + DEFER)  # to the next run (a worker's), not to this run's next claim
        run.passed_over = True
        return
    try:
        if channel == TELEGRAM:
            parts = _telegram_parts(run, item)
        else:
            message = _message(run, item)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        _settle_dead(run, item, f"malformed message ({type(exc).__name__}); not sent")
        return
    try:
        if channel == TELEGRAM:
            if not _send_telegram(run, item, parts):
                return
        else:
            _channel(run.deps, channel).send(message)
    except UpstreamError as exc:
        if exc.transient:
            _retry(run, item, exc)
        else:
            _settle_dead(run, item, f"{'Telegram refused it' if channel == TELEGRAM else 'refused'}: {exc}")
        return
    if not storage.ack(QUEUE, item.id, item.token or "", now=now()):
        log.warning("outbox message %s (%s) was sent but its lease had run out; it may be sent again",
                    item.id, channel)
    run.settled.add(item.id)
    run.counts["delivered"] += 1
    log.info("outbox message %s delivered by %s", item.id, channel)


def _telegram_parts(run: _Run, item: QueueItem) -> list[str]:
    kind = item.payload.get("kind", CONTACT)
    return [str(item.payload["html"])] if kind == NOTICE else run.deps.layout(kind, item.id, item.payload)


def _message(run: _Run, item: QueueItem) -> Any:
    """The channel-neutral message of ``item``: a notice's title and text, or what its feature describes."""
    from ..channels import Message

    payload = item.payload
    kind = payload.get("kind", CONTACT)
    if kind != NOTICE:
        return run.deps.message(kind, item.id, payload)
    return Message(kind=str(payload["notice"]), title=str(payload["title"]), text=str(payload["text"]),
                   id=item.id, created_at=float(payload["received_at"]))


def _send_telegram(run: _Run, item: QueueItem, parts: list[str]) -> bool:
    """Send ``parts`` from the first one not sent yet; False when the lease ran short between parts (the
    item was given back). Raises the client's `UpstreamError`."""
    storage, now = run.storage, run.deps.now
    telegram = _channel(run.deps, TELEGRAM)
    chat_id = run.deps.settings["TELEGRAM_CHAT_ID"]
    sent = int(storage.get(_progress_key(item.id)) or 0) if len(parts) > 1 else 0
    for index in range(sent, len(parts)):
        window = run.window(item)
        if window < MIN_WINDOW:  # not enough lease or deadline left for a call: hand it back untried
            run.give_back([item], now())
            run.halted = True
            return False
        # The whole window goes to the read: a read timeout cut short would often fire after Telegram
        # already took the message, and the retry would send it twice. Connecting is quick or fails.
        per_call = min(run.timeout, window)
        telegram.send_message(chat_id, parts[index], timeout=(min(CONNECT_TIMEOUT, per_call), per_call))
        if index + 1 < len(parts):
            storage.set(_progress_key(item.id), str(index + 1), ttl=run.max_age + 7 * 86400)
    if len(parts) > 1:
        storage.delete(_progress_key(item.id))
    return True


def _retry(run: _Run, item: QueueItem, exc: Exception) -> None:
    at = run.deps.now()
    channel = channel_of(item)
    retry_after = getattr(exc, "retry_after", None)
    run.pause(channel, at + (retry_after if retry_after else BACKOFF_BASE))
    give_up = item.created_at + run.max_age
    if at >= give_up:
        _settle_dead(run, item, f"still failing after {run.max_age / 3600:g} h and {item.attempts} attempts: {exc}")
        return
    ready_at = min(at + backoff(item.attempts, retry_after), give_up)
    run.storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, error=str(exc), now=at)
    run.counts["retrying"] += 1
    log.warning("outbox message %s not delivered by %s (attempt %d), retrying in %.0f s: %s",
                item.id, channel, item.attempts, ready_at - at, exc)


def _settle_dead(run: _Run, item: QueueItem, reason: str) -> None:
    channel = channel_of(item)
    run.storage.bury(QUEUE, item.id, item.token or "", reason=reason, now=run.deps.now())
    run.settled.add(item.id)
    run.counts["dead"] += 1
    log.error("outbox message %s (%s) dead-lettered: %s", item.id, channel, reason)
    if item.payload.get("kind") != NOTICE:  # a notice that cannot be sent must not queue another
        run.deps.emit("alert", "dead_letter", f"contact message {item.id} ({channel}) was dead-lettered: {reason}")


def deliver_soon(deps: Deps) -> None:
    """The bounded, best-effort delivery right after accepting: never raises, never waits past
    ``OUTBOX_INLINE_SECONDS`` (0 turns it off)."""
    budget = deps.settings["OUTBOX_INLINE_SECONDS"]
    if not budget or not configured(deps.settings):
        return
    try:
        deliver(deps, limit=BATCH, deadline=time.monotonic() + budget)
    except StorageError as exc:
        log.warning("delivery right after accepting failed; the worker will retry: %s", exc)
    except Exception:  # the message is stored; its delivery must never fail the request
        log.exception("delivery right after accepting failed; the worker will retry")


def work(deps: Deps, stop: threading.Event, interval: float) -> None:
    """Deliver until ``stop`` is set: at once while messages keep coming, else every ``interval`` s.

    A storage outage or any other failed round is logged and waited out; the message being sent when
    ``stop`` is set is finished first.
    """
    if not configured(deps.settings):
        log.warning("no channel is configured: messages stay in the outbox (see `flask outbox list`)")
    while not stop.is_set():
        deps.emit("periodic")  # jobs due now and then (the owner's weekly digest)
        try:
            summary = deliver(deps, should_stop=stop.is_set)
        except StorageError as exc:
            log.warning("outbox delivery paused, storage not answering: %s", exc)
            summary = {}
        except Exception:  # a long-running worker outlives one bad round; the messages stay stored
            log.exception("outbox delivery round failed; trying again in %s s", interval)
            summary = {}
        if not (summary.get("delivered") or summary.get("dead")):
            stop.wait(interval)
