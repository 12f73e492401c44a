"""What domain code is given instead of reaching for Flask's globals: `Deps`.

Routes, commands and scheduled tasks take the app's `Deps` with `current()`
and pass it on; domain functions (counting a view, refreshing a widget,
delivering the outbox) take it as their first argument and never read
``current_app``. Tests build apps with an injected clock (``CLOCK``) and
get the same object.

Features that react to other features' events register listeners at
start-up (`Deps.on`) instead of being imported by them; `Deps.emit` calls
them. The events:

* ``"alert"`` (kind, text): a condition the owner should hear about (a dead
  letter, a refused Spotify token, GitHub's rate limit spent);
* ``"storage_error"`` (): a request failed because the storage did not answer;
* ``"periodic"`` (): the outbox worker's loop and the Lambda schedule ran (jobs
  that are due now and then, such as the weekly digest).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app

from ..storage import Storage

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Deps:
    """The store, the parsed settings, the clock, and the upstream clients built from the settings."""

    storage: Storage
    settings: Mapping[str, Any]
    clock: Callable[[], float]
    _clients: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _listeners: dict[str, list[Callable[..., None]]] = dataclasses.field(default_factory=dict, repr=False)

    def now(self) -> float:
        """The current Unix time by the app's clock."""
        return self.clock()

    def client(self, name: str, build: Callable[[Mapping[str, Any]], T]) -> T:
        """The upstream client ``name``, built from the settings on first use and kept (its session is reused)."""
        with self._lock:
            if name not in self._clients:
                self._clients[name] = build(self.settings)
            return self._clients[name]


    def on(self, event: str, listener: Callable[..., None]) -> None:
        """Call ``listener(deps, *args)`` on every `emit` of ``event`` (registered at start-up)."""
        self._listeners.setdefault(event, []).append(listener)

    def emit(self, event: str, *args: Any) -> None:
        """Call the listeners of ``event``; a failing listener is logged, never raised (the caller is
        usually reporting a failure already)."""
        for listener in self._listeners.get(event, ()):
            try:
                listener(self, *args)
            except Exception:
                log.exception("listener of %s failed", event)


def init_app(app: Flask, storage: Storage) -> None:
    app.extensions["vitae.deps"] = Deps(storage, app.config, app.config["CLOCK"])


def current() -> Deps:
    """The `Deps` of the app handling the request or command."""
    return current_app.extensions["vitae.deps"]
