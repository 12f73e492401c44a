"""Who folds recorded views, and when: the periodic tick and, where nothing else folds, this process.

On Lambda the stage's schedule runs `service.tasks.fold_views` every minute; self-hosted, the worker's
loop emits ``periodic`` every ``OUTBOX_POLL_SECONDS`` (5 s); `make run` (no worker) sets
``VISITOR_FOLD_SECONDS`` so each web process folds every few seconds in a daemon thread (a greenlet under
gevent). Folds running at once are safe (`counter.fold` is exactly once).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..storage import StorageError
from . import counter

if TYPE_CHECKING:
    from ..core.deps import Deps

log = logging.getLogger(__name__)


def fold_now(deps: Deps) -> int:
    """Fold what is recorded; log instead of raising (a tick or a loop must outlive one bad round)."""
    try:
        return counter.fold(deps)
    except StorageError as exc:
        log.warning("folding recorded views paused, storage not answering: %s", exc)
    except Exception:
        log.exception("folding recorded views failed; the next fold tries again")
    return 0


def start(deps: Deps) -> None:
    """Fold on every periodic tick and, with ``VISITOR_FOLD_SECONDS`` > 0, in a background thread."""
    deps.on("periodic", fold_now)
    interval = deps.settings["VISITOR_FOLD_SECONDS"]
    if interval:
        stop = threading.Event()  # never set: the thread ends with the process

        def loop():
            while not stop.wait(interval):
                fold_now(deps)
        threading.Thread(target=loop, name="fold-views", daemon=True).start()
