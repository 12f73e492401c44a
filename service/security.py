"""Who may call the API: CORS for listed origins, same-origin-or-listed POSTs, the CDN's origin secret.

* CORS (flask-cors): only origins in ``ALLOWED_ORIGINS`` get CORS headers,
  preflights included; with the setting empty, no CORS headers at all.
* A browser POST to ``/api`` whose ``Origin`` is neither the site's own
  origin nor listed is refused with 403 (only when ``ALLOWED_ORIGINS`` is set).
* With ``ORIGIN_SECRET`` set, ``/api`` answers only requests carrying it in
  ``X-Origin-Verify`` (CloudFront adds it), so the Lambda URL cannot be
  called around the CDN.
* Every response carries the baseline security headers.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, request
from flask_cors import CORS

from .errors import APIError

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def init_app(app: Flask) -> None:
    allowed = app.config["ALLOWED_ORIGINS"]
    if allowed:
        CORS(app, resources={r"/api/*": {"origins": list(allowed)}}, methods=["GET", "POST", "OPTIONS"],
             allow_headers=["Content-Type", "X-Request-Id"], expose_headers=["Retry-After", "X-Request-Id"],
             max_age=600)

    @app.before_request
    def guard_api():
        if not request.path.startswith("/api/") and request.path != "/api":
            return
        secret = app.config["ORIGIN_SECRET"]
        if secret and not hmac.compare_digest(request.headers.get("X-Origin-Verify", "").encode(), secret.encode()):
            raise APIError(403, "forbidden", "requests must come through the site's CDN")
        origin = request.headers.get("Origin")
        if allowed and origin and request.method not in ("GET", "HEAD", "OPTIONS"):
            own = {_origin(app.config["SITE_URL"]), _origin(request.host_url)}
            if origin.rstrip("/") not in own and origin.rstrip("/") not in allowed:
                raise APIError(403, "origin_not_allowed", "this origin may not post to the API")

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
