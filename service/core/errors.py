"""The domain errors, and the one place that turns every failure into ``{"error": "<code>", "message": "<text>"}``.

Domain code (and routes) raise these; none of them names an HTTP status,
`status_of` decides it here:

    ServiceError                 base: ``code``, ``message``, extra JSON ``details``
    ├── Invalid                  400 the request (a field, a parameter, the body) is wrong; ``fields`` per field
    ├── Unauthorized             401 the owner's secret is missing or wrong
    ├── Forbidden                403 not allowed from here (origin, CDN secret)
    ├── NotFound                 404 no such thing
    ├── UnsupportedMediaType     415 a body of a type the endpoint does not read
    ├── RateLimited              429 a limit is full; ``retry_after`` seconds (also sent as ``Retry-After``)
    ├── NotConfigured            503 the feature's settings are unset (``missing`` names them)
    └── Unavailable              503 an upstream does not answer and nothing is cached; ``retry_after``
        └── ReauthorizationRequired   503 the owner must renew an upstream's authorization

Each class has a default ``code`` (a specific one may be given, such as
``invalid_path``). Werkzeug's HTTPExceptions keep their status; a
`StorageError` becomes 503; a request body the server cannot decode (a
malformed chunked body, a client gone mid-body) becomes 400 ``invalid_body``;
anything else becomes a logged 500 whose answer carries no traceback.

`init_app` also makes the app's JSON parsing (``request.get_json``) treat
nesting too deep for Python's parser as invalid JSON (a ``ValueError``), so
every route answers such a body as it answers any other bad JSON.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from ..storage import StorageError
from .deps import current
from .redaction import redact_data

log = logging.getLogger(__name__)

#: Error codes for the statuses the API answers with.
CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited", 500: "internal_error", 502: "bad_gateway", 503: "unavailable",
}


class ServiceError(Exception):
    """A failure the visitor or the owner should hear about: ``code``, ``message`` and extra JSON ``details``.

    ``retry_after`` (whole seconds, at least 1) is set on the errors that say when to try again.
    """

    code = "error"

    def __init__(self, message: str = "", /, *, code: str | None = None, retry_after: float | None = None,
                 **details: Any):
        self.code = code or type(self).code
        self.message = message or self.code.replace("_", " ")
        super().__init__(self.message)
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))
        self.details = details


class Invalid(ServiceError):
    code = "invalid"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class UnsupportedMediaType(ServiceError):
    code = "unsupported_media_type"


class RateLimited(ServiceError):
    code = "rate_limited"


class NotConfigured(ServiceError):
    code = "not_configured"


class Unavailable(ServiceError):
    code = "upstream_unavailable"


class ReauthorizationRequired(Unavailable):
    code = "reauthorization_required"


_STATUSES: tuple[tuple[type[ServiceError], int], ...] = (
    (Invalid, 400), (Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (UnsupportedMediaType, 415),
    (RateLimited, 429), (NotConfigured, 503), (Unavailable, 503),
)


def status_of(exc: ServiceError) -> int:
    """The HTTP status a domain error answers with (500 for a `ServiceError` of no listed kind)."""
    return next((status for kind, status in _STATUSES if isinstance(exc, kind)), 500)


def service_error_response(exc: ServiceError) -> Response:
    """``exc`` in the JSON error shape, with ``retry_after`` in the body and as ``Retry-After`` (and the
    Bearer challenge with an `Unauthorized`)."""
    headers, extra = {}, dict(exc.details)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
        extra["retry_after"] = exc.retry_after
    return error_response(status_of(exc), exc.code, exc.message, headers=headers, **extra)


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

    app.register_error_handler(ServiceError, service_error_response)

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
        current().emit("storage_error")
        return error_response(503, "storage_unavailable", "storage is not answering; try again shortly",
                              headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if _unreadable_body(exc):
            return error_response(400, "invalid_body", "the request body is malformed")
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side")
