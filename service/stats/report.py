"""Reading the owner's stats for a range of days (of ``STATS_TIMEZONE``), compared with the range before it,
with a bounded amount of storage work.

A range lies within the retention (``STATS_RETENTION_DAYS``: today's and the
days before it still kept), so it is at most that long. With the comparison
(``compare=previous``, the default) the previous period is the same number of
days just before the range; its days older than the retention are not read
(the comparison says it is incomplete). One report reads both periods' daily
detail with one `Storage.daily_tallies` call: one statement on SQLite, one
round trip on Redis, one ``Query`` per dimension on DynamoDB (run together,
paginated past 1 MB), whatever the range. A day's views and visitors are the
sums of its ``pages`` and ``devices`` detail: the counted view's fold adds to
both exactly when it adds to the daily counters (every view has a page;
every visitor counted that day has one device class), so no counter is read.

A period is summed by `_period`: its totals, daily series and tables. Every
number of the report is compared by `compare`, field by field, whatever the
table: a table added to `_period` (rows of a ``value`` and numbers) gets its
comparison for free. The chart's series is by day up to `DAY_LIMIT` days, by
calendar week (Monday to Sunday) up to `WEEK_LIMIT`, else by calendar month
(`interval`, `buckets`); the first and last bucket may be partial (``days``
says how many days each covers).

`parse_args` admits only the recognised parameters (unknown or repeated
ones are refused), and `cache_key` names a request's report canonically, so
a cached report cannot be bypassed by adding, reordering or respelling
parameters. Reports longer than `LONG_DAYS` are cached (`cached`) for
everyone, the owner too: see `LONG_SECONDS`. A cache cannot bound readers
who ask for a new report each time (another ``value``, another ``from``), so
the routes give everyone but the owner a site-wide budget of built reports
(`READER_BUILDS`); cached ones cost it nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.clock import local_time
from ..core.config import Rate
from ..core.errors import Invalid
from ..storage import Storage
from . import detail
from .counting import DIMENSIONS, SERIES, VIEW_DIMENSIONS, key

#: Named ranges: days ending today (one longer than the retention is refused).
PRESETS = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}
#: ``compare``: with the previous period of the same length (the default), or without.
COMPARE = ("previous", "none")
#: Rows of each table.
TOP = 20
#: The chart shows days up to this many days, calendar weeks up to `WEEK_LIMIT`, calendar months beyond.
DAY_LIMIT = 92
WEEK_LIMIT = 366
#: Reports covering more days than this are cached `LONG_SECONDS` for everyone (see `cached`).
LONG_DAYS = 92
#: Seconds a long report is kept: a year compared with the year before reads up to 730 days of detail.
LONG_SECONDS = 300
#: Reports built (not read from a cache) per minute for every reader but the owner together: STATS_PUBLIC's
#: visitors and share links. A year's report costs seconds of reading: this bounds what strangers can spend.
READER_BUILDS = Rate(count=30, period=60)


@dataclasses.dataclass(frozen=True)
class Range:
    """The days asked for (``start`` to ``end`` inclusive, local dates of ``zone``), whether they are compared
    with the days before them, and the first day still kept (``kept_from``: older days were not read)."""

    start: dt.date
    end: dt.date
    name: str  # a preset name, or "custom"
    compare: bool = True
    zone: str = "UTC"
    kept_from: dt.date | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def dates(self) -> list[str]:
        return [(self.start + dt.timedelta(days=n)).isoformat() for n in range(self.days)]

    def previous(self) -> Range:
        """The period of the same length just before this one."""
        return dataclasses.replace(self, start=self.start - dt.timedelta(days=self.days),
                                   end=self.start - dt.timedelta(days=1), name="previous")


def today(now: float, zone: str) -> dt.date:
    """The owner's date at ``now`` in the zone ``zone`` (``STATS_TIMEZONE``)."""
    return local_time(now, zone).date()


def _date(value: str, name: str) -> dt.date:
    try:
        if len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date like 2027-01-15", code="invalid_date") from None


def parse_range(args: Mapping[str, str], today: dt.date, retention_days: int, zone: str = "UTC") -> Range:
    """The range asked for by ``range`` (a `PRESETS` name; default 7d) or ``from``/``to`` (custom), and
    ``compare`` (previous or none; default previous).

    Raises a 400 `ServiceError` for an unknown name or comparison, a malformed date, ``from`` after ``to``,
    or a range starting before the retention (``today`` and the ``retention_days - 1`` days before it) or
    ending after today.
    """
    kept_from = today - dt.timedelta(days=retention_days - 1)
    compare = args.get("compare") or "previous"
    if compare not in COMPARE:
        raise Invalid("compare must be previous or none", code="invalid_compare")
    if args.get("from") or args.get("to"):
        start = _date(args.get("from") or "", "from")
        end = _date(args.get("to") or today.isoformat(), "to")
        if start > end:
            raise Invalid("from must not be after to", code="invalid_range")
        if end > today:
            raise Invalid(f"to must not be after today ({zone})", code="invalid_range")
        if start < kept_from:
            raise Invalid(f"daily detail is kept {retention_days} days; from is older", code="invalid_range")
        return Range(start, end, "custom", compare == "previous", zone, kept_from)
    name = args.get("range") or "7d"
    if name not in PRESETS:
        raise Invalid(f"range must be one of {', '.join(PRESETS)} (or from/to)", code="invalid_range")
    if PRESETS[name] > retention_days:
        raise Invalid(f"daily detail is kept {retention_days} days; {name} is longer", code="invalid_range")
    return Range(today - dt.timedelta(days=PRESETS[name] - 1), today, name, compare == "previous", zone, kept_from)


