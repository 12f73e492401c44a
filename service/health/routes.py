"""GET /api/health: is the service up and does its storage answer."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..core.deps import current
from ..core.errors import error_response
from ..core.version import __version__
from ..storage import StorageError

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    storage = current().storage
    try:
        storage.check()
    except StorageError:
        return error_response(503, "storage_unavailable", "storage does not answer", status="error",
                              storage=storage.scheme, version=__version__)
    response = jsonify(status="ok", storage=storage.scheme, version=__version__)
    response.headers["Cache-Control"] = "no-store"
    return response
