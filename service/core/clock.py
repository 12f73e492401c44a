"""The service's clock: ``app.config["CLOCK"]`` (``time.time`` unless a test injects one)."""

from __future__ import annotations

import datetime as dt

from flask import current_app


def now() -> float:
    return current_app.config["CLOCK"]()


def utc_date(timestamp: float) -> str:
    """``YYYY-MM-DD`` of a Unix time, in UTC."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()
