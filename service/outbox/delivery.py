"""The outbox: messages for the owner (contact messages, the stats digest and alerts), kept in storage until
Telegram has them.

`accept` writes a message to the ``outbox`` queue and returns once it is
stored; its ``kind`` (``contact`` by default) names the layout its feature
registered at start-up (`Deps.lays_out`), which turns it into the parts
sent. `notify` queues an owner notice, ready Telegram HTML. `deliver` is the one delivery function (called right after
accepting, by ``flask outbox deliver`` and by the Lambda schedule through
`service.tasks.deliver_outbox`); `work` is the loop worker around it. They
all take the app's `Deps` first (storage, settings, clock and the app's
one `telegram.Telegram` client):

* it **claims** ready messages with a lease held in storage, so two workers
  never hold the same message; before each Telegram call it checks that the
  lease (and the caller's deadline) leaves room for the call's timeout, and
  gives the message back otherwise instead of racing the next holder;
* a delivered message is **acked** (kept as ``done``); a message split in
  parts records each part sent, so a retry resumes after the last one;
* a **transient** failure (timeout, connection error, 5xx, 429, a refused
  bot token) releases the message for a retry after an exponential backoff
  (`backoff`, never sooner than Telegram's ``retry_after``), and **pauses**
  every worker (a value in storage) for ``retry_after``, or 10 s without
  one: Telegram is down or throttling the chat, and one probe per pause is
  all it should get. The pause is short on purpose: a message that fails on
  its own backs off alone while the others go past it;
* a **permanent** 4xx (chat not found, bot blocked) dead-letters the
  message at once with the reason, and so does a transient failure once the
  message is ``OUTBOX_MAX_AGE`` old; dead letters are kept, never deleted;
* **per-sender order**: a message is sent only when no earlier message from
  the same address is still pending (messages are numbered on acceptance).

At least once, not exactly once, at one edge: if the process dies (or the
storage stops answering) after Telegram accepted a message but before the
ack, the lease runs out and the message is sent again. The same holds for a
timeout after Telegram received the request but before it answered.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import cache
from ..core.clock import utc_date
from ..storage import PENDING, QueueItem, Storage, StorageError

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
#: A Telegram call is started only with at least this much lease / deadline left (seconds).
MIN_WINDOW = 0.5
#: Seconds to wait for a TCP connection to Telegram.
CONNECT_TIMEOUT = 1.0
#: Lease time kept in reserve for the ack after the last call.
LEASE_RESERVE = 1.0
#: How long a deferred message (waiting behind its sender's earlier one) waits at least.
DEFER = 1.0

_NUMBER_KEY = "outbox:number"
#: Payload kind of an owner notice (stats digest, alert): ready Telegram HTML, not a contact message.
NOTICE = "notice"
#: Payload kind of a message stored without one: a contact message (its feature registers its layout).
CONTACT = "contact"
#: The upstream name under which a delivery pause is held (`cache.hold`), shared by every worker.
TELEGRAM = "telegram"


def accept(deps: Deps, message: dict[str, Any], *, at: float) -> QueueItem:
    """Number ``message`` and store it in the outbox, received at ``at`` (Unix time); it is durable when
    this returns.

    Raises `StorageError` if the storage does not take it.
    """
    storage = deps.storage
    number = storage.incr(_NUMBER_KEY)
    storage.incr(received_key(utc_date(at)))
    return storage.enqueue(QUEUE, {**message, "number": number, "received_at": at}, now=at)


def received_key(date: str) -> str:
    """The counter of contact messages accepted on a UTC day (the weekly digest reads it)."""
    return f"outbox:received:{date}"


def notify(storage: Storage, html: str, *, at: float) -> QueueItem:
    """Queue a notice for the owner: ``html`` (Telegram HTML, under 4096 characters) is sent as it is."""
    return storage.enqueue(QUEUE, {"kind": NOTICE, "html": html[:4000], "received_at": at}, now=at)


def configured(settings: Mapping[str, Any]) -> bool:
    """True when the ``settings`` set Telegram delivery up (bot token and chat id)."""
    return bool(settings.get("TELEGRAM_BOT_TOKEN") and settings.get("TELEGRAM_CHAT_ID"))


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempts`` + 1: 10, 20, 40, ... up to an hour, at least ``retry_after``."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(max(attempts - 1, 0), 20))
    return max(delay, float(retry_after or 0))


def _progress_key(item_id: str) -> str:
    return f"outbox:sent:{item_id}"


def _sender(item: QueueItem) -> str:
    email = item.payload.get("email")
    return email.casefold() if isinstance(email, str) else f"id:{item.id}"


def _order(item: QueueItem) -> tuple:
    number = item.payload.get("number")
    return (number if isinstance(number, int) else math.inf, item.created_at, item.id)


class _Run:
    """One delivery run: deps, settings, deadline, counts, and what this run settled or deferred."""

    def __init__(self, deps: Deps, deadline: float | None, should_stop: Callable[[], bool] | None):
        from ..channels.telegram_api import Telegram

        settings = deps.settings
        self.deps = deps
        self.storage = deps.storage
        self.telegram = deps.client("telegram", Telegram.from_settings)
        self.chat_id = settings["TELEGRAM_CHAT_ID"]
        self.timeout = settings["TELEGRAM_TIMEOUT"]
        self.lease = settings["OUTBOX_LEASE_SECONDS"]
        self.max_age = settings["OUTBOX_MAX_AGE"]
        self.deadline = deadline
        self.should_stop = should_stop or (lambda: False)
        self.settled: set[str] = set()
        self.deferred: dict[str, float] = {}  # id -> ready_at given by this run
        self.counts = {"delivered": 0, "retrying": 0, "dead": 0, "deferred": 0}
        self.paused_until: float | None = None
        self.halted = False  # out of lease or deadline: stop claiming

    def summary(self) -> dict[str, Any]:
        return {"configured": True, **self.counts, "paused_until": self.paused_until}

    def window(self, item: QueueItem) -> float:
        """Seconds a Telegram call may take now for ``item`` (lease and deadline permitting)."""
        left = item.ready_at - self.deps.now() - LEASE_RESERVE
        if self.deadline is not None:
            left = min(left, self.deadline - time.monotonic())
        return left

    def give_back(self, items: list[QueueItem], ready_at: float) -> None:
        """Release claimed, untried items unchanged, claimable again at ``ready_at``."""
        for item in items:
            self.storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, error=item.last_error,
                                 now=self.deps.now())

    def pause(self, until: float) -> None:
        """Hold every worker back until ``until``."""
        self.paused_until = until
        cache.hold(self.deps, TELEGRAM, until)


def deliver(deps: Deps, *, limit: int | None = None, deadline: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Deliver ready outbox messages to Telegram; return what happened.

    The answer: ``configured`` (False: Telegram is not set up, nothing was
    claimed), counts ``delivered``, ``retrying``, ``dead``, ``deferred``
    (waiting behind the sender's earlier message) and ``paused_until`` (Unix
    time, when a transient failure, here or in another worker, paused
    delivery). Runs until nothing is ready, ``limit`` messages were claimed,
    the ``deadline`` (a `time.monotonic` value) is near, ``should_stop()`` is
    true, or delivery pauses. Needs no app context. Raises `StorageError`
    when the storage does not answer.
    """
    if not configured(deps.settings):
        return {"configured": False, "delivered": 0, "retrying": 0, "dead": 0, "deferred": 0, "paused_until": None}
    run = _Run(deps, deadline, should_stop)
    claimed = 0
    earlier: dict[str, list[QueueItem]] | None = None
    while not run.halted and (limit is None or claimed < limit) and not run.should_stop():
        if deadline is not None and deadline - time.monotonic() < MIN_WINDOW:
            break
        run.paused_until = cache.held_until(deps, TELEGRAM)
        if run.paused_until is not None:
            break
        size = BATCH if limit is None else min(BATCH, limit - claimed)
        batch = sorted(run.storage.claim(QUEUE, lease=run.lease, limit=size, now=deps.now()), key=_order)
        if not batch:
            break
        claimed += len(batch)
        if earlier is None:  # once per run: it is stale only about messages that arrived during the run
            earlier = _pending_by_sender(run.storage)
        progress = sum(run.counts.values()) - run.counts["deferred"]
        for index, item in enumerate(batch):
            if run.halted or run.should_stop():
                run.give_back(batch[index:], run.paused_until or deps.now())
                break
            _deliver_one(run, item, earlier)
        if sum(run.counts.values()) - run.counts["deferred"] == progress:
            break  # everything claimed was deferred: claiming again now would only defer it again
    return run.summary()


