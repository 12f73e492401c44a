"""Dates from the service's clock (``Deps.clock``: ``app.config["CLOCK"]``, ``time.time`` unless a test injects one)."""

from __future__ import annotations

import datetime as dt


def utc_date(timestamp: float) -> str:
    """``YYYY-MM-DD`` of a Unix time, in UTC."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()
