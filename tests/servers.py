"""Real servers for the tests: redis-server processes and moto's DynamoDB over HTTP.

Every server binds to 127.0.0.1 on a free port and is stopped by its fixture.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class _ServerProcess:
    """A server process answering on a free loopback port (``port``): `_launch` starts it, `stop` ends it."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def _launch(self, args: list[str], timeout: float = 10) -> None:
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class RedisServer(_ServerProcess):
    """A redis-server process on a free loopback port; stop() and start() keep the port."""

    def __init__(self, password: str | None = None):
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(self.binary):
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        super().__init__()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="vitae-redis-")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir]
        if self.password:
            args += ["--requirepass", self.password]
        self._launch(args)
        return self

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _serialised(app):
    """Run one request at a time through ``app``.

    moto applies an UpdateItem ``ADD`` as an unlocked read-modify-write, so two
    of its request threads can lose an increment; real DynamoDB is atomic per
    item. Serialising the emulator restores that guarantee; our clients stay
    as concurrent as before.
    """
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))
    return serialised


class MotoServer:
    """moto's server on a free loopback port (DynamoDB and friends over real HTTP), in this process."""

    def __init__(self, port: int | None = None):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server

        class AtomicMotoServer(ThreadedMotoServer):
            def _server_entry(self) -> None:
                app = _serialised(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(self._ip_address, self._port, app, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self.port = port or free_port()
        self.server = AtomicMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.server.start()
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        self.server.stop()


class MotoProcess(_ServerProcess):
    """`MotoServer` in a process of its own.

    In the test process the emulator shares the interpreter lock with the
    client threads a test runs against it; on a loaded machine its answers
    then came after the DynamoDB client's 0.8 s read timeout, twice in a row
    (a StorageError), or once (a retried ADD counted twice).
    """

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoProcess:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = ("import sys, threading; sys.path.insert(0, sys.argv[1]); from tests.servers import MotoServer; "
                "MotoServer(int(sys.argv[2])).start(); threading.Event().wait()")
        self._launch([sys.executable, "-c", code, root, str(self.port)], timeout=60)
        return self


class LossyProxy:
    """An HTTP proxy on a free loopback port in front of ``127.0.0.1:target_port`` that can lose answers.

    ``lose_next_answer("UpdateItem")`` arms it: the next request whose ``X-Amz-Target`` names that
    operation is forwarded and answered upstream (the write happens), then the client's connection is
    closed without the answer, as a network fault would. ``attempts(operation)`` counts what arrived.
    """

    def __init__(self, target_port: int):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.target_port = target_port
        self.lose: set[str] = set()
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                status, headers, answer = proxy._forward(self.command, self.path, self.headers, body)
                with proxy.lock:
                    proxy.seen[operation] = proxy.seen.get(operation, 0) + 1
                    lost = operation in proxy.lose
                    proxy.lose.discard(operation)
                if lost:
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        try:
            connection.request(method, path, body, {k: v for k, v in headers.items() if k.lower() != "connection"})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def lose_next_answer(self, operation: str) -> None:
        with self.lock:
            self.lose.add(operation)

    def attempts(self, operation: str) -> int:
        with self.lock:
            return self.seen.get(operation, 0)

    def start(self) -> LossyProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
