"""A scriptable fake upstream: a real HTTP server on a loopback port, one per test.

    fake = FakeUpstream().start()
    fake.script("GET", "/users/octo/events", Reply(200, json=[...], headers={"ETag": '"a"'}))
    fake.script("POST", "/bot<token>/sendMessage", Reply(500), Reply(200, json={"ok": True}))  # in order
    ... point the app at fake.url ...
    assert fake.count("GET", "/users/octo/events") == 1

Replies queued for a route are used in order; the last one repeats. A
`Reply` may be a callable taking the `Recorded` request. ``delay`` makes
the server hold the answer (to trip read timeouts), ``reason`` sets the
status line's reason phrase. ``fake.fallback`` answers unscripted routes
(default: 404). `echo` makes the hostile upstream: one that hands back
everything it received, secrets included, in its error text.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclasses.dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    reason: str | None = None


Responder = Reply | Callable[[Recorded], Reply]


def echo(status: int = 400, *, as_json: bool = True, **fields: Any) -> Callable[[Recorded], Reply]:
    """A responder that repeats the whole request (method, path, query, every header, the body) in every
    place an upstream puts words we might pass on: the status line's reason, and, as JSON, ``description``
    (Telegram), ``error``/``error_description`` (OAuth), ``message`` (GitHub) and ``error-codes``
    (Turnstile), plus ``fields``; ``as_json=False`` answers the same text as an HTML page instead."""
    def respond(recorded: Recorded) -> Reply:
        words = [recorded.method, recorded.path, *(f"{k}={v}" for k, values in recorded.query.items()
                                                   for v in values),
                 *(f"{name}: {value}" for name, value in recorded.headers.items()),
                 recorded.body.decode("utf-8", "replace")]
        text = " | ".join(words)
        reason = f"Echo {recorded.method} {recorded.path}"
        if not as_json:
            return Reply(status, body=f"<html>{text}</html>", headers={"Content-Type": "text/html"}, reason=reason)
        return Reply(status, json={"ok": False, "description": text, "error": text, "error_description": text,
                                   "message": text, "error-codes": words, **fields}, reason=reason)
    return respond


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1"):
        """``host``: loopback, or the gateway address of a Docker network the test created (for containers)."""
        self.routes: dict[tuple[str, str], list[Responder]] = {}
        self.requests: list[Recorded] = []
        self.fallback: Responder = Reply(404, json={"message": "Not Found"})
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms ACK wait

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query),
                                    {k.lower(): v for k, v in self.headers.items()}, body)
                reply = fake._reply_for(recorded)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if reply.body is not None else (
                    jsonlib.dumps(reply.json).encode() if reply.json is not None else b"")
                if isinstance(payload, str):
                    payload = payload.encode()
                try:
                    self.send_response(reply.status, reply.reason)
                    headers = dict(reply.headers)
                    if reply.json is not None and reply.body is None:
                        headers.setdefault("Content-Type", "application/json; charset=utf-8")
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if reply.status not in (204, 304):
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.status not in (204, 304):
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a read timeout): that is the point of a delay

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: stop() waits up to one interval for the serving loop to notice.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

    def start(self) -> FakeUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, method: str, path: str, *replies: Responder) -> None:
        """Answer ``method path`` with ``replies`` in order (the last one repeats)."""
        with self.lock:
            self.routes[(method.upper(), path)] = list(replies)

    def _reply_for(self, recorded: Recorded) -> Reply:
        with self.lock:
            self.requests.append(recorded)
            queue = self.routes.get((recorded.method, recorded.path))
            responder = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else self.fallback
        return responder(recorded) if callable(responder) else responder

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper()) and (path is None or r.path == path)]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.calls(method, path))