#: The query parameters every stats endpoint understands (``/api/stats.csv`` takes ``table`` too).
PARAMETERS = ("range", "from", "to", "compare", "dimension", "value")
#: Seconds a public report is kept (the Cache-Control max-age of public answers).
PUBLIC_SECONDS = 60


def parse_args(args: Mapping[str, Sequence[str]], today: dt.date, retention_days: int,
               extra: Sequence[str] = (), zone: str = "UTC") -> tuple[Range, tuple[str, str] | None]:
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
    return parse_range(single, today, retention_days, zone), parse_filter(single)


def cache_key(span: Range, chosen: tuple[str, str] | None) -> str:
    """The storage key of the cached report of ``span`` and ``chosen``, made of what the report covers, not of
    the request's text: the same whatever the parameters' order or encoding."""
    canonical = json.dumps([span.start.isoformat(), span.end.isoformat(), span.name, span.compare, span.zone,
                            chosen], separators=(",", ":"))
    return "stats:report:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def cached(storage: Storage, span: Range, chosen: tuple[str, str] | None,
           seconds: int = PUBLIC_SECONDS, before_build: Callable[[], None] | None = None) -> dict[str, Any]:
    """`build`'s report, kept ``seconds`` in storage under `cache_key`: a public dashboard's visitors, or an
    owner reloading a long range, cost one storage read each, and at most one report per ``seconds`` per
    distinct request. ``before_build`` is called (and may raise) only when the report must be built."""
    entry = cache_key(span, chosen)
    stored = storage.get(entry)
    if stored is not None:
        return json.loads(stored)
    if before_build is not None:
        before_build()
    data = build(storage, span, chosen)
    storage.set(entry, json.dumps(data, separators=(",", ":")), ttl=seconds)
    return data


def report(storage: Storage, span: Range, chosen: tuple[str, str] | None, public: bool,
           before_build: Callable[[], None] | None = None) -> dict[str, Any]:
    """The report a request gets: cached when public (`PUBLIC_SECONDS`) or long (`LONG_SECONDS`), else
    built afresh; ``before_build`` (a reader's budget, which may raise) is called only when it is built."""
    if span.days > LONG_DAYS:
        return cached(storage, span, chosen, LONG_SECONDS, before_build)
    if public:
        return cached(storage, span, chosen, PUBLIC_SECONDS, before_build)
    if before_build is not None:
        before_build()
    return build(storage, span, chosen)


def parse_filter(args: Mapping[str, str]) -> tuple[str, str] | None:
    """``(dimension, value)`` from ``dimension`` and ``value``, or None; 400 for an unknown dimension."""
    dimension, value = args.get("dimension"), args.get("value")
    if not dimension and not value:
        return None
    if dimension not in DIMENSIONS or not value or len(value) > 300:
        raise Invalid(f"dimension must be one of {', '.join(DIMENSIONS)}, with a value", code="invalid_filter")
    return dimension, value


def interval(days: int) -> str:
    """The chart's bucket for a range of ``days``: ``day``, ``week`` or ``month``."""
    return "day" if days <= DAY_LIMIT else "week" if days <= WEEK_LIMIT else "month"


def _bucket_start(date: dt.date, unit: str) -> dt.date:
    if unit == "week":
        return date - dt.timedelta(days=date.weekday())
    if unit == "month":
        return date.replace(day=1)
    return date


def buckets(daily: Sequence[Mapping[str, Any]], unit: str) -> list[dict[str, Any]]:
    """The daily series summed by ``unit`` (day, week: Monday to Sunday, month), oldest first: each bucket's
    ``from`` and ``to`` (the days of the range it covers), ``days``, ``views`` and ``visitors``."""
    found: dict[dt.date, dict[str, Any]] = {}
    for day in daily:
        date = dt.date.fromisoformat(day["date"])
        bucket = found.setdefault(_bucket_start(date, unit), {"from": day["date"], "to": day["date"], "days": 0,
                                                               "views": 0, "visitors": 0})
        bucket.update(to=day["date"], days=bucket["days"] + 1, views=bucket["views"] + day["views"],
                      visitors=bucket["visitors"] + day["visitors"])
    return list(found.values())


