"""Reading the owner's stats for a range of UTC days, with a bounded amount of storage work.

A range is at most `MAX_DAYS` days and lies within the retention. One report
reads the range's daily detail with one `Storage.daily_tallies` call: one
statement on SQLite, one round trip on Redis, one ``Query`` per dimension
on DynamoDB (eight, run together), whatever the range. A day's views and
visitors are the sums of its ``pages`` and ``devices`` detail: the counted
view's one storage step adds to both exactly when it adds to the daily
counters (every view has a page; every visitor counted that day has one
device class), so no counter is read.

`parse_args` admits only the recognised parameters (unknown or repeated
ones are refused), and `cache_key` names a request's report canonically, so
the public report's cache cannot be bypassed by adding, reordering or
respelling parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import Invalid
from ..storage import Storage
from .counting import DIMENSIONS, SERIES, VIEW_DIMENSIONS, key

#: The longest range one request reads (days).
MAX_DAYS = 92
#: Named ranges: days ending today.
PRESETS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
#: Rows of each table.
TOP = 20


@dataclasses.dataclass(frozen=True)
class Range:
    start: dt.date
    end: dt.date  # inclusive
    name: str  # a preset name, or "custom"

    @property
    def dates(self) -> list[str]:
        return [(self.start + dt.timedelta(days=n)).isoformat() for n in range((self.end - self.start).days + 1)]


def _date(value: str, name: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date like 2027-01-15", code="invalid_date") from None


def parse_range(args: Mapping[str, str], today: dt.date, retention_days: int) -> Range:
    """The range asked for by ``range`` (today, 7d, 30d, 90d; default 7d) or ``from``/``to`` (custom).

    Raises a 400 `ServiceError` for an unknown name, a malformed date, ``from`` after ``to``, a range
    longer than `MAX_DAYS`, or one starting before the retention or ending after today.
    """
    if args.get("from") or args.get("to"):
        start = _date(args.get("from") or "", "from")
        end = _date(args.get("to") or today.isoformat(), "to")
        if start > end:
            raise Invalid("from must not be after to", code="invalid_range")
        if (end - start).days + 1 > MAX_DAYS:
            raise Invalid(f"a range is at most {MAX_DAYS} days", code="invalid_range")
        if end > today:
            raise Invalid("to must not be after today (UTC)", code="invalid_range")
        if start <= today - dt.timedelta(days=retention_days):
            raise Invalid(f"daily detail is kept {retention_days} days; from is older", code="invalid_range")
        return Range(start, end, "custom")
    name = args.get("range") or "7d"
    if name not in PRESETS:
        raise Invalid(f"range must be one of {', '.join(PRESETS)} (or from/to)", code="invalid_range")
    return Range(today - dt.timedelta(days=PRESETS[name] - 1), today, name)


#: The query parameters every stats endpoint understands (``/api/stats.csv`` takes ``table`` too).
PARAMETERS = ("range", "from", "to", "dimension", "value")
#: Seconds a public report is kept (the Cache-Control max-age of public answers).
PUBLIC_SECONDS = 60


def parse_args(args: Mapping[str, Sequence[str]], today: dt.date, retention_days: int,
               extra: Sequence[str] = ()) -> tuple[Range, tuple[str, str] | None]:
    """The range and filter asked for by ``args`` (each parameter's values; see `parse_range`, `parse_filter`).

    Raises a 400 `ServiceError` for a parameter outside `PARAMETERS` and ``extra``, or one given twice.
    """
    known = (*PARAMETERS, *extra)
    unknown = sorted(name for name in args if name not in known)
    if unknown:
        raise Invalid(f"unknown parameter {unknown[0][:40]!r}; the parameters are {', '.join(known)}",
                      code="unknown_parameter")
    repeated = sorted(name for name, values in args.items() if len(values) > 1)
    if repeated:
        raise Invalid(f"parameter {repeated[0]!r} is given more than once", code="repeated_parameter")
    single = {name: values[0] for name, values in args.items() if values}
    return parse_range(single, today, retention_days), parse_filter(single)


def cache_key(span: Range, chosen: tuple[str, str] | None) -> str:
    """The storage key of the cached report of ``span`` and ``chosen``, made of what the report covers, not of
    the request's text: the same whatever the parameters' order or encoding."""
    canonical = json.dumps([span.start.isoformat(), span.end.isoformat(), span.name, chosen], separators=(",", ":"))
    return "stats:report:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def cached(storage: Storage, span: Range, chosen: tuple[str, str] | None) -> dict[str, Any]:
    """`build`'s report, kept `PUBLIC_SECONDS` in storage under `cache_key`: a public dashboard's visitors
    cost one storage read each, and at most one report a minute per distinct request."""
    entry = cache_key(span, chosen)
    stored = storage.get(entry)
    if stored is not None:
        return json.loads(stored)
    data = build(storage, span, chosen)
    storage.set(entry, json.dumps(data, separators=(",", ":")), ttl=PUBLIC_SECONDS)
    return data


def parse_filter(args: Mapping[str, str]) -> tuple[str, str] | None:
    """``(dimension, value)`` from ``dimension`` and ``value``, or None; 400 for an unknown dimension."""
    dimension, value = args.get("dimension"), args.get("value")
    if not dimension and not value:
        return None
    if dimension not in DIMENSIONS or not value or len(value) > 300:
        raise Invalid(f"dimension must be one of {', '.join(DIMENSIONS)}, with a value", code="invalid_filter")
    return dimension, value


def build(storage: Storage, span: Range, chosen: tuple[str, str] | None = None, top: int = TOP) -> dict[str, Any]:
    """The report: totals, the daily series and the top ``top`` rows of every dimension.

    With ``chosen`` (dimension, value) the totals and series are that value's (its views for pages,
    its visitors otherwise); the tables stay whole (combinations are not stored).
    """
    dates = span.dates
    tallies = storage.daily_tallies(SERIES, DIMENSIONS, dates[0], dates[-1])
    series = [{"date": d, "views": sum(tallies[key(d, "pages")].values()),
               "visitors": sum(tallies[key(d, "devices")].values())} for d in dates]
    if chosen is not None:
        dimension, value = chosen
        kind = "views" if dimension in VIEW_DIMENSIONS else "visitors"
        series = [{"date": d, "views": 0, "visitors": 0, kind: tallies[key(d, dimension)].get(value, 0)}
                  for d in dates]
    tables = {}
    for dimension in DIMENSIONS:
        summed: dict[str, int] = {}
        for d in dates:
            for member, n in tallies[key(d, dimension)].items():
                summed[member] = summed.get(member, 0) + n
        rows = sorted(summed.items(), key=lambda item: (-item[1], item[0]))[:top]
        tables[dimension] = [{"value": member, "count": n} for member, n in rows]
    return {
        "from": span.start.isoformat(), "to": span.end.isoformat(), "range": span.name,
        "filter": None if chosen is None else {"dimension": chosen[0], "value": chosen[1]},
        "totals": {"views": sum(day["views"] for day in series), "visitors": sum(day["visitors"] for day in series)},
        "daily": series,
        "counts": {dimension: "views" if dimension in VIEW_DIMENSIONS else "visitors" for dimension in DIMENSIONS},
        "tables": tables,
    }
