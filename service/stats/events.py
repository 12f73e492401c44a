"""Events and goals: what visitors did on a page besides viewing it, counted per day
(of ``STATS_TIMEZONE``) and per page.

An event is a name: ``outbound:<host>`` (a link to another site), ``download:<file>`` (a link to a
file such as ``/resume.pdf``), ``email`` (a ``mailto:`` link), ``contact-sent`` (the contact form's
message accepted), or the name in a ``data-vitae-event`` attribute of the element clicked. A name is
lowercased and must match `NAME`: at most `MAX_NAME` of ``a-z 0-9 . _ : / -``, starting with a letter or
digit (so no markup, spaces, control or bidi characters, and never ``(other)``); anything else is
refused with 400.

Per day: ``events`` counts each firing, ``event-visitors`` each visitor once per event (a marker
``event:<date>:<visitor>:<name>``, 48 h, on the daily-salted visitor hash of the views), and the
page's breakdown (`breakdown`) counts (page, event). Each is a daily tally, capped at
``STATS_DAILY_VALUES`` names. The report's conversion rate of an event is its visitors over the
range's visitors (both daily uniques, summed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..core.errors import Invalid
from ..storage import Hit, Tally
from . import breakdown

MAX_NAME = 48
#: Events one beacon may carry.
MAX_EVENTS = 8
NAME = re.compile(rf"[a-z0-9][a-z0-9._:/-]{{0,{MAX_NAME - 1}}}")
#: Daily tallies: firings, and visitors once per event.
COUNTS, VISITORS = "events", "event-visitors"
MARKER_TTL = 48 * 3600


def names(raw: object) -> list[str]:
    """The event names of a beacon's ``events`` (a list of at most `MAX_EVENTS` names); 400 otherwise."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_EVENTS:
        raise Invalid(f"events must be a list of at most {MAX_EVENTS} event names", code="invalid_events")
    found = []
    for name in raw:
        name = name.strip().lower() if isinstance(name, str) else None
        if name is None or not NAME.fullmatch(name):
            raise Invalid(f"an event name is 1 to {MAX_NAME} of a-z 0-9 . _ : / - starting with a letter or digit",
                          code="invalid_event")
        found.append(name)
    return found


def tallies(date: str, path: str, fired: Sequence[str], *, cap: int, ttl: int) -> list[Tally]:
    """What the events ``fired`` on ``path`` add to the day's firings and to the page's breakdown."""
    return [*(Tally(f"stats:{date}:{COUNTS}", name, cap, ttl) for name in fired),
            *breakdown.event_tallies(date, path, fired, cap, ttl)]


def visitor_hits(date: str, fired: Sequence[str], visitor: str, *, cap: int, ttl: int) -> list[Hit]:
    """Fold hits counting ``visitor`` once per event and day among the event's visitors."""
    return [Hit(unique=(f"event:{date}:{visitor}:{name}", MARKER_TTL),
                unique_tally=[Tally(f"stats:{date}:{VISITORS}", name, cap, ttl)]) for name in dict.fromkeys(fired)]


def table(summed: Mapping[str, Mapping[str, int]], visitors: int, top: int | None) -> list[dict]:
    """The range's events, most fired first: ``value`` (the name), ``count``, ``visitors`` and ``conversion``
    (visitors who fired it over ``visitors``, 0 to 1, rounded to 4 places), from the summed tallies
    ``{name: {member: n}}``."""
    counts, people = summed.get(COUNTS, {}), summed.get(VISITORS, {})
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [{"value": name, "count": n, "visitors": people.get(name, 0),
             "conversion": round(min(people.get(name, 0) / visitors, 1.0), 4) if visitors else 0.0}
            for name, n in rows]
