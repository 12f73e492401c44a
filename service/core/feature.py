"""What a feature declares about itself, once: `Feature`.

Every feature package (``service/visitors``, ``service/blog``, ...) ends its
``__init__.py`` with one ``FEATURE = Feature(...)``, and `service.features`
lists them all. The app factory registers each feature's blueprints and
CLI group from that declaration, the settings loader reads its settings,
and the site build reads its card and the settings its widget needs (which
is also what ``SITE_WIDGETS`` may name).

Start-up imports every feature's package, so route, page and command
modules import their feature's domain modules inside the views and
commands that use them: creating the app and counting a view (a Lambda
cold start) load no blog, Spotify, GitHub, contact-form or page-rendering
code (tests/core/test_app.py checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click
    from flask import Blueprint, Flask

    from .config import Setting


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature of the product.

    ``blueprints`` are ``(blueprint, url_prefix)`` pairs; ``settings`` the
    settings only this feature reads; ``cli`` its ``flask`` command group;
    ``card`` the name of its card in the site's templates (``_<card>.html``)
    when it has a live widget there, selectable in ``SITE_WIDGETS``;
    ``requires`` the settings without which the widget stays off (the
    ``auto`` widget choice and the ``not_configured`` answer read them);
    ``setup`` anything else the feature attaches to the app (a per-app memo,
    an error page hook), called after its blueprints are registered;
    ``csp_sources`` what its part of the pages loads from a third party with
    the app's settings, ``{"script-src" | "frame-src": (https origin, ...)}``,
    added to the site's Content-Security-Policy (`security.content_security_policy`).
    """

    name: str
    blueprints: tuple[tuple[Blueprint, str], ...] = ()
    settings: tuple[Setting, ...] = ()
    cli: click.Group | None = None
    card: str | None = None
    requires: tuple[str, ...] = ()
    setup: Callable[[Flask], None] | None = None
    csp_sources: Callable[[Mapping[str, Any]], Mapping[str, tuple[str, ...]]] | None = None

    def register(self, app: Flask) -> None:
        """Add this feature's routes and commands to ``app``."""
        for blueprint, prefix in self.blueprints:
            app.register_blueprint(blueprint, url_prefix=prefix or None)
        if self.cli is not None:
            app.cli.add_command(self.cli)
        if self.setup is not None:
            self.setup(app)
