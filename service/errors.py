"""One JSON error shape for every failure: ``{"error": "<code>", "message": "<text>"}``.

Views raise `APIError` (or let Werkzeug raise an HTTPException); a
`StorageError` becomes 503; a request body the server cannot decode (a
malformed chunked body, a client gone mid-body) becomes 400 ``invalid_body``;
anything else becomes a logged 500 whose answer carries no traceback.

`init_app` also makes the app's JSON parsing (``request.get_json``) treat
nesting too deep for Python's parser as invalid JSON (a ``ValueError``), so
every route answers such a body as it answers any other bad JSON.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from .redaction import redact_data
from .storage import StorageError

log = logging.getLogger(__name__)

#: Error codes for the statuses the API answers with.
CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "unavailable",
}


class APIError(Exception):
    """An error answer: status, machine-readable code, human message, extra JSON fields and headers."""

    def __init__(self, status: int, code: str | None = None, message: str = "", /, *,
                 headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message or code)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message or self.code.replace("_", " ")
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, code: str | None = None, message: str = "", /, *,
                   headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"error": code or CODES.get(status, "error"), "message": message or CODES.get(status, "error"), **extra}
    # an error answer may quote an upstream or an exception: no configured secret leaves in it
    response = jsonify(redact_data(body))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider whose ``loads`` raises ``ValueError`` (never ``RecursionError``) on deep nesting."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _unreadable_body(exc: Exception) -> bool:
    """Whether ``exc`` is gunicorn failing to decode the request body the app was reading."""
    # Looked up, not imported: on Lambda (or under the test client) gunicorn is not loaded and cannot be the cause.
    parser_errors = sys.modules.get("gunicorn.http.errors")
    return parser_errors is not None and isinstance(exc, (parser_errors.ParseException, parser_errors.NoMoreData))


def init_app(app: Flask) -> None:
    app.json = JSONProvider(app)

    @app.errorhandler(APIError)
    def api_error(exc: APIError):
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        response = app.extensions.get("vitae.html_error")
        if response is not None and not request.path.startswith("/api"):
            html = response(status)
            if html is not None:
                return html
        return error_response(status, None, exc.description or "", headers=headers)

    @app.errorhandler(StorageError)
    def storage_error(exc: StorageError):
        log.error("storage unavailable: %s", exc)
        from .stats.notify import storage_failed

        storage_failed()
        return error_response(503, "storage_unavailable", "storage is not answering; try again shortly",
                              headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if _unreadable_body(exc):
            return error_response(400, "invalid_body", "the request body is malformed")
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side")
