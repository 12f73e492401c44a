"""Serving the built static site (``SITE_DIR``) at ``/`` in local and self-hosted mode.

Fingerprinted assets (``name.<8+ hex>.ext``) are cached for a year and
immutable; HTML is revalidated on every visit; other files for an hour.
A missing page answers the site's ``404.html`` when there is one.
"""

from __future__ import annotations

import os
import re

from flask import Blueprint, Flask, current_app, send_from_directory

bp = Blueprint("site", __name__)
_FINGERPRINT = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")


def site_dir(app: Flask) -> str:
    path = app.config["SITE_DIR"]
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(app.root_path), path)


def _cache_seconds(filename: str) -> int | None:
    if filename.endswith((".html", ".htm", ".xml", ".txt")):
        return 0
    if _FINGERPRINT.search(filename):
        return 365 * 86400
    return 3600


@bp.get("/", defaults={"filename": "index.html"})
@bp.get("/<path:filename>")
def static_file(filename: str):
    root = site_dir(current_app)
    if filename.endswith("/") or os.path.isdir(os.path.join(root, filename)):
        filename = filename.rstrip("/") + "/index.html"
    response = send_from_directory(root, filename, max_age=_cache_seconds(filename))
    if _cache_seconds(filename) == 0:
        response.headers["Cache-Control"] = "no-cache"
    elif _FINGERPRINT.search(filename):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    def html_error(status: int):
        if status != 404:
            return None
        page = os.path.join(site_dir(app), "404.html")
        if not os.path.isfile(page):
            return None
        response = send_from_directory(site_dir(app), "404.html", max_age=0)
        response.status_code = 404
        return response

    app.extensions["vitae.html_error"] = html_error

