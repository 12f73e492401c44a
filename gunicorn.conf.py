"""gunicorn settings, read from the environment with small-box defaults.

Used by `make run`, the container image (Dockerfile ``CMD``) and the
throughput benchmark alike. Every request is logged to stdout as one JSON
object (`JSONAccessLogger`) with the same ``request_id`` as the app's own
log lines; visitor addresses are left out of it and of gunicorn's error log.

Workers are gevent's (`JSONErrorsGeventWorker`): a connection waits for its
request in a greenlet, not a thread, so a slow client costs a greenlet, not
one of a few threads (gunicorn's docs: the threaded and sync workers need a
buffering proxy in front against slow clients). Greenlets are still a
bounded pool (``GUNICORN_WORKER_CONNECTIONS`` a worker), so the worker also
bounds what one client can hold of it:

* time: a request's headers must arrive within 5 s (gunicorn's
  ``keepalive``, also the wait for the next request on a kept-alive
  connection; the connection is closed), its whole body within
  ``GUNICORN_BODY_TIMEOUT`` seconds of its headers (a JSON 408, then the
  connection is closed);
* connections: one client address may hold ``GUNICORN_CONNECTIONS_PER_ADDRESS``
  open connections in each worker; more are closed as soon as they are
  accepted. An IPv6 client counts by its /64. Peers in
  ``FORWARDED_ALLOW_IPS`` (the proxy in front, which speaks for many
  visitors) and UNIX-socket peers are not counted.

Measured (tests/deploy/test_gunicorn.py): while one address holds 3,000
stalled bodies and 3,000 stalled headers open, ``/api/health`` answers
another address within 2 s; with 400 connections from a trusted address
sending their headers or bodies a byte at a time, it still answers.
``make bench`` shows the throughput. The answers gunicorn itself gives to a
request it cannot parse (400, 414, 431, 501...) are JSON in the API's error
shape.

Environment: ``BIND`` (``0.0.0.0:8000``), ``WEB_CONCURRENCY`` (worker
processes, 2), ``GUNICORN_WORKER_CONNECTIONS`` (open connections per worker,
1000), ``GUNICORN_CONNECTIONS_PER_ADDRESS`` (open connections one client
address may hold per worker, 50), ``GUNICORN_BODY_TIMEOUT`` (seconds a
request body may take after its headers, 10), ``GUNICORN_TIMEOUT`` (30 s),
``GUNICORN_GRACEFUL_TIMEOUT`` (20 s), ``FORWARDED_ALLOW_IPS`` (who may set
``X-Forwarded-Proto`` and is exempt from the per-address limit; loopback),
``ACCESS_LOG`` (``0`` turns the access log off), ``GUNICORN_LOG_LEVEL``.
"""

import contextlib
import ipaddress
import json
import logging
import os
import re
import time
from datetime import datetime

import gevent
from gunicorn import glogging, util
from gunicorn.http.wsgi import Response, default_environ
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
# Also the deadline for a request's headers (the gevent worker reads them under a `keepalive` timeout).
keepalive = 5
# Not gunicorn settings: read by JSONErrorsGeventWorker below. 50 in each of 2 workers: a household or an
# office behind one NAT stays far below it (a browser opens about 6 connections to a site); one address
# holds at most 100 of the 2,000 connections.
CONNECTIONS_PER_ADDRESS = int(os.environ.get("GUNICORN_CONNECTIONS_PER_ADDRESS", "50"))
# The largest body the app takes (MAX_BODY_BYTES, 64 KiB) needs 6.5 KB/s to arrive in 10 s.
BODY_TIMEOUT = float(os.environ.get("GUNICORN_BODY_TIMEOUT", "10"))
if CONNECTIONS_PER_ADDRESS < 1 or not BODY_TIMEOUT > 0:
    raise ValueError("GUNICORN_CONNECTIONS_PER_ADDRESS must be at least 1 and GUNICORN_BODY_TIMEOUT above 0")
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
_STATUS_CODES = {400: "bad_request", 403: "forbidden", 408: "request_timeout", 414: "uri_too_long",
                 417: "expectation_failed", 431: "request_header_fields_too_large", 500: "internal_error",
                 501: "not_implemented"}


