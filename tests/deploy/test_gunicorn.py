"""The service under gunicorn as the image runs it (gunicorn.conf.py, Redis storage), spoken to over raw sockets.

* slow clients: hundreds of connections dribbling their headers or bodies
  (from a trusted proxy's address, which is not limited) leave
  ``/api/health`` answering; one address holding 3,000 stalled bodies and
  3,000 stalled headers open does not keep it from answering another; an
  address holds at most its connections per worker, and gets them back
  when it closes them (an IPv6 client counts by its /64); a stalled body
  gets a JSON 408 and is closed;
* requests gunicorn cannot parse get JSON in the API's error shape, with
  the right 4xx, and gunicorn's log lines name no client address;
* a malformed chunked body reaching the app is a 400, not a 500;
* the JSON access log counts the bytes of a page of the site.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import resource
import runpy
import select
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from ..helpers import ROOT
from ..servers import RedisServer, free_port, wait_for_port

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
SLOW_HEADERS = SLOW_BODIES = 200
PAGE_BYTES = 13_000
#: gunicorn.conf.py's defaults: worker processes, connections one address may hold in each, body deadline (s)
WORKERS, PER_ADDRESS, BODY_TIMEOUT = 2, 50, 10
#: The attacker's address and another client's (the whole 127.0.0.0/8 is loopback on Linux).
ATTACKER, OTHER_CLIENT = "127.0.0.1", "127.0.0.2"
#: A proxy address no test client has: the attacker is not the trusted proxy in front.
NO_CLIENT = "192.0.2.1"
STALLED = 3000
POST_HEAD = b"POST /api/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
STALLED_BODY = POST_HEAD + b"Content-Length: 1000\r\n\r\n{"
STALLED_HEADERS = POST_HEAD + b"X-Slow: "
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def gunicorn(work: Path, storage_url: str, **settings: str):
    """gunicorn with the repository's gunicorn.conf.py and the image's command, on a loopback port;
    ``settings`` are added to its environment."""
    (work / "site").mkdir()
    prefix = "<!doctype html><title>x</title>"
    (work / "site" / "index.html").write_text(prefix + "x" * (PAGE_BYTES - len(prefix)))
    port = free_port()
    log_path = work / "gunicorn.log"
    environ = {"PATH": f"{GUNICORN.parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work),
               "BIND": f"127.0.0.1:{port}", "STORAGE_URL": storage_url, "SECRET_KEY": "server-test-key-0123456789",
               "SITE_DIR": str(work / "site"), "VITAE_INSTANCE_PATH": str(work), **settings}
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(GUNICORN), "--config", "gunicorn.conf.py", "service.wsgi:app"], cwd=ROOT,
                                   env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30)
        wait_until_served(port, timeout=30)
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


@contextlib.contextmanager
def open_files_limit(needed: int):
    """This process's (and so the gunicorn it starts') soft RLIMIT_NOFILE at least ``needed``; restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"the test needs {needed} open files; this machine allows {hard} (raise the hard limit)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def exposed(tmp_path_factory, redis_server):
    """The service on Redis reached directly (no proxy in front: the test clients are not the trusted proxy),
    allowed enough open files for thousands of connections."""
    with open_files_limit(4 * STALLED), gunicorn(tmp_path_factory.mktemp("exposed"), redis_server.url,
                                                 FORWARDED_ALLOW_IPS=NO_CLIENT) as running:
        yield running


def exchange(port: int, raw: bytes, timeout: float = 5.0, source: str = "127.0.0.1"
             ) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection from ``source``; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as conn:
        conn.sendall(raw)
        return read_answer(conn)


def read_answer(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (names in lower case) and body of the next answer on ``conn``, read until its
    Content-Length is complete or the server closes."""
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


def wait_until_served(port: int, timeout: float) -> None:
    """Returns once GET /api/health answers 200: the arbiter listens before its workers have loaded the app,
    which takes seconds on a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, IndexError, ValueError):  # no worker yet: no answer or none complete
            if exchange(port, HEALTH)[0] == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn on port {port} did not answer /api/health within {timeout} s")
        time.sleep(0.2)


def health(port: int, source: str = "127.0.0.1") -> int:
    """The status of GET /api/health from ``source``; raises `TimeoutError` when there is no answer within 2 s."""
    return exchange(port, HEALTH, timeout=2.0, source=source)[0]


def hold(port: int, first: bytes, count: int, deadline: float) -> list[socket.socket]:
    """Up to ``count`` connections from ATTACKER that send ``first`` and then nothing, opened until ``deadline``
    (`time.monotonic`); one the server closes at once is still returned (it holds nothing there)."""
    held: list[socket.socket] = []
    while len(held) < count and time.monotonic() < deadline:
        conn = socket.socket()
        conn.settimeout(max(min(deadline - time.monotonic(), 2.0), 0.01))
        try:
            conn.bind((ATTACKER, 0))
            conn.connect(("127.0.0.1", port))
        except OSError:  # no room in the listen backlog before the timeout
            conn.close()
            continue
        with contextlib.suppress(OSError):  # already closed by the server
            conn.sendall(first)
        held.append(conn)
    return held


def access_entry(log: Path, path: str, status: int) -> dict | None:
    """The last JSON access log entry for ``path`` answered ``status``, waiting up to 5 s for the workers to
    write it (they write asynchronously); None when there is none."""
    deadline = time.monotonic() + 5
    while True:
        entries = [entry for entry in (json.loads(line) for line in log.read_text().splitlines()
                                       if line.startswith("{") and '"logger": "access"' in line)
                   if entry["path"] == path and entry["status"] == status]
        if entries or time.monotonic() > deadline:
            return entries[-1] if entries else None
        time.sleep(0.1)


