"""Serving the built static site (``SITE_DIR``) at ``/`` in local and self-hosted mode.

Fingerprinted assets (``name.<8+ hex>.ext``) are cached for a year and
immutable; HTML (and XML, text) is revalidated on every visit; other files
for an hour. A missing page answers the site's ``404.html`` when there is one.

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
import threading
from collections import OrderedDict

from flask import Blueprint, Flask, current_app, request, send_from_directory
from werkzeug.security import safe_join

from ..core.config import project_path

bp = Blueprint("site", __name__)
_FINGERPRINT = re.compile(r"\.[0-9a-f]{8,}\.[a-z0-9]+$")
_COMPRESSIBLE = (".html", ".htm", ".css", ".js", ".mjs", ".svg", ".xml", ".json", ".txt", ".webmanifest", ".map")
_MIN_GZIP_BYTES = 512
_MEMO_BYTES = 8 * 1024 * 1024
_memo: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_memo_lock = threading.Lock()


def site_dir(app: Flask) -> str:
    return project_path(app.config["SITE_DIR"])


def _cache_seconds(filename: str) -> int | None:
    if filename.endswith((".html", ".htm", ".xml", ".txt")):
        return 0
    if _FINGERPRINT.search(filename):
        return 365 * 86400
    return 3600


def gzipped(path: str) -> bytes:
    """The gzip of the file at ``path``, compressed once per (path, size, mtime) and memoised (8 MB in all)."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    with open(path, "rb") as handle:
        data = gzip.compress(handle.read(), compresslevel=9, mtime=0)
    with _memo_lock:
        _memo[key] = data
        total = sum(len(value) for value in _memo.values())
        while total > _MEMO_BYTES and len(_memo) > 1:
            total -= len(_memo.popitem(last=False)[1])
    return data


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def _compress(response, root: str, filename: str):
    """Swap in the gzipped body when the client accepts it; every text answer varies on Accept-Encoding."""
    if not filename.endswith(_COMPRESSIBLE):
        return response
    response.vary.add("Accept-Encoding")
    if response.status_code not in (200, 404) or not _accepts_gzip():
        if response.status_code == 304 and _accepts_gzip():
            etag, _ = response.get_etag()
            if etag:
                response.set_etag(etag, weak=True)
        return response
    path = safe_join(root, filename)
    if path is None or os.path.getsize(path) < _MIN_GZIP_BYTES:
        return response
    body = gzipped(path)
    etag, _ = response.get_etag()
    original = response.response
    response.direct_passthrough = False
    response.set_data(body)
    if hasattr(original, "close"):
        original.close()
    response.headers["Content-Encoding"] = "gzip"
    if etag:
        response.set_etag(etag, weak=True)
    return response


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
