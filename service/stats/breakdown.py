"""The per-page breakdown: which referrers, campaigns, countries and events a page had, without storing every
combination of dimensions.

Each pair (page, value) is one member, ``<path> <value>``, of a daily tally per dimension
(`NAMES`: ``page-referrers``, ``page-campaigns``, ``page-countries``, ``page-events``). A path never holds a
space (`normalise_path`), so the member splits at its first one. Each tally is capped like every other
(``STATS_DAILY_VALUES`` pairs per day): storage stays bounded whatever the number of pages, and the pairs
seen most keep their place (the space-saving scheme of the storage's `Tally`); the rest count under
``(other)``. Pairs are counted per view (referrers, campaigns, countries: of each counted view; events:
each time one is fired), so a page's breakdown reads "views of this page that came from ...".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..storage import Tally

if TYPE_CHECKING:
    from .counting import Details

#: Dimension -> daily tally name.
NAMES = {"referrers": "page-referrers", "campaigns": "page-campaigns", "countries": "page-countries",
         "events": "page-events"}


def member(path: str, value: str) -> str:
    return f"{path} {value}"


def _tally(date: str, dimension: str, path: str, value: str, cap: int, ttl: int) -> Tally:
    return Tally(f"stats:{date}:{NAMES[dimension]}", member(path, value), cap, ttl)


def view_tallies(date: str, path: str, found: Details, cap: int, ttl: int) -> list[Tally]:
    """What one counted view of ``path`` adds to its page's breakdown."""
    pairs = {"referrers": found.referrer, "campaigns": found.utm.get("campaigns"), "countries": found.country}
    return [_tally(date, dimension, path, value, cap, ttl) for dimension, value in pairs.items() if value]


def event_tallies(date: str, path: str, names: Iterable[str], cap: int, ttl: int) -> list[Tally]:
    """What events fired on ``path`` add to its page's breakdown."""
    return [_tally(date, "events", path, name, cap, ttl) for name in names]


def tables(summed: Mapping[str, Mapping[str, int]], path: str, top: int | None) -> dict[str, list[dict]]:
    """The breakdown of ``path``: ``{dimension: [{"value", "count"}, ...]}``, top ``top`` rows each, from the
    range's summed tallies ``{name: {member: count}}``."""
    prefix = member(path, "")
    result = {}
    for dimension, name in NAMES.items():
        rows = [(m[len(prefix):], n) for m, n in summed.get(name, {}).items() if m.startswith(prefix)]
        rows.sort(key=lambda row: (-row[1], row[0]))
        result[dimension] = [{"value": value, "count": n} for value, n in rows[:top]]
    return result
