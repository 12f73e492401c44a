"""gunicorn settings, read from the environment with small-box defaults.

Used by `make run`, the container image (Dockerfile ``CMD``) and the
throughput benchmark alike. Every request is logged to stdout as one JSON
object (`JSONAccessLogger`) with the same ``request_id`` as the app's own
log lines; visitor addresses are left out of it and of gunicorn's error log.

Workers are gevent's (`JSONErrorsGeventWorker`): a connection waits for its
request in a greenlet, not a thread, so slow clients cannot occupy the
workers (gunicorn's docs: the threaded and sync workers need a buffering
proxy in front against slow clients; async workers do not). Measured: with
400 connections sending their headers or bodies a byte at a time,
``/api/health`` still answers (tests/test_server.py); ``make bench`` shows
the throughput. The answers gunicorn itself gives to a request it cannot
parse (400, 414, 431, 501...) are JSON in the API's error shape.

Environment: ``BIND`` (``0.0.0.0:8000``), ``WEB_CONCURRENCY`` (worker
processes, 2), ``GUNICORN_WORKER_CONNECTIONS`` (open connections per worker,
1000), ``GUNICORN_TIMEOUT`` (30 s), ``GUNICORN_GRACEFUL_TIMEOUT`` (20 s),
``FORWARDED_ALLOW_IPS`` (who may set ``X-Forwarded-Proto``; loopback),
``ACCESS_LOG`` (``0`` turns the access log off), ``GUNICORN_LOG_LEVEL``.
"""

import json
import logging
import os
import re
import time

from gunicorn import glogging, util
from gunicorn.workers.ggevent import GeventWorker

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Two processes: enough for a personal site on one small core. Each serves its connections in gevent
# greenlets (the app's sockets, Redis's and the upstreams', are cooperative after gevent's monkey-patching,
# done by the worker before the app loads): a client that sends its request slowly holds a greenlet, not
# one of a few threads. Chosen over gthread (4 threads a worker: 8 slow clients stopped the service) and
# over a buffering proxy in front (one more container, and `make run` would stay exposed).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# The workers' heartbeat files on a RAM disk: a container's overlay disk can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's documented choice
# Only the proxy in front of the app (compose network or loopback) may set X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Bodies are written by the worker, not os.sendfile: gunicorn counts only written bytes in the access log
# ("bytes" was 0 for every file of the site).
sendfile = False
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") != "0" else None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No runtime control socket: it would be written under $HOME, which the image's user cannot write.
control_socket_disable = True


#: gunicorn's one error-log line that names a client: "Invalid request from ip=ADDRESS: reason".
_CLIENT_ADDRESS = re.compile(r" from ip=\S*")
# The API's codes for the statuses gunicorn answers with; not imported from service.core.errors, which would load
# Flask in the arbiter before gevent patches the workers.
_STATUS_CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed",
                 431: "request_header_fields_too_large", 500: "internal_error", 501: "not_implemented"}


class _NoClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if " from ip=" in message:
            record.msg, record.args = _CLIENT_ADDRESS.sub(":", message, count=1), ()
        return True


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error` with a JSON body in the API's ``{"error", "message"}`` shape."""
    body = json.dumps({"error": _STATUS_CODES.get(status_int, "bad_request"), "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JSONErrorsGeventWorker(GeventWorker):
    """gunicorn's gevent worker whose own error answers (a request it could not parse) are JSON."""

    def init_process(self):
        # gunicorn writes every such answer through this one function (workers/base.py, handle_error)
        util.write_error = write_json_error
        super().init_process()


worker_class = JSONErrorsGeventWorker


class JSONAccessLogger(glogging.Logger):
    """gunicorn's logger with access lines serialised by `json.dumps`, so any header value stays valid JSON,
    and without the client's address in the error log."""

    def setup(self, cfg):
        super().setup(cfg)
        self.error_log.addFilter(_NoClientAddress())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        now = time.time()
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "level": "INFO", "logger": "access", "method": atoms["m"], "path": atoms["U"],
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"], "bytes": atoms["B"],
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": atoms.get("{x-request-id}o"), "user_agent": atoms["a"],
        }
        self.access_log.info(json.dumps(entry, ensure_ascii=False))


logger_class = JSONAccessLogger
