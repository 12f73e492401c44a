"""What the tests share besides fixtures: the project root, the backends, an injected clock, a browser's
User-Agent, and the store URL for a backend. Test modules import from here, never from conftest."""

from __future__ import annotations

import re
import threading
import tomllib
import uuid
from pathlib import Path

from service.storage import open_storage

ROOT = Path(__file__).resolve().parent.parent
#: The project's Python ("3.13"), from pyproject.toml's requires-python: the Lambda runtime, the image's base and
#: CI's Python all follow it (tests/deploy/test_runtime.py).
PYTHON = re.match(r">=(\d+\.\d+)", tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
                  )[1]

#: Every storage backend; the storage contract and the features run against each.
BACKENDS = ["sqlite", "redis", "dynamodb"]
#: Seconds within which a wait the product bounds (its storage and upstream timeouts are at most about 2 s)
#: must end: room for a loaded two-core machine, and far below the 30-second-to-forever waits these tests catch.
PROMPTLY = 6.0

#: A real browser's User-Agent: counted as a visitor (a bot's or an empty one is not).
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
#: Request headers carrying `BROWSER_UA`.
BROWSER = {"User-Agent": BROWSER_UA}

class FakeClock:
    """Injected time for the app (``config["CLOCK"]``): tests move it instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0):  # 2027-01-15T08:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_storage_url(request, backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/vitae.db"
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        return f"{server.url}?prefix=t{uuid.uuid4().hex[:8]}:"
    if backend == "dynamodb":
        server = request.getfixturevalue("moto_server")
        url = f"dynamodb://t-{uuid.uuid4().hex[:12]}?region=us-east-1&endpoint_url={server.endpoint}"
        open_storage(url).init()
        return url
    raise ValueError(backend)


def run_threads(threads: list[threading.Thread], timeout: float | None = None) -> None:
    """Start every thread, then wait for each in turn (at most ``timeout`` seconds each)."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


def fold(app) -> int:
    """Fold the app's recorded views now, as the worker or the schedule would; the number folded.

    Read as from a minute later, past DynamoDB's settling time: the test's own writes are all done."""
    import time

    from service.visitors import counter

    return counter.fold(app.extensions["vitae.deps"], now=time.time() + 60)
