"""The report's sections past the dimension tables: events, reading, and a chosen page's breakdown.

Their daily tallies (`names`) are read in the report's one `Storage.daily_tallies` call, beside the
dimensions' (on DynamoDB one ``Query`` more per name, run together); the per-page breakdown's only when
the report is filtered on a page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import breakdown, events, reading
from .counting import SERIES

#: The sections that are tables of rows (a ``value`` and its numbers), compared like the dimensions' tables.
TABLES = ("events", "reading")
#: Each table's numbers as CSV columns (reading's ``scroll`` flattened), and those compared (all but scroll's).
COLUMNS = {"events": ("count", "visitors", "conversion"),
           "reading": ("readings", "median_seconds", *(f"scroll_{level}" for level in reading.LEVELS))}
COMPARED = {"events": COLUMNS["events"], "reading": ("readings", "median_seconds")}


def _page(chosen: tuple[str, str] | None) -> str | None:
    return chosen[1] if chosen is not None and chosen[0] == "pages" else None


def names(chosen: tuple[str, str] | None) -> tuple[str, ...]:
    """The daily tally names `sections` reads for a report filtered on ``chosen``."""
    return (events.COUNTS, events.VISITORS, *reading.NAMES, *(breakdown.NAMES.values() if _page(chosen) else ()))


def sections(tallies: Mapping[str, Mapping[str, int]], dates: Sequence[str], chosen: tuple[str, str] | None,
             visitors: int, top: int | None) -> dict[str, Any]:
    """``events`` (`events.table`, conversion over ``visitors``), ``reading`` (`reading.table`) and ``page``
    (`breakdown.tables` of the page ``chosen`` names, else None) for the days ``dates``, from the daily
    tallies (`Storage.daily_tallies`) of `names`."""
    page = _page(chosen)
    names_read = names(chosen)
    summed: dict[str, dict[str, int]] = {name: {} for name in names_read}
    for day in dates:
        for name in names_read:
            into = summed[name]
            for member, n in (tallies.get(f"{SERIES}:{day}:{name}") or {}).items():
                into[member] = into.get(member, 0) + n
    return {"events": events.table(summed, visitors, top), "reading": reading.table(summed, top),
            "page": breakdown.tables(summed, page, top) if page else None}