def _period(tallies: Mapping[str, dict[str, int]], dates: Sequence[str], chosen: tuple[str, str] | None,
            top: int | None) -> dict[str, Any]:
    """One period's totals, daily series and tables (the top ``top`` rows of each; None: every row), and its
    events, reading and chosen page's breakdown (`detail.sections`), from the daily detail ``tallies`` (a day
    missing from it counts nothing)."""
    def day(date: str, dimension: str) -> dict[str, int]:
        return tallies.get(key(date, dimension)) or {}

    series = [{"date": d, "views": sum(day(d, "pages").values()), "visitors": sum(day(d, "devices").values())}
              for d in dates]
    if chosen is not None:
        dimension, value = chosen
        kind = "views" if dimension in VIEW_DIMENSIONS else "visitors"
        series = [{"date": d, "views": 0, "visitors": 0, kind: day(d, dimension).get(value, 0)} for d in dates]
    tables = {}
    for dimension in DIMENSIONS:
        summed: dict[str, int] = {}
        for d in dates:
            for member, n in day(d, dimension).items():
                summed[member] = summed.get(member, 0) + n
        rows = sorted(summed.items(), key=lambda item: (-item[1], item[0]))[:top]
        tables[dimension] = [{"value": member, "count": n} for member, n in rows]
    visitors = sum(sum(day(d, "devices").values()) for d in dates)  # the site's, whatever the filter
    return {
        "totals": {"views": sum(d["views"] for d in series), "visitors": sum(d["visitors"] for d in series)},
        "daily": series,
        "counts": {dimension: "views" if dimension in VIEW_DIMENSIONS else "visitors" for dimension in DIMENSIONS},
        "tables": tables,
        **detail.sections(tallies, dates, chosen, visitors, top),
    }


def change(now: float, before: float) -> dict[str, Any]:
    """One number against the previous period's: ``previous``, ``delta`` and ``percent`` (rounded to 0.1;
    None when the previous period had 0, where a percentage means nothing)."""
    return {"previous": before, "delta": now - before,
            "percent": round((now - before) * 100 / before, 1) if before else None}


def _numbers(row: Mapping[str, Any]) -> dict[str, float]:
    return {name: value for name, value in row.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


def _tables(data: Mapping[str, Any], earlier: Mapping[str, Any]) -> list[tuple[list, list]]:
    """Every table of a period beside the same table of ``earlier``: the dimensions', then the events',
    the reading's and the chosen page's (`detail.TABLES`)."""
    pairs = [(rows, earlier["tables"].get(name, [])) for name, rows in data["tables"].items()]
    pairs += [(data[name], earlier.get(name) or []) for name in detail.TABLES]
    page, before = data.get("page") or {}, earlier.get("page") or {}
    return pairs + [(rows, before.get(name, [])) for name, rows in page.items()]


def compare(data: dict[str, Any], earlier: Mapping[str, Any]) -> None:
    """Add the comparison with ``earlier`` (the previous period's `_period`, every row) to ``data``: the
    totals' `change` under ``comparison.totals``, and each table row's, number by number, under the row's
    ``comparison`` (a value missing from the previous period was 0 there)."""
    data["comparison"]["totals"] = {name: change(value, earlier["totals"].get(name, 0))
                                    for name, value in _numbers(data["totals"]).items()}
    for rows, earlier_rows in _tables(data, earlier):
        before = {row["value"]: row for row in earlier_rows}
        for row in rows:
            previous = before.get(row["value"], {})
            row["comparison"] = {field: change(value, previous.get(field, 0))
                                 for field, value in _numbers(row).items()}


def build(storage: Storage, span: Range, chosen: tuple[str, str] | None = None, top: int = TOP) -> dict[str, Any]:
    """The report: totals, the daily series, the chart's series, the top ``top`` rows of every dimension and
    the events, reading and (filtered on a page) the page's breakdown, each compared with the previous period
    when ``span.compare``.

    With ``chosen`` (dimension, value) the totals and series are that value's (its views for pages,
    its visitors otherwise); the tables stay whole (combinations are not stored).
    """
    before = span.previous() if span.compare else None
    first = span.start if before is None else max(before.start, span.kept_from or before.start)
    tallies = storage.daily_tallies(SERIES, (*DIMENSIONS, *detail.names(chosen)), first.isoformat(),
                                    span.end.isoformat())
    current = _period(tallies, span.dates, chosen, top)
    unit = interval(span.days)
    data = {
        "from": span.start.isoformat(), "to": span.end.isoformat(), "range": span.name, "timezone": span.zone,
        "filter": None if chosen is None else {"dimension": chosen[0], "value": chosen[1]},
        **current, "interval": unit, "series": buckets(current["daily"], unit), "comparison": None,
    }
    if before is not None:
        earlier = _period(tallies, before.dates, chosen, None)
        data["comparison"] = {"from": before.start.isoformat(), "to": before.end.isoformat(),
                              "complete": span.kept_from is None or before.start >= span.kept_from}
        compare(data, earlier)
    return data
