"""Reading: visible time on a page and how far down it was scrolled, aggregated per page and
day (of ``STATS_TIMEZONE``).

The page sends one reading per view when it is first hidden: the seconds it was visible
(``visibilitychange``; time in a background tab does not count) and the deepest scroll reached, in
percent of the page. Nothing is kept per visitor or per view: each reading adds one to two daily
tallies whose members are (page, bucket) pairs, ``<path> <bucket>`` (a path holds no space):

* ``read-time``: the visible time's bucket, ``t0`` .. ``t8`` (`BOUNDS`: under 5 s, 5-10 s, ...,
  10 min and more); a page's members sum to its readings;
* ``read-scroll``: ``25``, ``50``, ``75``, ``100`` for each depth the reading reached.

Each is capped at ``STATS_DAILY_VALUES`` pages' worth of members (that many times the buckets), so
storage stays bounded whatever the number of pages. The median time is computed when the report is
read, from the summed buckets (linear within the bucket holding the middle reading); the scroll
shares are each depth's readings over the page's readings.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core.errors import Invalid
from ..storage import Tally

#: Upper bounds (seconds, exclusive) of the time buckets; the last bucket is everything from the last bound.
BOUNDS = (5, 10, 20, 30, 60, 120, 300, 600)
#: Scroll depths (percent) whose share of readings the report shows.
LEVELS = (25, 50, 75, 100)
#: The longest visible time a reading may claim (a day).
MAX_SECONDS = 86_400
TIME, SCROLL = "read-time", "read-scroll"
NAMES = (TIME, SCROLL)
BUCKETS = len(BOUNDS) + 1


def reading(raw: object) -> tuple[int, int] | None:
    """``(seconds, scroll percent)`` of a beacon's ``reading`` (``{"seconds": 0..86400, "scroll": 0..100}``,
    whole numbers), None when absent; 400 otherwise."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"seconds", "scroll"}:
        raise Invalid('reading must be {"seconds": N, "scroll": N}', code="invalid_reading")
    values = []
    for name, top in (("seconds", MAX_SECONDS), ("scroll", 100)):
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise Invalid(f"reading {name} must be a whole number from 0 to {top}", code="invalid_reading")
        values.append(value)
    return values[0], values[1]


def bucket(seconds: int) -> int:
    return next((i for i, bound in enumerate(BOUNDS) if seconds < bound), len(BOUNDS))


def tallies(date: str, path: str, seconds: int, scroll: int, *, cap: int, ttl: int) -> list[Tally]:
    """What one reading of ``path`` adds."""
    return [Tally(f"stats:{date}:{TIME}", f"{path} t{bucket(seconds)}", cap * BUCKETS, ttl),
            *(Tally(f"stats:{date}:{SCROLL}", f"{path} {level}", cap * len(LEVELS), ttl)
              for level in LEVELS if scroll >= level)]


def median(buckets: list[int]) -> float:
    """The median seconds of a histogram over `BOUNDS` (interpolated inside the middle bucket; the open last
    bucket counts as `BOUNDS`'s last bound to twice it)."""
    total = sum(buckets)
    if not total:
        return 0.0
    edges = (0, *BOUNDS, 2 * BOUNDS[-1])
    middle, seen = total / 2, 0
    for i, n in enumerate(buckets):
        if n and seen + n >= middle:
            return round(edges[i] + (edges[i + 1] - edges[i]) * (middle - seen) / n, 1)
        seen += n
    return float(edges[-1])  # not reached: the buckets sum to total


def _split(summed: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """``{path: {bucket: n}}`` of a summed tally; ``(other)`` (pairs past a day's cap) is left out."""
    pages: dict[str, dict[str, int]] = {}
    for member, n in summed.items():
        path, _, name = member.rpartition(" ")
        if path:
            pages.setdefault(path, {})[name] = n
    return pages


def table(summed: Mapping[str, Mapping[str, int]], top: int | None) -> list[dict]:
    """Reading per page, most read first: ``value`` (the page), ``readings``, ``median_seconds`` and ``scroll``
    (depth -> share of readings reaching it, 0 to 1), from the range's summed tallies ``{name: {member: n}}``."""
    times, scrolls = _split(summed.get(TIME, {})), _split(summed.get(SCROLL, {}))
    counts = {path: sum(buckets.values()) for path, buckets in times.items()}
    rows = []
    for path, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]:
        buckets = [times[path].get(f"t{i}", 0) for i in range(BUCKETS)]
        rows.append({"value": path, "readings": n, "median_seconds": median(buckets),
                     "scroll": {str(level): round(min(scrolls.get(path, {}).get(str(level), 0) / n, 1.0), 4)
                                for level in LEVELS}})
    return rows
