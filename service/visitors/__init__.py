"""The cookieless visitor counter: count a view, read counts, the daily series and a README badge.

`counter` holds the logic (which keys a view touches, one storage step per view, the fold of recorded
views), `beacons` a page's events and reading recorded after its view, `privacy` the daily-salted visitor
hash and the bot filter, `routes` the ``/api/visitors`` endpoints, `folding` who runs the fold and when,
`cli` ``flask visitors fold``.
"""

from __future__ import annotations

from flask import Flask

from ..core.config import Setting, number, rate
from ..core.feature import Feature
from ..core.ratelimit import LocalWindows
from . import folding, routes
from .cli import visitors_cli

SETTINGS = (
    Setting("VISITOR_RATE_LIMIT", "60/minute", rate, "Counted views per visitor IP (N/second|minute|hour|day, "
            "or off)."),
    Setting("BEACON_RATE_LIMIT", "60/minute", rate, "Beacons (a page's events and reading, POST "
            "/api/visitors/events) per visitor IP and process (N/second|minute|hour|day, or off): counted in each "
            "process's memory, since a limit held in storage would double a beacon's storage writes."),
    Setting("VISITOR_FOLD_SECONDS", "0", number(0, 3600), "Seconds between folds of recorded views inside each "
            "web process (`make run` sets 2); 0: only the worker and the schedule fold."),
)


def setup(app: Flask) -> None:
    """Fold recorded views on the periodic tick (the worker's loop, the Lambda schedule) and, with
    ``VISITOR_FOLD_SECONDS``, in a background thread of this process."""
    folding.start(app.extensions["vitae.deps"])
    app.extensions["vitae.beacon-limits"] = LocalWindows()


FEATURE = Feature("visitors", blueprints=((routes.bp, "/api"),), settings=SETTINGS, cli=visitors_cli, setup=setup,
                  card="visitors")
