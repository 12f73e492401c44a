"""Serving the built static site (``SITE_DIR``) at ``/`` in local and self-hosted mode.

Fingerprinted assets (``name.<8+ hex>.ext``) are cached for a year and
immutable; HTML (and XML, text, the resume's PDF) is revalidated on every visit; other files
for an hour. A missing page answers the site's ``404.html`` when there is one. A folder is served
from its ``index.html`` at its address with the slash (``/de/``); without it (``/de``) it answers a
permanent redirect there.

Text files (HTML, CSS, JS, SVG, XML, JSON, text) are gzipped on the fly for
clients that accept it, with ``Vary: Accept-Encoding`` and a weak ETag (the
bytes differ from the file's, the meaning does not, and conditional requests
still answer 304). Compressed bodies are kept in a small per-process memo
keyed by path, size and modification time, so a file is compressed once
per worker and a rebuilt site is picked up at once. The build writes no
``.gz`` files: its folder is uploadable to S3 as-is, and CloudFront
compresses there.
"""

from __future__ import annotations

import gzip
import os
import re

from flask import Blueprint, Flask, current_app, redirect, request, send_from_directory
from werkzeug.security import safe_join

from ..core.config import project_path
from ..theme.responses import Memo, negotiate_gzip

bp = Blueprint("site", __name__)
_FINGERPRINT = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
_COMPRESSIBLE = (".html", ".htm", ".css", ".js", ".mjs", ".svg", ".xml", ".json", ".txt", ".webmanifest", ".map")
_memo = Memo(max_bytes=8 * 1024 * 1024)


def site_dir(app: Flask) -> str:
    return project_path(app.config["SITE_DIR"])


def _cache_seconds(filename: str) -> int | None:
    if filename.endswith((".html", ".htm", ".xml", ".txt", ".pdf")):  # the PDF's name is not fingerprinted
        return 0
    if _FINGERPRINT.search(filename):
        return 365 * 86400
    return 3600


def gzipped(path: str) -> bytes:
    """The gzip of the file at ``path``, compressed once per (path, size, mtime) and memoised (8 MB in all)."""
    stat = os.stat(path)

    def compress() -> bytes:
        with open(path, "rb") as handle:
            return gzip.compress(handle.read(), compresslevel=9, mtime=0)

    return _memo.get((path, stat.st_size, stat.st_mtime_ns), compress)


def _compress(response, root: str, filename: str):
    """Swap in the gzipped body when the client accepts it; every text answer varies on Accept-Encoding."""
    if not filename.endswith(_COMPRESSIBLE):
        return response
    path = safe_join(root, filename)
    if path is None or response.status_code not in (200, 404):
        return negotiate_gzip(response, 0, bytes)  # the Vary header, and a weak ETag on a 304
    return negotiate_gzip(response, os.path.getsize(path), lambda: gzipped(path), statuses=(200, 404))


@bp.get("/", defaults={"filename": "index.html"})
@bp.get("/<path:filename>")
def static_file(filename: str):
    root = site_dir(current_app)
    folder = safe_join(root, filename)
    if not filename.endswith("/") and folder is not None and os.path.isdir(folder):
        # /de -> /de/, as CloudFront's viewer-request function answers: one address per page. safe_join
        # refused absolute and climbing names, so the target stays a path on this site.
        query = request.query_string.decode("latin-1")
        return redirect("/" + filename.strip("/") + "/" + (f"?{query}" if query else ""), code=301)
    if filename.endswith("/"):
        filename = filename.rstrip("/") + "/index.html"
    response = send_from_directory(root, filename, max_age=_cache_seconds(filename))
    if _cache_seconds(filename) == 0:
        response.headers["Cache-Control"] = "no-cache"
    elif _FINGERPRINT.search(filename):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return _compress(response, root, filename)


def setup(app: Flask) -> None:
    """Answer a 404 outside ``/api`` with the site's own 404 page, when the build has one."""

    def html_error(status: int):
        if status != 404:
            return None
        page = os.path.join(site_dir(app), "404.html")
        if not os.path.isfile(page):
            return None
        response = send_from_directory(site_dir(app), "404.html", max_age=0)
        response.status_code = 404
        response.headers["Cache-Control"] = "no-cache"
        return _compress(response, site_dir(app), "404.html")

    app.extensions["vitae.html_error"] = html_error
