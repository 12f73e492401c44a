"""Throughput of a cached, server-rendered post page against ``GET /api/blog/<number>`` in the same run.

The service runs as in `bench.throughput` (the image's gunicorn command and environment, Redis on
loopback) with the blog pointed at a fake GitHub on loopback holding one post with comments. Both
addresses are read once to fill the caches (``BLOG_CACHE_TTL`` is an hour, so no run calls GitHub),
then wrk alternates page / API for ``rounds`` runs; the figures are medians and the ratio is
page ÷ API requests per second. The issue asks for at least 0.8.

    python -m bench.blog_pages [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests import venvs
from tests.fakes import FakeUpstream, Reply
from tests.servers import RedisServer

from .throughput import (
    GET_SCRIPT,
    REDIS_PASSWORD,
    SITE,
    VISITORS,
    Server,
    _image_environment,
    _median_run,
    _request,
    wrk,
)

ISSUES = "/repos/octo/blog/issues"
PAGE = "/blog/7/measuring-before-optimising"
BODY = ("# Method\n\nI **measured** first, with a profiler and a benchmark.\n\n## Code\n\n```python\n"
        "print('hi')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + "Some plain words in a paragraph. " * 120)


def _fake_github() -> FakeUpstream:
    github = FakeUpstream().start()
    post = {"number": 7, "title": "Measuring before optimising", "body": BODY, "state": "open",
            "user": {"login": "octo"}, "labels": [{"name": "published"}, {"name": "performance"}],
            "created_at": "2027-01-08T10:00:00Z", "updated_at": "2027-01-08T12:00:00Z", "comments": 3,
            "html_url": "https://github.com/octo/blog/issues/7", "reactions": {"+1": 4, "heart": 1}}
    comments = [{"id": n, "user": {"login": f"reader{n}", "html_url": f"https://github.com/reader{n}"},
                 "body": f"Comment number {n}, with `code`.", "created_at": "2027-01-09T10:00:00Z",
                 "updated_at": "2027-01-09T10:00:00Z", "html_url": f"https://github.com/octo/blog/issues/7#c{n}"}
                for n in range(1, 4)]
    github.script("GET", ISSUES, Reply(200, json=[post], headers={"ETag": '"l1"'}))
    github.script("GET", f"{ISSUES}/7", Reply(200, json=post, headers={"ETag": '"p1"'}))
    github.script("GET", f"{ISSUES}/7/comments", Reply(200, json=comments, headers={"ETag": '"c1"'}))
    return github


def measure(work: Path, *, duration: int = 10, rounds: int = 3, connections: int = 16, threads: int = 2,
            log=print) -> dict:
    """Medians of the post page and the API post over ``rounds`` alternating wrk runs, and their ratio."""
    venv = venvs.virtualenv("container", "requirements-server.txt")  # what the image installs (gevent)
    redis = RedisServer(password=REDIS_PASSWORD).start()
    github = _fake_github()
    cmd, environ = _image_environment(venv, work / "instance")
    (work / "instance").mkdir(exist_ok=True)
    env = {**environ, "STORAGE_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/0",
           "SECRET_KEY": "bench-secret-key-0123456789", "SITE_URL": SITE, "TRUSTED_PROXIES": "1",
           "LOG_LEVEL": "INFO", "GITHUB_API_URL": github.url, "BLOG_REPO": "octo/blog", "BLOG_CACHE_TTL": "3600",
           "SITE_DIR": str(work / "no-site")}
    script = work / "get.lua"
    script.write_text(GET_SCRIPT % {"site": SITE, "visitors": VISITORS})
    service = Server(cmd, env, work / "service.log")
    options = {"duration": duration, "connections": connections, "threads": threads}
    try:
        assert _request(f"{service.url}{PAGE}") == 200 and _request(f"{service.url}/api/blog/7") == 200
        for path in (PAGE, "/api/blog/7"):  # warm every worker
            wrk(f"{service.url}{path}", script, duration=2, connections=connections, threads=threads)
        page, api = [], []
        for round_number in range(rounds):
            log(f"blog round {round_number + 1}/{rounds}: GET {PAGE}, then GET /api/blog/7...")
            page.append(wrk(f"{service.url}{PAGE}", script, **options))
            api.append(wrk(f"{service.url}/api/blog/7", script, **options))
        github_calls = github.count("GET")
    finally:
        service.stop()
        github.stop()
        redis.cleanup()
    results = {"page": _median_run(page), "api": _median_run(api), "github_upstream_calls": github_calls,
               "settings": {**options, "rounds": rounds}}
    results["ratio"] = results["page"]["rps"] / results["api"]["rps"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blog_pages", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating page/API wrk runs")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitae-bench-blog-") as folder:
        results = measure(Path(folder), duration=options.duration, rounds=options.rounds)
    print(json.dumps(results, indent=2))
    print(f"\npost page {results['page']['rps']:.0f} req/s, /api/blog/7 {results['api']['rps']:.0f} req/s: "
          f"ratio {results['ratio']:.2f} (wanted: at least 0.80)")


if __name__ == "__main__":
    main()
