"""Self-hosted throughput: the service under gunicorn as the image runs it, with Redis on loopback, under wrk.

The service is started with the Dockerfile's ``CMD`` and runtime ``ENV`` (read
from the Dockerfile, the virtualenv built from the requirements file it
installs) and a compose-like environment: password-protected Redis, a proxy
in front (``TRUSTED_PROXIES=1``: wrk sends each request as from one of 20,000
visitor addresses, so the rate limit and the unique-visitor marker do real
work), an allowed CORS origin that every request names, INFO logging and the
JSON access log written to a file. The reference is `bench.apps.incr` (one
Redis ``INCR`` per ``POST /api/visitors``) under the same gunicorn config.

Runs alternate service / reference so both see the same machine, and each
figure is the median of ``rounds`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests import venvs
from tests.dockerfile import parse_dockerfile
from tests.fakes import FakeUpstream, Reply
from tests.servers import RedisServer, free_port, wait_for_port

ROOT = venvs.ROOT
REDIS_PASSWORD = "bench-redis-password-0123456789"
SITE = "https://vitae.example"
VISITORS = 20_000
# Every connection is closed after 50 requests and reopened: otherwise whichever gunicorn worker accepts
# wrk's connections first keeps them for the whole run, and a run measures one worker or two by chance.
_VISITOR = """
local sent = 0
local function visitor()
  sent = sent + 1
  local n = math.random(1, %(visitors)d)
  local a, b, c = math.floor(n / 65536), math.floor(n / 256) %% 256, n %% 256
  wrk.headers["X-Forwarded-For"] = string.format("10.%%d.%%d.%%d", a, b, c)
  wrk.headers["Connection"] = (sent %% 50 == 0) and "close" or nil
end
wrk.headers["Origin"] = "%(site)s"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
"""
POST_SCRIPT = _VISITOR + """
wrk.method = "POST"
wrk.body = '{"path": "/", "referrer": "https://news.example/item", "query": "?utm_source=bench&utm_campaign=launch"}'
wrk.headers["Content-Type"] = "application/json"
request = function()
  visitor()
  return wrk.format()
end
"""
GET_SCRIPT = _VISITOR + """
request = function()
  visitor()
  return wrk.format()
end
"""


def _image_environment(venv: Path, instance: Path) -> tuple[list[str], dict[str, str]]:
    """The runtime stage's CMD and ENV with the image's paths mapped to this machine."""
    runtime = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1]
    environ = {"HOME": str(instance), "LANG": "C.UTF-8"}
    for name, value in runtime.env.items():
        if name == "PATH":
            value = value.replace("/opt/venv", str(venv)).replace("$PATH", "/usr/bin:/bin")
        elif name == "VITAE_INSTANCE_PATH":
            value = str(instance)
        environ[name] = value
    return runtime.cmd, environ


class Server:
    """A gunicorn process on a free loopback port; ``stop`` sends SIGTERM as ``docker stop`` does."""

    def __init__(self, argv: list[str], environ: dict[str, str], log: Path):
        self.port = free_port()
        environ = {**environ, "BIND": f"127.0.0.1:{self.port}"}
        self.log = open(log, "w")  # noqa: SIM115 - open while gunicorn runs, closed by stop()
        binary = shutil.which(argv[0], path=environ["PATH"])
        self.process = subprocess.Popen([binary, *argv[1:]], cwd=ROOT, env=environ, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=30)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers={  # noqa: S310 - loopback URLs
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        "X-Forwarded-For": "10.255.255.1", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
        return response.status


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, *, duration: int, connections: int, threads: int) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency (ms), and the count of non-2xx answers."""
    binary = shutil.which("wrk")
    if not binary:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian package wrk)")
    result = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                             str(script), url], capture_output=True, text=True, timeout=duration + 60, check=True)
    out = result.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),
            "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
            "non_2xx": int(errors[1]) if errors else 0}


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def post_setup(work: Path) -> tuple[RedisServer, list[str], dict[str, str], Path]:
    """What a side-by-side ``POST /api/visitors`` benchmark starts from: a password-protected Redis, the image's
    command and environment (the virtualenv built from the image's requirements), and the wrk script."""
    venv = venvs.virtualenv("container", "requirements-server.txt")
    redis = RedisServer(password=REDIS_PASSWORD).start()
    cmd, environ = _image_environment(venv, work)
    script = work / "post.lua"
    script.write_text(POST_SCRIPT % {"site": SITE, "visitors": VISITORS})
    return redis, cmd, environ, script


def redis_url(redis: RedisServer, db: int) -> str:
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}/{db}"


