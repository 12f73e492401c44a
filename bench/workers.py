"""What gevent workers cost against gunicorn's threaded ones: the same apps under both, side by side, under wrk.

    python -m bench.workers [--duration 5] [--rounds 3]

Two gunicorns run `bench.apps.incr` (one Redis ``INCR`` per ``POST
/api/visitors``) with the repository's gunicorn.conf.py, one as it is
(gevent) and one with ``worker_class = "gthread"`` and 4 threads (what the
image ran before); runs alternate between them, and each figure is the
median of ``rounds`` runs. Prints JSON; the ratio is gevent / gthread.
"""

from __future__ import annotations

from pathlib import Path

from tests import venvs

from .throughput import Server, post_setup, print_measure, redis_url, round_robin, serving

ROOT = venvs.ROOT
THREADED = '\nworker_class = "gthread"\nthreads = 4\n'


def measure(work: Path, *, duration: int = 5, rounds: int = 3, connections: int = 16, threads: int = 2) -> dict:
    """req/s and latency of the reference app under each worker class, and their ratio."""
    redis, cmd, environ, script = post_setup(work)
    threaded_conf = work / "gunicorn.gthread.py"
    threaded_conf.write_text((ROOT / "gunicorn.conf.py").read_text() + THREADED)
    environ = {**environ, "REDIS_URL": redis_url(redis, 1)}
    with serving(redis) as servers:
        servers.update({name: Server([cmd[0], "--config", str(conf), "bench.apps.incr:app"], environ,
                                     work / f"{name}.log")
                        for name, conf in (("gevent", ROOT / "gunicorn.conf.py"), ("gthread", threaded_conf))})
        results: dict = round_robin(servers, "/api/visitors", script, rounds=rounds, duration=duration,
                                    connections=connections, threads=threads)
    results["ratio"] = results["gevent"]["rps"] / results["gthread"]["rps"]
    return results


if __name__ == "__main__":
    print_measure("bench.workers", __doc__, measure)
