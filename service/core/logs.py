"""Logs as one JSON object per line on stdout, each with the request id.

The request id comes from a well-formed incoming ``X-Request-Id`` (so a proxy's
id carries through) or is made here, and is echoed in the response header. It
is a WSGI middleware rather than Flask hooks: it runs on every request, and
a plain header list costs a fraction of two hooks and werkzeug's Headers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

from flask import Flask, has_request_context, request

from .redaction import redact

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Where the request id lives in the WSGI environ.
ENVIRON_KEY = "vitae.request_id"
_HANDLER_MARK = "_vitae_json"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = request.environ.get(ENVIRON_KEY)
            entry["method"] = request.method
            entry["path"] = redact(request.path)  # a path may carry a secret (a share link)
        if record.exc_info:
            # the text `redaction` made when the record was created, secrets taken out
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (gunicorn and test runners swap it)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def configure(level: str) -> None:
    """Send the root logger's records to stdout as JSON (once per process)."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JSONFormatter())
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)


class RequestIds:
    """WSGI middleware: give every request an id (``environ[ENVIRON_KEY]``) and answer it as ``X-Request-Id``."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        environ[ENVIRON_KEY] = request_id

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-Id", request_id))
            return start_response(status, headers, exc_info)
        return self.app(environ, start)


def init_app(app: Flask) -> None:
    configure(app.config["LOG_LEVEL"])
    app.wsgi_app = RequestIds(app.wsgi_app)