@contextlib.contextmanager
def serving(redis: RedisServer) -> Iterator[dict[str, Server]]:
    """A dict for the servers a benchmark starts: on leaving, every one of them is stopped, then ``redis``."""
    servers: dict[str, Server] = {}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()
        redis.cleanup()


def print_measure(module: str, doc: str, measure: Callable[..., dict]) -> None:
    """The command line of a side-by-side benchmark module: ``--duration`` and ``--rounds``, then ``measure``'s
    results as JSON."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs going round the servers")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitae-bench-") as folder:
        print(json.dumps(measure(Path(folder), duration=options.duration, rounds=options.rounds), indent=2))


def round_robin(servers: dict[str, Server], path: str, script: Path, *, rounds: int, duration: int,
                connections: int = 16, threads: int = 2, log: Callable[[str], None] = lambda _: None,
                ) -> dict[str, dict[str, float]]:
    """Warm every server (first requests load lazily imported code), then ``rounds`` wrk runs of ``path`` going
    round them, so all see the same machine; the median run of each."""
    for server in servers.values():
        wrk(f"{server.url}{path}", script, duration=2, connections=connections, threads=threads)
    runs: dict[str, list] = {name: [] for name in servers}
    for round_number in range(rounds):
        log(f"round {round_number + 1}/{rounds}: {path} on {', '.join(servers)}...")
        for name, server in servers.items():
            runs[name].append(wrk(f"{server.url}{path}", script, duration=duration, connections=connections,
                                  threads=threads))
    return {name: _median_run(found) for name, found in runs.items()}


def measure(work: Path, *, duration: int = 10, rounds: int = 3, connections: int = 16, threads: int = 2,
            log=print) -> dict:
    """Service vs reference for POST /api/visitors, and the service alone for GET /api/visitors and a cached
    GET /api/github; medians over ``rounds`` alternating runs."""
    venv = venvs.virtualenv("container", "requirements-server.txt")
    redis = RedisServer(password=REDIS_PASSWORD).start()
    github = FakeUpstream().start()
    github.script("GET", "/users/octo/events/public", Reply(200, json=[], headers={"ETag": '"e1"'}))
    github.script("GET", "/users/octo/repos", Reply(200, json=[], headers={"ETag": '"r1"'}))
    cmd, environ = _image_environment(venv, work / "instance")
    (work / "instance").mkdir(exist_ok=True)
    service_env = {**environ, "STORAGE_URL": redis_url(redis, 0),
                   "SECRET_KEY": "bench-secret-key-0123456789", "SITE_URL": SITE, "ALLOWED_ORIGINS": SITE,
                   "TRUSTED_PROXIES": "1", "LOG_LEVEL": "INFO", "GITHUB_API_URL": github.url,
                   "GITHUB_USERNAME": "octo", "GITHUB_CACHE_TTL": "3600", "SITE_DIR": str(work / "no-site")}
    reference_env = {**environ, "REDIS_URL": redis_url(redis, 1)}
    scripts = {}
    for name, template in (("post", POST_SCRIPT), ("get", GET_SCRIPT)):
        scripts[name] = work / f"{name}.lua"
        scripts[name].write_text(template % {"site": SITE, "visitors": VISITORS})
    options = {"duration": duration, "connections": connections, "threads": threads}
    try:
        with serving(redis) as servers:
            service = servers["service"] = Server(cmd, service_env, work / "service.log")
            servers["reference"] = Server([*cmd[:-1], "bench.apps.incr:app"], reference_env, work / "reference.log")
            assert _request(f"{service.url}/api/github") == 200  # fills the cache: the runs read it
            post = round_robin(servers, "/api/visitors", scripts["post"], rounds=rounds,
                               log=lambda line: log(f"throughput {line}"), **options)
            log("throughput: GET /api/visitors and a cached GET /api/github...")
            get_visitors = wrk(f"{service.url}/api/visitors?path=/", scripts["get"], **options)
            get_github = wrk(f"{service.url}/api/github", scripts["get"], **options)
            github_calls = github.count("GET")
    finally:
        github.stop()
    access = [json.loads(line) for line in (work / "service.log").read_text().splitlines() if line.startswith("{")]
    results = {"post": post["service"], "post_reference": post["reference"], "get_visitors": get_visitors,
               "get_github": get_github}
    results["ratio_post"] = results["post"]["rps"] / results["post_reference"]["rps"]
    results["settings"] = {**options, "rounds": rounds, "workers": os.environ.get("WEB_CONCURRENCY", "2"),
                           "worker_connections": os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000")}
    results["github_upstream_calls"] = github_calls
    results["access_log_lines"] = len(access)
    return results


if __name__ == "__main__":  # a quick look: python -m bench.throughput
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(measure(Path(folder), duration=3, rounds=1), indent=2))
