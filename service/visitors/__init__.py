"""The cookieless visitor counter: count a view, read counts, the daily series and a README badge.

`counter` holds the logic (which keys a view touches, one storage step per view, the fold of recorded
views), `privacy` the daily-salted visitor hash and the bot filter, `routes` the ``/api/visitors``
endpoints, `folding` who runs the fold and when, `cli` ``flask visitors fold``.
"""

from __future__ import annotations

from flask import Flask

from ..core.config import Setting, number, rate
from ..core.feature import Feature
from . import folding, routes
from .cli import visitors_cli

SETTINGS = (
    Setting("VISITOR_RATE_LIMIT", "60/minute", rate, "Counted views per visitor IP (N/second|minute|hour|day, "
            "or off)."),
    Setting("VISITOR_FOLD_SECONDS", "0", number(0, 3600), "Seconds between folds of recorded views inside each "
            "web process (`make run` sets 2); 0: only the worker and the schedule fold."),
)


def setup(app: Flask) -> None:
    """Fold recorded views on the periodic tick (the worker's loop, the Lambda schedule) and, with
    ``VISITOR_FOLD_SECONDS``, in a background thread of this process."""
    folding.start(app.extensions["vitae.deps"])


FEATURE = Feature("visitors", blueprints=((routes.bp, "/api"),), settings=SETTINGS, cli=visitors_cli, setup=setup,
                  card="visitors")
