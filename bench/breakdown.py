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

from pathlib import Path

from .throughput import SITE, Server, post_setup, print_measure, redis_url, round_robin, serving


def measure(work: Path, *, duration: int = 5, rounds: int = 3, connections: int = 16, threads: int = 2) -> dict:
    """req/s and latency of the four apps, and each one's req/s over the reference's."""
    redis, cmd, environ, script = post_setup(work)
    service_env = {**environ, "SECRET_KEY": "bench-secret-key-0123456789", "SITE_URL": SITE, "ALLOWED_ORIGINS": SITE,
                   "TRUSTED_PROXIES": "1", "LOG_LEVEL": "INFO", "SITE_DIR": str(work / "no-site")}
    apps = {
        "service": (cmd[-1], {}),
        "shell": ("bench.apps.variants:app", {"BENCH_VARIANT": "shell"}),
        "no-storage-step": ("bench.apps.variants:app", {"BENCH_VARIANT": "no-storage-step"}),
        "reference": ("bench.apps.incr:app", {}),
    }
    with serving(redis) as servers:
        for db, (name, (target, extra)) in enumerate(apps.items()):
            url = redis_url(redis, db)
            servers[name] = Server([*cmd[:-1], target], {**service_env, "STORAGE_URL": url, "REDIS_URL": url, **extra},
                                   work / f"{name}.log")
        results: dict = round_robin(servers, "/api/visitors", script, rounds=rounds, duration=duration,
                                    connections=connections, threads=threads)
    results["ratio"] = {name: results[name]["rps"] / results["reference"]["rps"] for name in apps}
    return results


if __name__ == "__main__":
    print_measure("bench.breakdown", __doc__, measure)