def closed_by_server(conns: list[socket.socket]) -> int:
    """How many of ``conns`` the server has closed or answered (readable: end of stream or an answer)."""
    poller = select.poll()
    for conn in conns:
        poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLERR)
    return len(poller.poll(0))


def test_health_answers_while_hundreds_of_clients_dribble_their_requests(server):
    port = server["port"]
    assert health(port) == 200
    # (what each connection sends first, then a byte at a time): unfinished headers, unfinished bodies. They
    # come from 127.0.0.1, the trusted proxy's address by default: not limited per address.
    kinds = [(STALLED_HEADERS, b"x")] * SLOW_HEADERS + [(STALLED_BODY, b" ")] * SLOW_BODIES
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


def test_health_answers_another_address_while_one_holds_thousands_of_stalled_requests(exposed):
    port = exposed["port"]
    assert health(port, OTHER_CLIENT) == 200
    held: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30  # without a per-address limit the backlog fills and connects time out
        held += hold(port, STALLED_BODY, STALLED, deadline)
        held += hold(port, STALLED_HEADERS, STALLED, deadline)
        answered = []
        for _ in range(3):
            answered.append(health(port, OTHER_CLIENT))
            time.sleep(0.5)
        assert answered == [200] * 3
    finally:
        for conn in held:
            conn.close()


def test_an_address_holds_at_most_its_connections_in_each_worker_and_gets_them_back(exposed):
    port = exposed["port"]
    extra = 50
    held = hold(port, STALLED_BODY, WORKERS * PER_ADDRESS + extra, time.monotonic() + 20)
    try:
        assert len(held) == WORKERS * PER_ADDRESS + extra
        # the excess is closed as it is accepted; the rest stays open (its body deadline is 10 s away)
        deadline = time.monotonic() + 5
        while closed_by_server(held) < extra and time.monotonic() < deadline:
            time.sleep(0.1)
        assert closed_by_server(held) >= extra
        assert health(port, OTHER_CLIENT) == 200
    finally:
        for conn in held:
            conn.close()
    # closed connections are no longer counted: the address is served again
    answered = []
    deadline = time.monotonic() + 5
    while answered[-1:] != [200] and time.monotonic() < deadline:
        with contextlib.suppress(OSError, IndexError, ValueError):  # still counted: closed without an answer
            answered.append(health(port, ATTACKER))
        time.sleep(0.1)
    assert answered[-1:] == [200]


def _v6_prefix(address: str) -> int:
    return int(ipaddress.ip_address(address)) >> 64


@pytest.mark.parametrize("peer, key", [
    (("203.0.113.7", 5000), ipaddress.ip_address("203.0.113.7")),
    (("::ffff:203.0.113.7", 5000, 0, 0), ipaddress.ip_address("203.0.113.7")),  # IPv4 on a dual-stack socket
    (("2001:db8:1:2::1", 5000, 0, 0), _v6_prefix("2001:db8:1:2::")),
    (("2001:db8:1:2:ffff::9", 5000, 0, 0), _v6_prefix("2001:db8:1:2::")),  # the same subscriber's /64
    (("2001:db8:1:3::1", 5000, 0, 0), _v6_prefix("2001:db8:1:3::")),
    (("127.0.0.1", 5000), None),  # the trusted proxy (FORWARDED_ALLOW_IPS)
    (("::ffff:127.0.0.1", 5000, 0, 0), None),
    (("10.1.2.3", 5000), None),
    ("", None),  # a UNIX socket peer
])
def test_connections_are_counted_by_ipv4_address_and_ipv6_slash_64(peer, key):
    worker_class = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["JSONErrorsGeventWorker"]
    worker = object.__new__(worker_class)  # only what client_key reads, as init_process sets it
    worker.cfg = SimpleNamespace(forwarded_allow_ips=["127.0.0.1", "10.0.0.0/8"])
    worker.trusted = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8"))
    assert worker.client_key(peer) == key


def test_a_stalled_body_gets_a_json_408_and_its_connection_is_closed(exposed):
    started = time.monotonic()
    answer, headers, body = exchange(exposed["port"], STALLED_BODY, timeout=BODY_TIMEOUT + 20)
    assert (answer, json.loads(body)["error"]) == (408, "request_timeout")
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert time.monotonic() - started >= BODY_TIMEOUT - 1
    assert access_entry(exposed["log"], "/api/visitors", 408)["bytes"] == len(body)


def test_a_body_sent_in_pieces_within_its_deadline_is_served_and_the_connection_kept(exposed):
    body = b'{"path": "/pieces"}'
    with socket.create_connection(("127.0.0.1", exposed["port"]), timeout=10) as conn:
        conn.sendall(POST_HEAD + b"User-Agent: Mozilla/5.0 Firefox/140.0\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body[:5]))
        time.sleep(1)
        conn.sendall(body[5:])
        first = read_answer(conn)[0]
        conn.sendall(HEALTH)
        second = read_answer(conn)[0]
    assert (first, second) == (200, 200)


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
    exchange(server["port"], HEALTH)
    time.sleep(0.5)  # the workers write their lines asynchronously to the same file
    lines = server["log"].read_text().splitlines()
    assert any("Invalid request" in line for line in lines)
    # the only address is the one gunicorn listens on, in its start-up line
    assert [line for line in lines if "127.0.0.1" in line and "Listening at" not in line] == []


def test_the_access_log_counts_the_bytes_of_a_page(server):
    answer, headers, body = exchange(server["port"], b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer == 200 and len(body) == PAGE_BYTES
    assert access_entry(server["log"], "/", 200)["bytes"] == PAGE_BYTES


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
