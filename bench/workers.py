"""What gevent workers cost against gunicorn's threaded ones: the same apps under both, side by side, under wrk.

    python -m bench.workers [--duration 5] [--rounds 3]

Two gunicorns run `bench.apps.incr` (one Redis ``INCR`` per ``POST
/api/visitors``) with the repository's gunicorn.conf.py, one as it is
(gevent) and one with ``worker_class = "gthread"`` and 4 threads (what the
image ran before); runs alternate between them, and each figure is the
median of ``rounds`` runs. Prints JSON; the ratio is gevent / gthread.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests import venvs
from tests.servers import RedisServer

from .throughput import POST_SCRIPT, REDIS_PASSWORD, SITE, VISITORS, Server, _image_environment, _median_run, wrk

ROOT = venvs.ROOT
THREADED = '\nworker_class = "gthread"\nthreads = 4\n'


def measure(work: Path, *, duration: int = 5, rounds: int = 3, connections: int = 16, threads: int = 2) -> dict:
    """req/s and latency of the reference app under each worker class, and their ratio."""
    venv = venvs.virtualenv("container", "requirements-server.txt")
    redis = RedisServer(password=REDIS_PASSWORD).start()
    cmd, environ = _image_environment(venv, work)
    script = work / "post.lua"
    script.write_text(POST_SCRIPT % {"site": SITE, "visitors": VISITORS})
    threaded_conf = work / "gunicorn.gthread.py"
    threaded_conf.write_text((ROOT / "gunicorn.conf.py").read_text() + THREADED)
    environ = {**environ, "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/1"}
    servers = {name: Server([cmd[0], "--config", str(conf), "bench.apps.incr:app"], environ, work / f"{name}.log")
               for name, conf in (("gevent", ROOT / "gunicorn.conf.py"), ("gthread", threaded_conf))}
    runs: dict[str, list] = {name: [] for name in servers}
    try:
        for server in servers.values():  # warm both
            wrk(f"{server.url}/api/visitors", script, duration=1, connections=connections, threads=threads)
        for _ in range(rounds):
            for name, server in servers.items():
                runs[name].append(wrk(f"{server.url}/api/visitors", script, duration=duration,
                                      connections=connections, threads=threads))
    finally:
        for server in servers.values():
            server.stop()
        redis.cleanup()
    results = {name: _median_run(found) for name, found in runs.items()}
    results["ratio"] = results["gevent"]["rps"] / results["gthread"]["rps"]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating gevent/gthread runs")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitae-bench-") as folder:
        print(json.dumps(measure(Path(folder), duration=options.duration, rounds=options.rounds), indent=2))
