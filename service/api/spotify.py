"""GET /api/spotify: what the owner is listening to (see `service.spotify`)."""

from __future__ import annotations

from flask import Blueprint

from .. import spotify, widgets

bp = Blueprint("spotify", __name__)


@bp.get("/spotify")
def now_playing():
    payload, result = spotify.now_playing()
    return widgets.respond(payload, result)
