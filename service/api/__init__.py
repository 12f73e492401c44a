"""The JSON API: one blueprint per feature, all under ``/api``."""

from __future__ import annotations

from flask import Blueprint, Flask

#: (module, blueprint) pairs registered by `register`; feature modules add themselves here.
BLUEPRINTS = ("health", "visitors", "spotify", "github", "blog", "contact")


def register(app: Flask) -> None:
    import importlib

    for name in BLUEPRINTS:
        module = importlib.import_module(f"{__name__}.{name}")
        blueprint: Blueprint = module.bp
        app.register_blueprint(blueprint, url_prefix="/api")