class _NoClientAddress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if " from ip=" in message:
            record.msg, record.args = _CLIENT_ADDRESS.sub(":", message, count=1), ()
        return True


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> int:
    """gunicorn's `util.write_error` with a JSON body in the API's ``{"error", "message"}`` shape; the body's
    length."""
    body = json.dumps({"error": _STATUS_CODES.get(status_int, "bad_request"), "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)
    return len(body)


class _BodyTimeout(gevent.Timeout):
    """The request body did not arrive by its deadline. A BaseException, like every gevent timeout: the app's
    ``except Exception`` blocks let it through to the worker, which answers 408."""


class _DeadlineReader:
    """A request body reader (gunicorn's LengthReader, ChunkedReader or EOFReader) whose every read ends by
    ``deadline`` (`time.monotonic`) or raises `_BodyTimeout`. `gunicorn.http.body.Body` reads only through
    its reader's ``read``, so this one method bounds ``read``, ``readline`` and iteration alike."""

    __slots__ = ("reader", "deadline")

    def __init__(self, reader, deadline: float):
        self.reader, self.deadline = reader, deadline

    def read(self, size):
        with _BodyTimeout(max(self.deadline - time.monotonic(), 0.0)):
            return self.reader.read(size)


class JSONErrorsGeventWorker(GeventWorker):
    """gunicorn's gevent worker whose own error answers (a request it could not parse) are JSON, and which
    bounds what one client can hold (see the module docstring):

    * `handle` (one greenlet a connection) closes a connection at once when its address already holds
      `CONNECTIONS_PER_ADDRESS` in this process; the count lives in this process's memory;
    * `handle_request` gives the app a body that must arrive within `BODY_TIMEOUT` of the headers, else
      answers 408 (the app reads a body before it answers, so the answer can still be written) and closes.
    """

    def init_process(self):
        # gunicorn writes every such answer through this one function (workers/base.py, handle_error)
        util.write_error = write_json_error
        self.connections: dict[object, int] = {}
        self.trusted = tuple(ipaddress.ip_network(allowed) for allowed in self.cfg.forwarded_allow_ips
                             if allowed != "*")
        super().init_process()

    def client_key(self, addr) -> object | None:
        """What ``addr``'s connections are counted under: its IPv4 address or its IPv6 /64; None (not counted)
        for a UNIX-socket peer and for an address in FORWARDED_ALLOW_IPS."""
        if not isinstance(addr, tuple) or "*" in self.cfg.forwarded_allow_ips:
            return None
        address = ipaddress.ip_address(addr[0])
        if address.version == 6 and address.ipv4_mapped:  # an IPv4 client of a dual-stack socket
            address = address.ipv4_mapped
        if any(address in network for network in self.trusted):
            return None
        # one subscriber gets a whole IPv6 /64
        return int(address) >> 64 if address.version == 6 else address

    def handle(self, listener, client, addr):
        key = self.client_key(addr)
        if key is None:
            return super().handle(listener, client, addr)
        held = self.connections.get(key, 0)
        if held >= CONNECTIONS_PER_ADDRESS:
            client.close()
            return None
        # greenlets switch only on I/O: this read-and-write of the count needs no lock
        self.connections[key] = held + 1
        try:
            return super().handle(listener, client, addr)
        finally:
            if self.connections[key] > 1:
                self.connections[key] -= 1
            else:
                del self.connections[key]

    def handle_request(self, listener_name, req, sock, addr):
        reader = req.body.reader
        started = datetime.now()
        req.body.reader = _DeadlineReader(reader, time.monotonic() + BODY_TIMEOUT)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        except _BodyTimeout:
            # answered and logged like gunicorn's own error answers (workers/base.py, handle_error)
            response = Response(req, sock, self.cfg)
            response.status = "408 Request Timeout"
            with contextlib.suppress(OSError):  # the client is gone: closing is all that is left
                response.sent = write_json_error(sock, 408, "Request Timeout",
                                                 "The request body did not arrive in time.")
            environ = default_environ(req, sock, self.cfg) | {"PATH_INFO": req.path}
            self.log.access(response, req, environ, datetime.now() - started)
            raise StopIteration() from None  # gunicorn's signal to close the connection (base_async.handle)
        finally:
            # What the app left unread is skipped under gunicorn's own keepalive timeout before the next request
            req.body.reader = reader


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
