"""Self-hosted latency at a fixed rate: ``POST /api/visitors`` at 400 requests/s for 30 s while 200 idle
keep-alive connections and 50 slow clients are held open beside it.

The service runs as in `bench.throughput` (the image's command and environment, password-protected Redis,
``TRUSTED_PROXIES=1`` and one of 20,000 visitor addresses per request). The load is open-loop: request *i*
is due at start + *i* / rate whatever happened before, and its latency runs from when it was due to its
answer, so a stall shows in the percentiles instead of slowing the sender down (no coordinated omission).
Requests go over 64 keep-alive connections. Idle connections each made one request and then say nothing
(reopened when the server closes them); slow clients send a request's headers a byte a second (reopened
likewise). Everything runs on loopback.

    python -m bench.fixed_rate [--rate 400] [--duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from .throughput import REDIS_PASSWORD, SITE, VISITORS, Server, _image_environment, redis_url, serving

CONNECTIONS = 64
IDLE = 200
SLOW = 50
BODY = b'{"path": "/", "referrer": "https://news.example/item", "query": "?utm_source=bench"}'


def _post() -> bytes:
    n = random.randint(1, VISITORS)
    return (f"POST /api/visitors HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\nOrigin: {SITE}\r\nX-Forwarded-For: 10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
            f"\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
            "\r\n\r\n").encode() + BODY


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer with a Content-Length; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _idle(port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await _answer(reader)
            await reader.read()  # then idle until the server closes it (its keep-alive timeout)
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.5)


async def _slow(port: int, stop: asyncio.Event) -> None:
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200 + b"\r\n\r\n"
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for byte in request:
                if stop.is_set() or writer.is_closing():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
            writer.close()
        except OSError:
            await asyncio.sleep(0.5)


async def _load(port: int, rate: float, duration: float) -> dict:
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    latencies: list[float] = []
    errors = {"non_2xx": 0, "failed": 0}

    async def connection() -> None:
        reader = writer = None
        while True:
            view, due = await queue.get()
            if view < 0:
                return
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_post())
                status = await _answer(reader)
                latencies.append((time.perf_counter() - due) * 1000)
                errors["non_2xx"] += not 200 <= status < 300
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors["failed"] += 1
                reader = writer = None

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    start, total = time.perf_counter(), int(rate * duration)
    for view in range(total):
        due = start + view / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        queue.put_nowait((view, due))
    for _ in workers:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*workers)
    ordered = sorted(latencies)
    return {"rate": rate, "duration_s": duration, "sent": total, "answered": len(latencies),
            "achieved_rps": len(latencies) / (time.perf_counter() - start),
            "p50_ms": statistics.median(ordered), "p99_ms": ordered[int(len(ordered) * 0.99) - 1],
            "max_ms": ordered[-1], **errors}


async def _run(port: int, rate: float, duration: float) -> dict:
    stop = asyncio.Event()
    holders = [asyncio.create_task(_idle(port, stop)) for _ in range(IDLE)]
    holders += [asyncio.create_task(_slow(port, stop)) for _ in range(SLOW)]
    await asyncio.sleep(2)  # all of them open before the load starts
    try:
        return {**await _load(port, rate, duration), "idle_connections": IDLE, "slow_clients": SLOW}
    finally:
        stop.set()
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


def measure(work: Path, *, rate: float = 400, duration: float = 30) -> dict:
    """The service under the fixed-rate load; latency percentiles from when each request was due."""
    from tests import venvs
    from tests.servers import RedisServer

    venv = venvs.virtualenv("container", "requirements-server.txt")
    redis = RedisServer(password=REDIS_PASSWORD).start()
    cmd, environ = _image_environment(venv, work)
    env = {**environ, "STORAGE_URL": redis_url(redis, 0), "SECRET_KEY": "bench-secret-key-0123456789",
           "SITE_URL": SITE, "ALLOWED_ORIGINS": SITE, "TRUSTED_PROXIES": "1", "LOG_LEVEL": "INFO",
           "SITE_DIR": str(work / "no-site")}
    with serving(redis) as servers:
        service = servers["service"] = Server(cmd, env, work / "service.log")
        asyncio.run(_load(service.port, rate=50, duration=2))  # warm-up: first requests load lazy code
        return asyncio.run(_run(service.port, rate, duration))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fixed_rate", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--duration", type=float, default=30)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitae-bench-") as folder:
        print(json.dumps(measure(Path(folder), rate=options.rate, duration=options.duration), indent=2))
