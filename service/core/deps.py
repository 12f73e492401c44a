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

The same way, a feature that queues messages for the outbox tells it at
start-up how its messages are laid out for delivery (`Deps.lays_out`: the
Telegram parts; `Deps.describes`: the message e-mail and webhooks send), so
the outbox, below the features, imports none of them.
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
    _layouts: dict[str, Callable[[str, Mapping[str, Any]], list[str]]] = dataclasses.field(
        default_factory=dict, repr=False)
    _descriptions: dict[str, Callable[[str, Mapping[str, Any]], Any]] = dataclasses.field(
        default_factory=dict, repr=False)

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

    def lays_out(self, kind: str, layout: Callable[[str, Mapping[str, Any]], list[str]]) -> None:
        """Lay out queued messages of ``kind`` with ``layout(item_id, payload)`` -> the parts to send, in order
        (registered at start-up by the feature that queues them)."""
        self._layouts[kind] = layout

    def layout(self, kind: str, item_id: str, payload: Mapping[str, Any]) -> list[str]:
        """The parts of a queued message of ``kind``; raises `KeyError` for a kind nobody registered, and
        what the layout raises for a malformed payload."""
        return self._layouts[kind](item_id, payload)

    def describes(self, kind: str, describe: Callable[[str, Mapping[str, Any]], Any]) -> None:
        """Describe queued messages of ``kind`` for the channels other than Telegram with
        ``describe(item_id, payload)`` -> a channel-neutral ``service.channels.Message`` (registered at
        start-up beside `lays_out`)."""
        self._descriptions[kind] = describe

    def message(self, kind: str, item_id: str, payload: Mapping[str, Any]) -> Any:
        """The channel-neutral message of a queued message of ``kind``; raises `KeyError` for a kind nobody
        registered, and what the description raises for a malformed payload."""
        return self._descriptions[kind](item_id, payload)

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
