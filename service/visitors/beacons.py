"""Beacons: what a viewed page reports after the view, events and reading, recorded in one storage step.

The site's script sends a beacon (``POST /api/visitors/events``, usually by ``navigator.sendBeacon``,
so a ``text/plain`` JSON body) when the page is hidden: the events fired since the last beacon and, in
the first beacon of the view only, the reading (visible seconds, deepest scroll). It names the view it
belongs to (the ``view_id`` the view was counted with) and its place among that view's beacons
(``seq``, 0 to `MAX_SEQ`)::

    {"path": "/", "view_id": "…", "seq": 0, "events": ["outbound:github.com"], "reading": {"seconds": 42, "scroll": 80}}

Recording a beacon is one `Storage.hit` holding only its log record (one write: one round trip on every
backend, one write unit on DynamoDB): the record joins the recorded views in the ``views`` log and the
fold turns it into tallies (`fold_hits`). It holds no address and no User-Agent: only the day, the
path, the view id, the events, the reading and the daily-salted visitor hash (for the events' unique
visitors). Only a view's first beacon (``seq`` 0) brings a reading. The fold keeps no marker per
beacon: ``navigator.sendBeacon`` does not send one twice, and a marker would not stop a forged beacon
(its view id is the sender's to choose) while costing a write each; forged beacons are bounded like
forged views, by the per-address limit.

The per-address limit (``BEACON_RATE_LIMIT``) is counted in each process's memory (`LocalWindows`):
a limit held in storage would be a second write per beacon.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING

from ..core.clock import local_date
from ..core.errors import Invalid
from ..core.privacy import subject_hash, visitor_hash
from ..core.ratelimit import LocalWindows, too_many
from ..stats import events, reading
from ..storage import Hit
from . import counter

if TYPE_CHECKING:
    from ..core.deps import Deps

log = logging.getLogger(__name__)

#: Beacons one view may send (seq 0 .. MAX_SEQ).
MAX_SEQ = 7
#: Largest beacon body read (bytes): a beacon is a few hundred.
MAX_BODY = 4096
KIND = "b"


@dataclasses.dataclass(frozen=True)
class Beacon:
    path: str
    view: str
    seq: int
    events: tuple[str, ...]
    reading: tuple[int, int] | None


def parse(body: object, path: str) -> Beacon:
    """The beacon of a JSON ``body`` whose ``path`` is already normalised; 400 for a missing view id, a
    ``seq`` outside 0..`MAX_SEQ`, bad events (`events.names`) or a bad reading (`reading.reading`), and
    for a beacon carrying neither events nor a reading."""
    assert isinstance(body, dict)
    view = counter.view_id(body.get("view_id"))
    if view is None:
        raise Invalid("view_id is required: the id the page's view was counted with", code="invalid_view_id")
    seq = body.get("seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise Invalid(f"seq must be a whole number from 0 to {MAX_SEQ}", code="invalid_seq")
    fired, read = events.names(body.get("events")), reading.reading(body.get("reading"))
    if not fired and read is None:
        raise Invalid("a beacon carries events, a reading or both", code="empty_beacon")
    return Beacon(path=path, view=view, seq=seq, events=tuple(fired), reading=read)


def record(date: str, visitor: str | None, beacon: Beacon) -> str:
    """The recorded beacon (under 1 KB: a path of at most 200 characters, a 64-character view id and
    `events.MAX_EVENTS` names of at most `events.MAX_NAME`)."""
    return json.dumps({"k": KIND, "d": date, "p": beacon.path, "v": visitor, "i": beacon.view, "s": beacon.seq,
                       "e": list(beacon.events), "r": list(beacon.reading) if beacon.reading else None},
                      separators=(",", ":"))


def send(deps: Deps, limits: LocalWindows, beacon: Beacon, visit: counter.Visit, *, at: float) -> None:
    """Record ``beacon`` made at ``at`` on its day in ``STATS_TIMEZONE`` (the day its view is counted on, with
    that day's visitor salt); raise a `RateLimited` error when this process has seen
    ``BEACON_RATE_LIMIT`` beacons from the address in the window. The caller leaves out bots and
    opted-out visitors."""
    settings = deps.settings
    secret, site, rate = settings["SECRET_KEY"], settings["SITE_URL"], settings["BEACON_RATE_LIMIT"]
    date = local_date(at, settings["STATS_TIMEZONE"])  # the owner's day, as the page's view was counted on
    if rate is not None and not limits.allow(rate, subject_hash(secret, date, visit.ip), at):
        raise too_many(rate, at, "too many beacons from this address; try again later")
    visitor = visitor_hash(secret, date, visit.ip, visit.user_agent, site)
    deps.storage.hit(Hit(record=(counter.VIEWS_LOG, record(date, visitor, beacon))))


def fold_hits(view: dict, cap: int, retention_days: int) -> list[Hit]:
    """What one recorded beacon adds: its events (firings, the page's breakdown) and its reading, then the
    events' visitors. Raises `KeyError`, `TypeError` or `ValueError` for a
    record that cannot be read."""
    date, path, visitor, seq = view["d"], view["p"], view["v"], int(view["s"])
    fired = [name for name in view["e"] if isinstance(name, str)]
    ttl = (retention_days + 1) * 86400
    tallies = events.tallies(date, path, fired, cap=cap, ttl=ttl)
    if view["r"] is not None and seq == 0:
        seconds, scroll = (int(value) for value in view["r"])
        tallies += reading.tallies(date, path, seconds, scroll, cap=cap, ttl=ttl)
    hits = [Hit(tally=tallies)]
    if visitor:
        hits += events.visitor_hits(date, fired, visitor, cap=cap, ttl=ttl)
    return hits
