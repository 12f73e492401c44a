"""docker-compose.yml run for real: our image built from the Dockerfile, the compose file started by an engine.

The engine and the base images come from tests/docker_engine.py (the running
engine and real images on a CI runner; here a dockerd the session starts and
stand-ins built from Debian packages, cached between runs). The image is built
from the repository's Dockerfile with the compose file's build arguments; the
repository's docker-compose.yml (copied with the Caddyfile into a temporary
project folder, beside a generated .env) is driven by docker-compose (or
``docker compose``). Shown on one project, each test on its own (a test
starts what an earlier one stopped, and counts on a path of its own):

* the site and /api/health answer on the published port; counted views land
  in the password-protected Redis; the processes run as UID 10001; the
  worker delivers an outbox message to a fake Telegram listening on the
  compose network's gateway address; both health checks turn healthy;
* the access log is JSON lines on the app's output;
* while Redis is down the app's health check fails; once Redis is back the
  running app (not restarted) counts again, on the count Redis kept;
* ``docker stop`` ends the worker (a message in flight delivered and
  acknowledged) and gunicorn within ``stop_grace_period``, by their own exit,
  not Docker's SIGKILL;
* ``down`` then ``up`` keeps the counts (named volume) and the instance's
  generated secret; the ``tls`` profile serves HTTPS for localhost through
  Caddy's internal CA, and the app takes the visitor's address from Caddy's
  X-Forwarded-For (``TRUSTED_PROXIES=1``).

Needs root or a running engine; ``make test`` installs docker.io, debootstrap
and docker-compose. Where no engine can start the tests fail and say why.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
import time
import urllib.request

import pytest
import yaml

from service.core.clock import utc_date
from service.core.privacy import subject_hash

from ..docker_engine import Engine, EngineUnavailable, ensure_base_images
from ..dockerfile import parse_dockerfile
from ..fakes import FakeUpstream, Reply
from ..venvs import ROOT

pytestmark = pytest.mark.container

PROJECT = "vitaecompose"
REDIS_PASSWORD = "compose-redis-password-0123456789"
TOKEN = "123456789:AAE-compose_TOKEN-value"
SEND = f"/bot{TOKEN}/sendMessage"
SITE = "http://127.0.0.1:8000"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
COMPOSE_FILE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
GRACE_SECONDS = int(COMPOSE_FILE["x-vitae"]["stop_grace_period"].rstrip("s"))


def base_images() -> list[str]:
    """Every image the Dockerfile builds FROM and the compose services run (other than our own)."""
    names = [stage.base for stage in parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))]
    names += [service["image"] for service in COMPOSE_FILE["services"].values() if "build" not in service]
    return sorted(set(names))


@pytest.fixture(scope="session")
def engine():
    engine = Engine()
    try:
        engine.start()
    except EngineUnavailable as error:
        engine.stop()
        pytest.fail(f"no Docker engine for the compose tests: {error}", pytrace=False)
    yield engine
    engine.stop()


class Project:
    """docker-compose on the copied compose file, plus what the tests read from the engine."""

    def __init__(self, engine: Engine, folder):
        self.engine, self.folder = engine, folder
        v1 = shutil.which("docker-compose")
        self.command = [v1] if v1 else [engine.cli, "compose"]
        self.notes: dict = {}

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.command, "--project-name", PROJECT, *args], cwd=self.folder,
                                env=self.engine.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                                 f"{result.stderr}\n{self.logs()}")
        return result

    def logs(self) -> str:
        result = subprocess.run([*self.command, "--project-name", PROJECT, "logs", "--no-color", "--tail", "40"],
                                cwd=self.folder, env=self.engine.env, capture_output=True, text=True, timeout=60)
        return result.stdout[-6000:]

    def container(self, service: str) -> str:
        """The service's container id, from the labels both compose versions set (faster than compose ps)."""
        (cid,) = self.engine.docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}",
                                    "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        return cid

    def state(self, service: str) -> dict:
        return json.loads(self.engine.docker("inspect", "--format", "{{json .State}}", self.container(service)).stdout)

    def wait_healthy(self, service: str, timeout: float) -> None:
        """Polls the service's health until healthy; fails with the logs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.state(service).get("Health", {}).get("Status")
            if health == "healthy":
                return
            time.sleep(1)
        raise AssertionError(f"{service} is {health!r} after {timeout:.0f}s:\n{self.logs()}")

    def exec(self, service: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``docker exec`` in the service's container (its user and environment)."""
        options = [arg for arg in args if arg.startswith("--env=")]
        command = [arg for arg in args if not arg.startswith("--env=")]
        return self.engine.docker("exec", *options, self.container(service), *command, check=check)

    def redis(self, *args: str) -> str:
        """redis-cli inside the redis container (it authenticates with the service's REDISCLI_AUTH)."""
        return self.exec("redis", "redis-cli", "--raw", *args).stdout.strip()

    def write_env(self, **settings: str) -> None:
        (self.folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")


def http(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None,
         context: ssl.SSLContext | None = None):
    """(status, headers, body) of one request, error statuses included."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310 - our own URLs
        "User-Agent": BROWSER, **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def wait_for(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(message)


@pytest.fixture(scope="module")
def project(engine, tmp_path_factory):
    """The compose project running app, worker and redis; taken down with its volumes afterwards."""
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    shutil.copy(ROOT / "Caddyfile", folder / "Caddyfile")
    project = Project(engine, folder)
    project.write_env(REDIS_PASSWORD=REDIS_PASSWORD)
    project("down", "--volumes", "--remove-orphans", timeout=180)  # what an interrupted run left
    try:
        started = time.monotonic()
        project.notes["base images"] = ensure_base_images(engine, base_images())
        project.notes["base images seconds"] = round(time.monotonic() - started)
        app = yaml.safe_load(project("config").stdout)["services"]["app"]
        build_args = [f"--build-arg={name}={value}" for name, value in app["build"].get("args", {}).items()]
        started = time.monotonic()
        engine.docker("build", "--network", "host", "--tag", app["image"], *build_args, str(ROOT), timeout=900,
                      extra_env={"DOCKER_BUILDKIT": "0"})
        project.notes["build seconds"] = round(time.monotonic() - started)
        # Redis first: its network exists then, and the fake Telegram listens on that network's gateway address.
        project("up", "--detach", "redis")
        project.telegram = None
        telegram_on_the_network(project)
        wait_for(lambda: _answers(f"{SITE}/api/health"), 60, f"the app does not answer:\n{project.logs()}")
        yield project
    finally:
        project("down", "--volumes", "--remove-orphans", timeout=180, check=False)
        if getattr(project, "telegram", None):
            project.telegram.stop()
        print(f"compose test timings: {project.notes}")


def telegram_on_the_network(project: Project) -> FakeUpstream:
    """The fake Telegram, listening on the compose network's gateway address, and the project up with its URL.

    ``down`` removes the network and ``up`` makes a new one, whose gateway may differ: then the fake moves
    there and the app and worker are recreated with the new URL."""
    network = json.loads(project.engine.docker("network", "inspect", f"{PROJECT}_default").stdout)[0]
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    if project.telegram is None or project.telegram.server.server_address[0] != gateway:
        if project.telegram is not None:
            project.telegram.stop()
        project.telegram = FakeUpstream(host=gateway).start()
        project.write_env(REDIS_PASSWORD=REDIS_PASSWORD, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="4242",
                          TELEGRAM_API_URL=project.telegram.url, TELEGRAM_TIMEOUT="10", OUTBOX_INLINE_SECONDS="0",
                          OUTBOX_POLL_SECONDS="0.5", TRUSTED_PROXIES="1", SITE_DOMAIN="localhost")
        project("up", "--detach")
    return project.telegram


def _answers(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        return http(url, context=context)[0] == 200
    except OSError:
        return False


def count_view(path: str, headers: dict | None = None, base: str = SITE, context=None) -> dict:
    status, _, body = http(f"{base}/api/visitors", "POST", {"path": path}, headers, context)
    assert status == 200, body
    return json.loads(body)


def running(project: Project, *services: str) -> None:
    """Starts any of ``services`` that an earlier test stopped, and waits for the app to answer: each test stands
    on its own, in any order."""
    stopped = [service for service in services if not project.state(service)["Running"]]
    if stopped:
        project("start", *stopped)
    if "worker" in services:
        telegram_on_the_network(project)
    if "app" in services:
        wait_for(lambda: _answers(f"{SITE}/api/health"), 60, f"the app does not answer:\n{project.logs()}")


def page_views(path: str) -> int:
    """The count of ``path`` now (read without counting)."""
    status, _, body = http(f"{SITE}/api/visitors?path={path}")
    assert status == 200, body
    return json.loads(body)["page_views"]


def instance_secret(project: Project) -> str:
    return project.exec("app", "cat", "/app/instance/secret_key").stdout.strip()


def test_the_site_and_the_api_answer_on_the_published_port(project):
    running(project, "redis", "app")
    status, headers, body = http(f"{SITE}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<link rel="canonical" href="http://localhost:8000/' in body  # the compose file's build argument
    status, _, body = http(f"{SITE}/api/health")
    assert status == 200 and json.loads(body)["storage"] == "redis"
    # a page rendered per request, from the resume and the templates the image carries
    status, headers, body = http(f"{SITE}/sitemap.xml")
    assert status == 200 and b"<urlset" in body and b"<loc>" in body, body[:300]


def test_counted_views_land_in_redis(project):
    running(project, "redis", "app")
    counts = [count_view("/compose-counted") for _ in range(2)]
    assert [c["page_views"] for c in counts] == [1, 2] and all(c["counted"] for c in counts)
    assert project.redis("GET", "vitae:c:page:/compose-counted") == "2"
    anonymous = project.exec("redis", "--env=REDISCLI_AUTH=", "redis-cli", "GET", "vitae:c:page:/compose-counted",
                             check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr


def test_processes_run_as_the_images_unprivileged_user(project):
    running(project, "redis", "app", "worker")
    for service in ("app", "worker"):
        rows = project.engine.docker("top", project.container(service), "-eo", "pid,uid,args").stdout.splitlines()
        uids = {row.split()[1] for row in rows[1:]}
        assert uids == {"10001"}, rows
    assert len(rows) >= 2  # the worker's process, and the app's gunicorn master and workers above
    assert len(instance_secret(project)) >= 32


def _outbox(project: Project) -> tuple[int, int]:
    """(messages Telegram received, messages the outbox has acknowledged)."""
    return project.telegram.count("POST", SEND), int(project.redis("ZCARD", "vitae:q:outbox:done"))


def test_the_worker_delivers_the_outbox_to_telegram(project):
    running(project, "redis", "app", "worker")
    sent, done = _outbox(project)
    project.telegram.script("POST", SEND, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    status, _, body = http(f"{SITE}/api/contact", "POST",
                           {"name": "Grace Hopper", "email": "grace@example.com", "message": "Hello from compose"})
    assert status == 202, body
    wait_for(lambda: project.telegram.count("POST", SEND) > sent, 30, f"no delivery:\n{project.logs()}")
    assert "Grace Hopper" in project.telegram.calls("POST", SEND)[sent].json()["text"]
    wait_for(lambda: _outbox(project)[1] == done + 1, 20, "the delivery was not acknowledged")


def test_both_health_checks_turn_healthy(project):
    running(project, "redis", "app")
    # Docker's first check of the app comes one interval (30 s) after its start.
    project.wait_healthy("redis", 60)
    project.wait_healthy("app", 120)


def test_a_redis_restart_is_survived_without_restarting_the_app(project):
    running(project, "redis", "app")
    before_count = count_view("/compose-restart")["page_views"]
    before = project.state("app")
    health_check = COMPOSE_FILE["services"]["app"]["healthcheck"]["test"][1:]
    project("stop", "redis")
    assert project.exec("app", *health_check, check=False).returncode != 0  # unhealthy meanwhile
    project("start", "redis")
    project.wait_healthy("redis", 60)
    # the append-only file on the volume kept the count
    assert count_view("/compose-restart")["page_views"] == before_count + 1
    assert http(f"{SITE}/api/health")[0] == 200
    assert project.exec("app", *health_check, check=False).returncode == 0
    after = project.state("app")
    assert after["StartedAt"] == before["StartedAt"] and after["Running"]


def test_the_access_log_is_json_lines_on_the_containers_output(project):
    running(project, "redis", "app")
    agent = 'odd "agent" \\ value'
    assert http(f"{SITE}/api/visitors?path=/logged", headers={"User-Agent": agent})[0] == 200

    def logged():
        lines = project.engine.docker("logs", project.container("app")).stdout.splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if e.get("logger") == "access" and e.get("user_agent") == agent]

    (entry,) = wait_for(logged, 10, "no JSON access line for the request")
    assert entry["status"] == 200 and entry["path"] == "/api/visitors" and entry["request_id"]


def _stop(project: Project, service: str) -> tuple[float, dict]:
    started = time.monotonic()
    project("stop", service, timeout=GRACE_SECONDS + 60)
    return time.monotonic() - started, project.state(service)


def test_docker_stop_ends_the_worker_in_time_without_losing_the_message_in_flight(project):
    running(project, "redis", "app", "worker")
    sent, done = _outbox(project)
    project.telegram.script("POST", SEND, Reply(200, json={"ok": True, "result": {"message_id": 2}}, delay=3))
    status, _, body = http(f"{SITE}/api/contact", "POST",
                           {"name": "Ada Lovelace", "email": "ada@example.com", "message": "In flight"})
    assert status == 202, body
    wait_for(lambda: project.telegram.count("POST", SEND) == sent + 1, 30, "the worker did not send the message")
    seconds, state = _stop(project, "worker")  # while Telegram still holds its answer
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert seconds < GRACE_SECONDS
    assert _outbox(project) == (sent + 1, done + 1)
    assert project.redis("ZCARD", "vitae:q:outbox:pending") == "0"


def test_docker_stop_ends_gunicorn_within_the_grace_period(project):
    running(project, "redis", "app")
    seconds, state = _stop(project, "app")
    assert state["ExitCode"] == 0, state
    assert seconds < GRACE_SECONDS


def test_down_then_up_keeps_the_counts_and_the_instance_secret(project):
    running(project, "redis", "app")
    before = count_view("/compose-down")["page_views"]
    secret = instance_secret(project)
    project("down", timeout=180)
    assert project("ps", "-q").stdout.split() == []
    project("up", "--detach")
    running(project, "app")
    assert count_view("/compose-down")["page_views"] == before + 1
    assert hashlib.sha256(instance_secret(project).encode()).digest() == hashlib.sha256(secret.encode()).digest()


def test_the_tls_profile_serves_https_through_caddy_and_passes_the_visitor_address(project):
    running(project, "redis", "app")
    # --no-deps: the app is up already; waiting for its first health check (30 s) would prove nothing more.
    project("--profile", "tls", "up", "--detach", "--no-deps", "caddy")
    authority = wait_for(
        lambda: project.exec("caddy", "cat", "/data/caddy/pki/authorities/local/root.crt", check=False).stdout,
        30, "Caddy made no local certificate authority")
    context = ssl.create_default_context(cadata=authority)
    for key in project.redis("--scan", "--pattern", "vitae:v:rl:visit:*").split():
        project.redis("DEL", key)  # direct requests to the published port left their own
    wait_for(lambda: _answers("https://localhost/api/health", context), 30, f"no HTTPS answer:\n{project.logs()}")
    status, headers, body = http("https://localhost/", context=context)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    before = page_views("/tls")
    assert count_view("/tls", base="https://localhost", context=context)["page_views"] == before + 1
    # The app's rate-limit key hashes the visitor's address: Caddy's peer, not Caddy's own container address.
    caddy = json.loads(project.engine.docker("inspect", project.container("caddy")).stdout)[0]
    caddy_address = caddy["NetworkSettings"]["Networks"][f"{PROJECT}_default"]["IPAddress"]
    gateway = caddy["NetworkSettings"]["Networks"][f"{PROJECT}_default"]["Gateway"]
    keys = project.redis("--scan", "--pattern", "vitae:v:rl:visit:*").split()
    today = utc_date(time.time())
    secret = instance_secret(project)
    assert {key.split(":")[4] for key in keys} == {subject_hash(secret, today, gateway)}, keys
    assert subject_hash(secret, today, caddy_address) not in keys[0]
