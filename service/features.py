"""Every feature of the product, declared once each, in one list.

The app factory registers them in this order (the static site last: its
catch-all route answers only what no other feature does), the settings
loader reads `SETTINGS`, and the site build and ``SITE_WIDGETS`` get the
features that have a card (`WIDGETS`, `WIDGET_SETTINGS`) handed down from
here. This is the only module that imports the feature packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import blog, channels, contact, github, health, outbox, site, spotify, stats, visitors
from .core.config import CORE_SETTINGS, Setting
from .core.feature import Feature

_LIVE: tuple[Feature, ...] = (
    health.FEATURE,
    outbox.FEATURE,
    visitors.FEATURE,
    spotify.FEATURE,
    github.FEATURE,
    blog.FEATURE,
    contact.FEATURE,
    stats.FEATURE,
)

#: Names of the site's live widgets: the features with a card.
WIDGETS: tuple[str, ...] = tuple(feature.card for feature in _LIVE if feature.card)

#: Each widget and the settings it needs (``SITE_WIDGETS=auto`` leaves out a widget missing one); the app
#: factory hands it to the rendering layer (``app.extensions[theme.templates.WIDGETS_KEY]``).
WIDGET_SETTINGS: dict[str, tuple[str, ...]] = {f.card: f.requires for f in _LIVE if f.card}

FEATURES: tuple[Feature, ...] = (*_LIVE, site.feature(WIDGETS))

#: Every setting the service reads: the core's, the channels' (shared machinery, not a feature), then each
#: feature's.
SETTINGS: tuple[Setting, ...] = (CORE_SETTINGS + channels.SETTINGS
                                 + tuple(s for feature in FEATURES for s in feature.settings))


def csp_sources(config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """What the features' parts of the pages load from third parties with ``config``: ``{directive: origins}``
    for the site's Content-Security-Policy (empty when nothing is, so the policy stays the site's own)."""
    sources: dict[str, tuple[str, ...]] = {}
    for feature in FEATURES:
        for directive, origins in (feature.csp_sources(config) if feature.csp_sources else {}).items():
            sources[directive] = tuple(dict.fromkeys((*sources.get(directive, ()), *origins)))
    return sources
