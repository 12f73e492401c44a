"""Vitae: a personal resume site with live widgets, as one Flask service.

`create_app` builds the app from environment settings (`features.SETTINGS`),
overridden by the ``config`` mapping (tests pass one; ``CLOCK`` injects time).
Nothing app-specific happens at import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface

from .core.version import __version__

__all__ = ["__version__", "create_app"]


class NoSessions(SessionInterface):
    """A session interface that never opens a session (``session`` is Flask's read-only null session)."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The WSGI app. Raises `config.ConfigError` or `storage.ConfigurationError` on a bad setting."""
    from .channels import secret_parts
    from .core import db, errors, logs, redaction, security
    from .core.config import ConfigError, instance_secret, load
    from .core.storage_cli import storage_cli
    from .features import FEATURES, SETTINGS, WIDGET_SETTINGS, csp_sources
    from .theme.templates import WIDGETS_KEY

    app = Flask(__name__, instance_path=os.environ.get("VITAE_INSTANCE_PATH") or None, static_folder=None)
    # Cookieless by design: no session cookie is ever read or set (Flask would otherwise build a
    # signing serializer on every request because SECRET_KEY is set).
    app.session_interface = NoSessions()
    environ = dict(os.environ)
    environ.update({k: str(v) for k, v in (config or {}).items() if isinstance(v, str | int | float)})
    app.config.update(load(SETTINGS, environ))
    app.config.update({k: v for k, v in (config or {}).items() if not isinstance(v, str | int | float)})
    app.config.setdefault("CLOCK", time.time)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    if not app.config["SECRET_KEY"]:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise ConfigError("SECRET_KEY must be set on Lambda (instances share no disk)")
        app.config["SECRET_KEY"] = instance_secret(app.instance_path)
    if not app.config["STORAGE_URL"]:
        app.config["STORAGE_URL"] = f"sqlite:///{os.path.join(app.instance_path, 'vitae.db')}"
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)

    # the channel settings hold secrets inside other values (the SMTP password, a webhook URL's path)
    redaction.init_app(app, (setting.name for setting in SETTINGS if setting.secret), secret_parts(app.config))
    logs.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    security.init_app(app, csp_sources(app.config))
    app.cli.add_command(storage_cli)
    app.extensions[WIDGETS_KEY] = WIDGET_SETTINGS
    for feature in FEATURES:
        feature.register(app)
    return app
