"""GET /api/github: the owner's recent public GitHub activity (see `service.github.activity`)."""

from __future__ import annotations

from flask import Blueprint

from ..core import deps, http

bp = Blueprint("github", __name__)


@bp.get("/github")
def activity():
    from . import activity
    limit = http.query_int("limit", 10, 1, activity.MAX_EVENTS)
    payload, results = activity.activity(deps.current(), limit)
    return http.respond(payload, *results)
