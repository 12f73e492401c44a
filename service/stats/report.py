"""Reading the owner's stats for a range of UTC days, with a bounded amount of storage work.

A range is at most `MAX_DAYS` days and lies within the retention, so one
report reads at most ``MAX_DAYS`` x 8 tallies and ``MAX_DAYS`` x 2 daily
counters: two storage calls on SQLite and Redis (one ``Query`` per tally,
run eight at a time, plus one ``BatchGetItem`` on DynamoDB), whatever the
request asked for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..core.errors import Invalid
from ..storage import Storage
from .counting import DIMENSIONS, VIEW_DIMENSIONS, key

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
    counters = storage.counters([f"site:day:{d}:{kind}" for d in dates for kind in ("views", "uniques")])
    tallies = storage.tallies([key(d, dimension) for d in dates for dimension in DIMENSIONS])
    series = [{"date": d, "views": counters[f"site:day:{d}:views"], "visitors": counters[f"site:day:{d}:uniques"]}
              for d in dates]
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
