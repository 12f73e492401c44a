"""What the live widgets' endpoints (Spotify, GitHub, blog) share: settings checks, query bounds, answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, jsonify, request

from .cache import Cached
from .errors import Invalid, NotConfigured


def require(*names: str) -> list[Any]:
    """The values of settings ``names``; a `NotConfigured` error naming the unset ones."""
    values = [current_app.config.get(name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise NotConfigured(f"this widget is off: set {', '.join(missing)}", missing=missing)
    return values


def query_int(name: str, default: int, low: int, high: int) -> int:
    """Query argument ``name`` as a whole number in ``low..high``; an `Invalid` error otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # The length check comes first: int() refuses strings of more than 4,300 digits with a ValueError.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}", code=f"invalid_{name}")
    return int(raw)


def web_url(value: Any) -> str | None:
    """``value`` if it is an absolute http(s) URL (safe for an href or img src), else None."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def respond(payload: dict[str, Any], *results: Cached) -> Response:
    """JSON of ``payload`` plus ``stale``/``age`` (the worst of ``results``) and a matching ``Cache-Control``.

    The answer carries an ETag, so a client revalidating gets a 304.
    """
    response = jsonify({**payload, "stale": any(r.stale for r in results), "age": max(r.age for r in results)})
    response.headers["Cache-Control"] = f"public, max-age={min(r.max_age for r in results)}"
    response.add_etag()
    return response.make_conditional(request)
