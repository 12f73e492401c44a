"""The app's storage: opened from ``STORAGE_URL`` at start-up, connected lazily per process."""

from __future__ import annotations

from flask import Flask, current_app

from ..storage import Storage, open_storage
from . import deps


def init_app(app: Flask) -> None:
    """Open (not connect) the configured backend and give the app its `deps.Deps`; ConfigurationError stops
    start-up."""
    storage = open_storage(app.config["STORAGE_URL"], counter_shards=app.config["DYNAMODB_COUNTER_SHARDS"],
                           log_settle=app.config["DYNAMODB_LOG_SETTLE"])
    app.extensions["vitae.storage"] = storage
    deps.init_app(app, storage)


def get_storage() -> Storage:
    return current_app.extensions["vitae.storage"]
