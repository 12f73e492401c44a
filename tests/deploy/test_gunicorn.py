"""The service under gunicorn as the image runs it (gunicorn.conf.py, Redis storage), spoken to over raw sockets.

* slow clients: hundreds of connections dribbling their headers or bodies
  leave ``/api/health`` answering;
* requests gunicorn cannot parse get JSON in the API's error shape, with
  the right 4xx, and gunicorn's log lines name no client address;
* a malformed chunked body reaching the app is a 400, not a 500;
* the JSON access log counts the bytes of a page of the site.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..helpers import ROOT
from ..servers import RedisServer, free_port, wait_for_port

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
SLOW_HEADERS = SLOW_BODIES = 200
PAGE_BYTES = 13_000


@contextlib.contextmanager
def gunicorn(work: Path, storage_url: str):
    """gunicorn with the repository's gunicorn.conf.py and the image's command, on a loopback port."""
    (work / "site").mkdir()
    prefix = "<!doctype html><title>x</title>"
    (work / "site" / "index.html").write_text(prefix + "x" * (PAGE_BYTES - len(prefix)))
    port = free_port()
    log_path = work / "gunicorn.log"
    environ = {"PATH": f"{GUNICORN.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work),
               "BIND": f"127.0.0.1:{port}", "STORAGE_URL": storage_url, "SECRET_KEY": "server-test-key-0123456789",
               "SITE_DIR": str(work / "site"), "VITAE_INSTANCE_PATH": str(work)}
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(GUNICORN), "--config", "gunicorn.conf.py", "service.wsgi:app"], cwd=ROOT,
                                   env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30)
        yield {"port": port, "log": log_path}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The service on Redis, as docker compose runs it."""
    redis = RedisServer().start()
    try:
        with gunicorn(tmp_path_factory.mktemp("server"), redis.url) as running:
            yield running
    finally:
        redis.cleanup()


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; the status, headers and body of the answer (read until close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        received = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line)
            if "Content-Length" in headers and len(body) >= int(headers["Content-Length"]):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return int(lines[0].split()[1]), headers, body


def health(port: int) -> int:
    """The status of GET /api/health; raises `TimeoutError` when there is no answer within 2 s."""
    return exchange(port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2.0)[0]


def test_health_answers_while_hundreds_of_clients_dribble_their_requests(server):
    port = server["port"]
    assert health(port) == 200
    head = b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # (what each connection sends first, then a byte at a time): unfinished headers, unfinished bodies
    kinds = ([(head + b"X-Slow: ", b"x")] * SLOW_HEADERS
             + [(head + b"Content-Length: 1000\r\n\r\n{", b" ")] * SLOW_BODIES)
    slow: list[socket.socket] = []
    try:
        for first, _ in kinds:
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.sendall(first)
            slow.append(conn)
        answered = []
        for _ in range(5):  # a byte more on every connection, then a health check: bounded, about 2 s in all
            for conn, (_, byte) in zip(slow, kinds, strict=True):
                # gunicorn closes a connection whose headers take over 5 s (keepalive): on a loaded machine
                # that can happen here, and a closed connection holds nothing
                with contextlib.suppress(OSError):
                    conn.sendall(byte)
            answered.append(health(port))
            time.sleep(0.2)
        assert answered == [200] * 5
    finally:
        for conn in slow:
            conn.close()


@pytest.mark.parametrize("raw, status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"NOT A REQUEST LINE\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    (b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: -2\r\n\r\n{}", 400),
    (b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\n0\r\n\r\n", 400),
    (b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
], ids=["431", "414", "request-line", "http-0.9", "nul", "two-lengths", "negative-length", "length-and-chunked",
        "bad-utf8-path"])
def test_requests_gunicorn_cannot_parse_get_json_in_the_error_shape(server, raw, status):
    answer, headers, body = exchange(server["port"], raw)
    assert answer == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == {"error", "message"} and error["error"] and error["message"]


def test_a_malformed_chunked_body_is_a_400_from_the_app(server):
    answer, headers, body = exchange(server["port"], b"POST /api/visitors HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"zz\r\n{}\r\n0\r\n\r\n")
    assert (answer, json.loads(body)["error"]) == (400, "invalid_body")


def test_no_log_line_names_a_client_address(server):
    exchange(server["port"], b"NOT A REQUEST LINE\r\n\r\n")
    exchange(server["port"], b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    time.sleep(0.5)  # the workers write their lines asynchronously to the same file
    lines = server["log"].read_text().splitlines()
    assert any("Invalid request" in line for line in lines)
    # the only address is the one gunicorn listens on, in its start-up line
    assert [line for line in lines if "127.0.0.1" in line and "Listening at" not in line] == []


def test_the_access_log_counts_the_bytes_of_a_page(server):
    answer, headers, body = exchange(server["port"], b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer == 200 and len(body) == PAGE_BYTES
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        access = [json.loads(line) for line in server["log"].read_text().splitlines()
                  if line.startswith("{") and '"logger": "access"' in line and '"path": "/"' in line]
        if access:
            break
        time.sleep(0.1)
    assert access and access[-1]["bytes"] == PAGE_BYTES


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_concurrent_views_are_all_counted_under_gevent(tmp_path, backend):
    # under gevent's monkey-patching Redis's sockets are cooperative and SQLite's per-thread connections
    # become per-greenlet ones: forty views sent eight at a time must all be counted
    redis = RedisServer().start() if backend == "redis" else None
    url = redis.url if redis else f"sqlite:///{tmp_path / 'vitae.db'}"
    body = b'{"path": "/gevent"}'
    request = (b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
               b"User-Agent: Mozilla/5.0 Firefox/140.0\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        with gunicorn(tmp_path, url) as running:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: exchange(running["port"], request), range(40)))
            assert [status for status, _, _ in answers] == [200] * 40
            _, _, read = exchange(running["port"], b"GET /api/visitors?path=/gevent HTTP/1.1\r\nHost: x\r\n"
                                                   b"Connection: close\r\n\r\n")
            assert json.loads(read)["page_views"] == 40
    finally:
        if redis:
            redis.cleanup()


def test_a_writer_holding_the_sqlite_file_costs_views_a_503_and_stops_nothing_else(tmp_path):
    """Another process holds SQLite's writer lock (a writer stuck inside its transaction): counted views give up
    within 2 s with a 503, and health keeps answering meanwhile (a view waiting in a blocking ``flock`` stopped
    its whole gevent worker)."""
    import fcntl

    body = b'{"path": "/stuck"}'
    view = (b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"User-Agent: Mozilla/5.0 Firefox/140.0\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with gunicorn(tmp_path, f"sqlite:///{tmp_path / 'vitae.db'}") as running:
        assert exchange(running["port"], view)[0] == 200  # each worker made its tables by now or makes them below
        assert exchange(running["port"], view)[0] == 200
        with open(f"{tmp_path / 'vitae.db'}-writer.lock", "a") as lock, ThreadPoolExecutor(8) as pool:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started = time.monotonic()
            views = [pool.submit(exchange, running["port"], view) for _ in range(4)]
            time.sleep(0.3)  # the views are waiting for the lock now
            assert [health(running["port"]) for _ in range(6)] == [200] * 6
            assert [future.result()[0] for future in views] == [503] * 4
            assert time.monotonic() - started < 4.0
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert exchange(running["port"], view)[0] == 200
