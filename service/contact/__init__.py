"""The contact form: ``POST /api/contact`` and the form posted without JavaScript.

`form` validates and lays out a message, `routes` accepts it (Turnstile, limits) into the outbox
(`service.outbox`, which delivers it), `pages` answers a form sent without JavaScript, `turnstile` is the
upstream client of the human check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from ..core.config import Setting, http_url, matching, rate, text
from ..core.feature import Feature
from . import routes

log = logging.getLogger(__name__)

#: Where Cloudflare serves the Turnstile widget's script and frames.
TURNSTILE_ORIGIN = "https://challenges.cloudflare.com"

SETTINGS = (
    Setting("TURNSTILE_SITE_KEY", "", matching(r"[A-Za-z0-9_-]{1,100}", "a Turnstile site key like 0x4AAAAAAA…"),
            "Cloudflare Turnstile site key (public): when set, the contact form carries Cloudflare's widget and "
            "the Content-Security-Policy allows its script and frames from https://challenges.cloudflare.com. "
            "Baked into the built pages: set it where the site is built (`make site`, the image build, the "
            "deploy workflow) and where the app runs, together with TURNSTILE_SECRET."),
    Setting("TURNSTILE_SECRET", "", text, "Cloudflare Turnstile secret key: when set, every contact message "
            "needs a Turnstile token that Cloudflare's siteverify confirms (a message without one is refused). "
            "Set it with TURNSTILE_SITE_KEY, whose widget gives the bundled form its token.", secret=True),
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


def _csp_sources(config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Cloudflare's origin for the widget's script and frames, when the pages carry the widget."""
    if not config.get("TURNSTILE_SITE_KEY"):
        return {}
    return {"script-src": (TURNSTILE_ORIGIN,), "frame-src": (TURNSTILE_ORIGIN,)}


def _warn_about_half_a_turnstile(config: Mapping[str, Any]) -> None:
    """One of the two Turnstile keys alone is a mistake unless the app only builds the site (which needs
    the public key, not the secret) or another page renders the widget."""
    if config.get("TURNSTILE_SITE_KEY") and not config.get("TURNSTILE_SECRET"):
        log.warning("TURNSTILE_SITE_KEY is set without TURNSTILE_SECRET: the form shows Cloudflare's widget "
                    "but this app does not check its tokens (fine while only building the site)")
    elif config.get("TURNSTILE_SECRET") and not config.get("TURNSTILE_SITE_KEY"):
        log.warning("TURNSTILE_SECRET is set without TURNSTILE_SITE_KEY: the bundled form shows no widget, so "
                    "every message it sends is refused (fine if only your own page, with its widget, posts)")


def _setup(app: Flask) -> None:
    # the outbox lays contact messages out with the form's own layout (it imports no feature)
    deps = app.extensions["vitae.deps"]
    deps.lays_out("contact", _layout)
    deps.describes("contact", _describe)
    _warn_about_half_a_turnstile(app.config)


FEATURE = Feature("contact", blueprints=((routes.bp, "/api"),), settings=SETTINGS, card="contact", setup=_setup,
                  csp_sources=_csp_sources)
