"""The contact form: ``POST /api/contact`` and the form posted without JavaScript.

`form` validates and lays out a message, `routes` accepts it (Turnstile, limits) into the outbox
(`service.outbox`, which delivers it), `pages` answers a form sent without JavaScript, `turnstile` is the
upstream client of the human check.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..core.config import Setting, http_url, rate, text
from ..core.feature import Feature
from . import routes

SETTINGS = (
    Setting("TURNSTILE_SECRET", "", text, "Cloudflare Turnstile secret key: when set, the contact form needs a "
            "passed Turnstile check.", secret=True),
    Setting("TURNSTILE_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify", http_url,
            "Turnstile's siteverify endpoint."),
    Setting("CONTACT_RATE_LIMIT", "5/hour", rate, "Contact messages per sender address (N/second|minute|hour|day, "
            "or off)."),
    Setting("CONTACT_GLOBAL_RATE_LIMIT", "100/day", rate, "Contact messages accepted from everyone together "
            "(N/second|minute|hour|day, or off)."),
)


def _layout(item_id: str, payload: Any) -> list[str]:
    from .form import render

    return render(item_id, payload)


def _describe(item_id: str, payload: Any):
    from .form import describe

    return describe(item_id, payload)


def _setup(app: Flask) -> None:
    # the outbox lays contact messages out with the form's own layout (it imports no feature)
    deps = app.extensions["vitae.deps"]
    deps.lays_out("contact", _layout)
    deps.describes("contact", _describe)


FEATURE = Feature("contact", blueprints=((routes.bp, "/api"),), settings=SETTINGS, card="contact", setup=_setup)
