"""Stand-in for Lambda's Python bootstrap, run as a script by `tests.lambda_runtime.LambdaProcess`.

    python -S -B lambda_bootstrap.py MODULE.FUNCTION [--probe-routes]

Runs in a fresh interpreter whose path holds only the unzipped package and
the runtime-provided libraries (no site-packages), like ``/var/task`` and
``/var/runtime``. Reads one JSON object per line on stdin, ``{"event": ...,
"timeout_ms": N}``, calls the handler with a Lambda-like context and writes
``{"response": ...}`` or ``{"error": "..."}`` per line to the original
stdout; whatever the package prints goes to stderr.

``--probe-routes`` adds three GET routes under ``/api/probe/`` to the app
Zappa loads (before its first request) to see the URLs and redirects Flask
builds for a request: where absolute URLs point, a redirect to an absolute
URL, and werkzeug's own trailing-slash redirect.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback
import uuid


class Context:
    """The attributes and method of Lambda's context object that handlers use."""

    def __init__(self, timeout_ms: int):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'eu-west-1')}:123456789012:" \
                                    f"function:{self.function_name}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def add_probe_routes() -> None:
    from zappa.handler import LambdaHandler

    # Loads zappa_settings (environment first), then the app, exactly as the first event would.
    settings = LambdaHandler().settings
    from flask import jsonify, redirect, request, url_for

    app = getattr(importlib.import_module(settings.APP_MODULE), settings.APP_FUNCTION)

    @app.get("/api/probe/where")
    def probe_where():
        return jsonify(external=url_for("probe_where", _external=True), path=url_for("probe_where"),
                       host_url=request.host_url, remote_addr=request.remote_addr, scheme=request.scheme)

    @app.get("/api/probe/redirect")
    def probe_redirect():
        return redirect(url_for("probe_where", _external=True))

    @app.get("/api/probe/folder/")
    def probe_folder():
        return jsonify(folder=True)


def main() -> None:
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the package's prints and logs must not mix with the answers
    # Lambda's runtime gives the root logger a handler writing the level first, before the handler loads.
    logging.basicConfig(format="[%(levelname)s]\t%(message)s")
    module_name, function_name = sys.argv[1].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    if "--probe-routes" in sys.argv[2:]:
        add_probe_routes()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"response": handler(request["event"], Context(request.get("timeout_ms", 15000)))}
        except Exception:  # the runner reports it as the invocation's error, as Lambda does
            answer = {"error": traceback.format_exc()}
        out.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