def _pending_by_sender(storage: Storage) -> dict[str, list[QueueItem]]:
    by_sender: dict[str, list[QueueItem]] = {}
    for item in storage.items(QUEUE, PENDING, limit=PENDING_SCAN):
        by_sender.setdefault(_sender(item), []).append(item)
    return by_sender


def _deliver_one(run: _Run, item: QueueItem, earlier: dict[str, list[QueueItem]]) -> None:
    from ..core.upstream import UpstreamError

    storage, now = run.storage, run.deps.now
    blockers = [other for other in earlier.get(_sender(item), ())
                if other.id != item.id and other.id not in run.settled and _order(other) < _order(item)]
    if blockers:
        ready_at = max(now() + DEFER, min(run.deferred.get(other.id, other.ready_at) for other in blockers))
        storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, now=now(),
                        error="waiting for an earlier message from the same sender")
        run.deferred[item.id] = ready_at
        run.counts["deferred"] += 1
        return
    try:
        kind = item.payload.get("kind", CONTACT)
        parts = [str(item.payload["html"])] if kind == NOTICE else run.deps.layout(kind, item.id, item.payload)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        _settle_dead(run, item, f"malformed message ({type(exc).__name__}); not sent")
        return
    sent = int(storage.get(_progress_key(item.id)) or 0) if len(parts) > 1 else 0
    for index in range(sent, len(parts)):
        window = run.window(item)
        if window < MIN_WINDOW:  # not enough lease or deadline left for a call: hand it back untried
            run.give_back([item], now())
            run.halted = True
            return
        # The whole window goes to the read: a read timeout cut short would often fire after Telegram
        # already took the message, and the retry would send it twice. Connecting is quick or fails.
        per_call = min(run.timeout, window)
        try:
            run.telegram.send_message(run.chat_id, parts[index], timeout=(min(CONNECT_TIMEOUT, per_call), per_call))
        except UpstreamError as exc:
            if exc.transient:
                _retry(run, item, exc)
            else:
                _settle_dead(run, item, f"Telegram refused it: {exc}")
            return
        if index + 1 < len(parts):
            storage.set(_progress_key(item.id), str(index + 1), ttl=run.max_age + 7 * 86400)
    if not storage.ack(QUEUE, item.id, item.token or "", now=now()):
        log.warning("outbox message %s was sent but its lease had run out; it may be sent again", item.id)
    if len(parts) > 1:
        storage.delete(_progress_key(item.id))
    run.settled.add(item.id)
    run.counts["delivered"] += 1
    log.info("outbox message %s delivered (%d part%s)", item.id, len(parts), "" if len(parts) == 1 else "s")


