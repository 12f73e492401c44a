"""What domain code is given instead of reaching for Flask's globals: `Deps`.

Routes, commands and scheduled tasks take the app's `Deps` with `current()`
and pass it on; domain functions (counting a view, refreshing a widget,
delivering the outbox) take it as their first argument and never read
``current_app``. Tests build apps with an injected clock (``CLOCK``) and
get the same object.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, current_app

from ..storage import Storage

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Deps:
    """The store, the parsed settings, the clock, and the upstream clients built from the settings."""

    storage: Storage
    settings: Mapping[str, Any]
    clock: Callable[[], float]
    _clients: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        """The current Unix time by the app's clock."""
        return self.clock()

    def client(self, name: str, build: Callable[[Mapping[str, Any]], T]) -> T:
        """The upstream client ``name``, built from the settings on first use and kept (its session is reused)."""
        with self._lock:
            if name not in self._clients:
                self._clients[name] = build(self.settings)
            return self._clients[name]


def init_app(app: Flask, storage: Storage) -> None:
    app.extensions["vitae.deps"] = Deps(storage, app.config, app.config["CLOCK"])


def current() -> Deps:
    """The `Deps` of the app handling the request or command."""
    return current_app.extensions["vitae.deps"]
