"""What routes share: bounded query integers and cached JSON answers with ETags (the only HTTP here)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from .cache import Cached
from .errors import Invalid


def query_int(name: str, default: int, low: int, high: int) -> int:
    """Query argument ``name`` as a whole number in ``low..high``; an `Invalid` error otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    # The length check comes first: int() refuses strings of more than 4,300 digits with a ValueError.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}", code=f"invalid_{name}")
    return int(raw)


def respond(payload: dict[str, Any], *results: Cached) -> Response:
    """JSON of ``payload`` plus ``stale``/``age`` (the worst of ``results``) and a matching ``Cache-Control``.

    The answer carries an ETag, so a client revalidating gets a 304.
    """
    response = jsonify({**payload, "stale": any(r.stale for r in results), "age": max(r.age for r in results)})
    response.headers["Cache-Control"] = f"public, max-age={min(r.max_age for r in results)}"
    response.add_etag()
    return response.make_conditional(request)
