"""Where a counted view's time goes: the service, two variants of it and the one-``INCR`` reference, side by side.

    python -m bench.breakdown [--duration 5] [--rounds 3]

Four gunicorns (the image's command and gunicorn.conf.py, Redis on loopback,
the throughput benchmark's environment and wrk script) answer ``POST
/api/visitors``: the service as shipped, the `bench.apps.variants` with the
view replaced by one ``INCR`` (``shell``) and with only the storage step
replaced by one ``INCR`` (``no-storage-step``), and `bench.apps.incr`. Runs
go round the four so all see the same machine; each figure is the median of
``rounds`` runs. Prints JSON with each one's req/s as a ratio of the
reference's: the steps between them are what the shared shell, the view's
request handling and the storage step cost. Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests import venvs
from tests.servers import RedisServer

from .throughput import POST_SCRIPT, REDIS_PASSWORD, SITE, VISITORS, Server, _image_environment, _median_run, wrk


def measure(work: Path, *, duration: int = 5, rounds: int = 3, connections: int = 16, threads: int = 2) -> dict:
    """req/s and latency of the four apps, and each one's req/s over the reference's."""
    venv = venvs.virtualenv("container", "requirements-server.txt")
    redis = RedisServer(password=REDIS_PASSWORD).start()
    cmd, environ = _image_environment(venv, work)
    script = work / "post.lua"
    script.write_text(POST_SCRIPT % {"site": SITE, "visitors": VISITORS})
    service_env = {**environ, "SECRET_KEY": "bench-secret-key-0123456789", "SITE_URL": SITE, "ALLOWED_ORIGINS": SITE,
                   "TRUSTED_PROXIES": "1", "LOG_LEVEL": "INFO", "SITE_DIR": str(work / "no-site")}
    apps = {
        "service": (cmd[-1], {}),
        "shell": ("bench.apps.variants:app", {"BENCH_VARIANT": "shell"}),
        "no-storage-step": ("bench.apps.variants:app", {"BENCH_VARIANT": "no-storage-step"}),
        "reference": ("bench.apps.incr:app", {}),
    }
    servers = {}
    try:
        for db, (name, (target, extra)) in enumerate(apps.items()):
            url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/{db}"
            servers[name] = Server([*cmd[:-1], target], {**service_env, "STORAGE_URL": url, "REDIS_URL": url, **extra},
                                   work / f"{name}.log")
        for server in servers.values():  # warm all: first requests load lazily imported code
            wrk(f"{server.url}/api/visitors", script, duration=2, connections=connections, threads=threads)
        runs: dict[str, list] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, server in servers.items():
                runs[name].append(wrk(f"{server.url}/api/visitors", script, duration=duration,
                                      connections=connections, threads=threads))
    finally:
        for server in servers.values():
            server.stop()
        redis.cleanup()
    results = {name: _median_run(found) for name, found in runs.items()}
    results["ratio"] = {name: results[name]["rps"] / results["reference"]["rps"] for name in apps}
    results["non_2xx"] = sum(run["non_2xx"] for found in runs.values() for run in found)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs round the four apps")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitae-bench-") as folder:
        print(json.dumps(measure(Path(folder), duration=options.duration, rounds=options.rounds), indent=2))
