"""The cookieless visitor counter: count a view, read counts, the daily series and a README badge.

`counter` holds the logic (which keys a view touches, one storage step per view), `privacy` the
daily-salted visitor hash and the bot filter, `routes` the ``/api/visitors`` endpoints.
"""

from __future__ import annotations

from ..core.config import Setting, rate
from ..core.feature import Feature
from . import routes

SETTINGS = (
    Setting("VISITOR_RATE_LIMIT", "60/minute", rate, "Counted views per visitor IP (N/second|minute|hour|day, "
            "or off)."),
)

FEATURE = Feature("visitors", blueprints=((routes.bp, "/api"),), settings=SETTINGS, card="visitors")
