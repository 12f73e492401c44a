"""The app's storage: opened from ``STORAGE_URL`` at start-up, connected lazily per process."""

from __future__ import annotations

from flask import Flask, current_app

from ..storage import Storage, open_storage


def init_app(app: Flask) -> None:
    """Open (not connect) the configured backend; ConfigurationError stops start-up."""
    app.extensions["vitae.storage"] = open_storage(app.config["STORAGE_URL"],
                                                   counter_shards=app.config["DYNAMODB_COUNTER_SHARDS"])


def get_storage() -> Storage:
    return current_app.extensions["vitae.storage"]
