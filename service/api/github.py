"""GET /api/github: the owner's recent public GitHub activity (see `service.github`)."""

from __future__ import annotations

from flask import Blueprint

from .. import github, widgets

bp = Blueprint("github", __name__)


@bp.get("/github")
def activity():
    limit = widgets.query_int("limit", 10, 1, github.MAX_EVENTS)
    payload, results = github.activity(limit)
    return widgets.respond(payload, *results)
