"""Dates from the service's clock (``Deps.clock``: ``app.config["CLOCK"]``, ``time.time`` unless a test injects one),
in UTC or in a named time zone (the owner's ``STATS_TIMEZONE``)."""

from __future__ import annotations

import datetime as dt


def utc_date(timestamp: float) -> str:
    """``YYYY-MM-DD`` of a Unix time, in UTC."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def zone(name: str) -> dt.tzinfo:
    """The time zone of an IANA ``name`` (validated at start-up: see `core.config.timezone`); ZoneInfo keeps
    one instance per name, so this is a dictionary look-up after the first call."""
    if name == "UTC":
        return dt.UTC
    import zoneinfo  # only for another zone: about 3 ms of imports a cold start with the default need not pay

    return zoneinfo.ZoneInfo(name)


def local_time(timestamp: float, name: str) -> dt.datetime:
    """The aware date and time of a Unix time in the zone ``name``."""
    return dt.datetime.fromtimestamp(timestamp, zone(name))


def local_date(timestamp: float, name: str) -> str:
    """``YYYY-MM-DD`` of a Unix time in the zone ``name`` (``UTC``: the same as `utc_date`)."""
    return local_time(timestamp, name).date().isoformat()
