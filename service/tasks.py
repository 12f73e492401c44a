"""Functions that scheduled events call (Zappa's ``events`` in zappa_settings.json).

Zappa calls ``service.tasks.deliver_outbox(event, context)`` on its schedule
(it also queues the weekly stats digest when due, and folds recorded views),
and ``service.tasks.fold_views`` every minute (the counter's and the stats'
freshness on Lambda).
The app is built once per Lambda container and reused by later invocations,
with its `Deps` (storage, settings, clock and upstream clients, their
sessions kept warm between invocations).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: Seconds of the invocation's time left unused, so delivery ends before Lambda's timeout.
LAMBDA_RESERVE = 3.0

_app = None


def _get_app():
    global _app
    if _app is None:
        from . import create_app

        _app = create_app()
    return _app


def deliver_outbox(event: Any = None, context: Any = None) -> dict[str, Any]:
    """Deliver ready outbox messages, each to its channel; return ``{"configured", "delivered", "retrying",
    "dead", "deferred", "paused_until", "paused", "pending"}`` (see `outbox.delivery.deliver`).

    Stops in time when ``context`` tells the invocation's remaining time.
    Raises `StorageError` when the storage does not answer (the invocation
    fails, and the next scheduled one tries again).
    """
    from .outbox import delivery

    deps = _get_app().extensions["vitae.deps"]
    deadline = None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        deadline = time.monotonic() + remaining() / 1000 - LAMBDA_RESERVE
    deps.emit("periodic")  # jobs due now and then (the owner's weekly digest) go out in this same delivery
    summary = delivery.deliver(deps, deadline=deadline)
    summary["pending"] = deps.storage.queue_counts(delivery.QUEUE)["pending"]
    log.info("outbox delivery: %s", summary)
    return summary


def fold_views(event: Any = None, context: Any = None) -> dict[str, Any]:
    """Fold recorded page views into the daily counters, unique visitors and the stats; return
    ``{"folded": n}``. Raises `StorageError` when the storage does not answer (the next minute's run
    finishes the fold: it is exactly once)."""
    from .visitors import counter

    folded = counter.fold(_get_app().extensions["vitae.deps"])
    log.info("folded %d recorded views", folded)
    return {"folded": folded}
