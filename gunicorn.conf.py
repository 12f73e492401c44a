"""gunicorn settings, read from the environment with small-box defaults.

Used by `make run`, the container image (Dockerfile ``CMD``) and the
throughput benchmark alike. Every request is logged to stdout as one JSON
object (`JSONAccessLogger`) with the same ``request_id`` as the app's own
log lines; visitor addresses are left out of it.

Environment: ``BIND`` (``0.0.0.0:8000``), ``WEB_CONCURRENCY`` (worker
processes, 2), ``GUNICORN_THREADS`` (threads per worker, 4),
``GUNICORN_TIMEOUT`` (30 s), ``GUNICORN_GRACEFUL_TIMEOUT`` (20 s),
``FORWARDED_ALLOW_IPS`` (who may set ``X-Forwarded-Proto``; loopback),
``ACCESS_LOG`` (``0`` turns the access log off), ``GUNICORN_LOG_LEVEL``.
"""

import json
import os
import time

from gunicorn import glogging

bind = os.environ.get("BIND", "0.0.0.0:8000")
# Two processes of four threads: enough for a personal site on one small core, and
# the threads overlap the waits on Redis and the upstreams.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# The workers' heartbeat files on a RAM disk: a container's overlay disk can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's documented choice
# Only the proxy in front of the app (compose network or loopback) may set X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") != "0" else None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No runtime control socket: it would be written under $HOME, which the image's user cannot write.
control_socket_disable = True


class JSONAccessLogger(glogging.Logger):
    """gunicorn's logger with access lines serialised by `json.dumps`, so any header value stays valid JSON."""

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
