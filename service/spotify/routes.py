"""GET /api/spotify: what the owner is listening to (see `service.spotify.nowplaying`)."""

from __future__ import annotations

from flask import Blueprint

from ..core import deps, http

bp = Blueprint("spotify", __name__)


@bp.get("/spotify")
def now_playing():
    from . import nowplaying
    payload, result = nowplaying.now_playing(deps.current())
    return http.respond(payload, result)