def _retry(run: _Run, item: QueueItem, exc: Exception) -> None:
    at = run.deps.now()
    retry_after = getattr(exc, "retry_after", None)
    run.pause(at + (retry_after if retry_after else BACKOFF_BASE))
    run.halted = True
    give_up = item.created_at + run.max_age
    if at >= give_up:
        _settle_dead(run, item, f"still failing after {run.max_age / 3600:g} h and {item.attempts} attempts: {exc}")
        return
    ready_at = min(at + backoff(item.attempts, retry_after), give_up)
    run.storage.release(QUEUE, item.id, item.token or "", ready_at=ready_at, error=str(exc), now=at)
    run.counts["retrying"] += 1
    log.warning("outbox message %s not delivered (attempt %d), retrying in %.0f s: %s",
                item.id, item.attempts, ready_at - at, exc)


def _settle_dead(run: _Run, item: QueueItem, reason: str) -> None:
    run.storage.bury(QUEUE, item.id, item.token or "", reason=reason, now=run.deps.now())
    run.settled.add(item.id)
    run.counts["dead"] += 1
    log.error("outbox message %s dead-lettered: %s", item.id, reason)
    if item.payload.get("kind") != NOTICE:  # a notice that cannot be sent must not queue another
        run.deps.emit("alert", "dead_letter", f"contact message {item.id} was dead-lettered: {reason}")


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
        log.warning("Telegram is not configured: messages stay in the outbox (see `flask outbox list`)")
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
