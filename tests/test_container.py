"""The container image recipe and the compose file, proven without a Docker engine.

* The Dockerfile passes hadolint and has the shape the deployment needs.
* ``.dockerignore`` lets in what the Dockerfile copies and nothing secret.
* ``docker-compose.yml`` validates (Debian's ``docker-compose config``) and
  wires healthchecks, Redis with a password and a volume, and the worker.
* A container-equivalent run: a virtualenv from exactly the requirements
  file the Dockerfile installs, the builder's site build, the runtime
  stage's files, environment and ``CMD``, plus the compose service's
  environment (the ``redis`` host name mapped to a real password-protected
  redis-server on loopback), serving the site and the API; the compose
  worker's command delivers an outbox message to a fake Telegram. What only
  an engine does is not replayed: the user and group (``USER`` is checked to
  be unprivileged), ``chown`` and the build-time ``compileall``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from service import __version__

from . import venvs
from .dockerfile import Stage, parse_dockerfile
from .fakes import FakeUpstream, Reply
from .servers import RedisServer, free_port, wait_for_port

ROOT = venvs.ROOT
HADOLINT = ROOT / ".venv-tools" / "bin" / "hadolint"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
REDIS_PASSWORD = "compose-redis-password-0123456789"
TOKEN = "123456789:AAE-compose_TOKEN-value"
SITE_URL = "https://compose.example"
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", re.I)


DOCKERFILE_TEXT = (ROOT / "Dockerfile").read_text(encoding="utf-8")
GUNICORN_CONF = (ROOT / "gunicorn.conf.py").read_text(encoding="utf-8")
STAGES = parse_dockerfile(DOCKERFILE_TEXT)
BUILDER, RUNTIME = STAGES[0], STAGES[-1]
VENV_IN_IMAGE = "/opt/venv"


def installed_requirements() -> str:
    """The requirements file the builder's ``pip install -r`` installs."""
    runs = [rest for kind, rest in BUILDER.steps if kind == "RUN"]
    files = [match[1] for rest in runs for match in re.finditer(r"pip install [^&]*-r (\S+)", rest)]
    assert len(files) == 1, files
    return files[0]


# -- the Dockerfile -------------------------------------------------------------------------------------


def test_hadolint_passes_and_every_ignore_says_why():
    assert HADOLINT.exists(), "hadolint is installed by `make test` (tools-infra)"
    result = subprocess.run([str(HADOLINT), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for line in DOCKERFILE_TEXT.splitlines():
        if "hadolint ignore=" in line:
            assert re.search(r"hadolint ignore=\S+\s+\S", line), f"an ignore without its reason: {line}"


def test_dockerfile_builds_a_lean_unprivileged_image_of_the_projects_python():
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.match(r">=(\d+\.\d+)", requires)[1]
    assert len(STAGES) == 2 and BUILDER.name == "builder"
    for stage in STAGES:
        assert stage.base == f"python:{python}-slim-bookworm"
    assert installed_requirements() == "requirements-server.txt"
    copied = [rest for kind, rest in RUNTIME.steps if kind == "COPY"]
    assert f"--from=builder {VENV_IN_IMAGE} {VENV_IN_IMAGE}" in copied
    assert not [rest for rest in copied if "requirements-dev" in rest or "tests" in rest]
    uid = RUNTIME.user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert RUNTIME.env["PYTHONUNBUFFERED"] == "1"
    assert RUNTIME.env["PATH"].startswith(f"{VENV_IN_IMAGE}/bin:")
    assert RUNTIME.cmd == ["gunicorn", "--config", "gunicorn.conf.py", "service.wsgi:app"]
    command, options = RUNTIME.healthcheck
    assert "/api/health" in " ".join(command) and "--interval=" in options and "--start-period=" in options
    assert RUNTIME.labels["org.opencontainers.image.version"] == __version__
    assert {"title", "description", "version"} <= {k.rsplit(".", 1)[-1] for k in RUNTIME.labels}
    assert RUNTIME.expose == ["8000"]


# -- .dockerignore ---------------------------------------------------------------------------------------------


def _ignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((negate, re.compile(rf"{regex}(?:/.*)?")))
    return rules


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the repository) with the build context (last matching rule wins)."""
    included = True
    for negate, rule in _ignore_rules():
        if rule.fullmatch(path):
            included = negate
    return included


def test_dockerignore_sends_what_the_dockerfile_copies_and_no_secrets():
    for stage in STAGES:
        for kind, rest in stage.steps:
            if kind == "COPY" and "--from=" not in rest:
                for source in rest.split()[:-1]:
                    assert in_build_context(source.rstrip("/")), source
                    assert in_build_context(f"{source.rstrip('/')}/x.py") or not (ROOT / source).is_dir()
    for private in (".env", ".git/config", ".venv/bin/python", ".venv-cache/x", "tests/test_container.py",
                    "service/__pycache__/wsgi.cpython-311.pyc", ".pytest_cache/v", "instance/secret_key",
                    "build/site/index.html", "terraform/main.tf", "node_modules/x", ".tools/x", "zappa_settings.json"):
        assert not in_build_context(private), private


# -- docker-compose.yml ---------------------------------------------------------------------------------------


def _compose_project(tmp_path: Path, env: str) -> Path:
    tmp_path.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / "Caddyfile", tmp_path / "Caddyfile")
    (tmp_path / ".env").write_text(env, encoding="utf-8")
    return tmp_path


def _compose_config(folder: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian) is installed by `make test` (APT_PACKAGES)"
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "SECRET_KEY", "SITE_DOMAIN")}
    return subprocess.run([binary, *args, "config"], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=60)


def test_compose_file_validates_and_needs_the_redis_password(tmp_path):
    folder = _compose_project(tmp_path / "ok", f"REDIS_PASSWORD={REDIS_PASSWORD}\n")
    result = _compose_config(folder)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["app"]["environment"]["STORAGE_URL"] == f"redis://:{REDIS_PASSWORD}@redis:6379/0"
    assert "caddy" in yaml.safe_load(_compose_config(folder, "--profile", "tls").stdout)["services"]
    missing = _compose_config(_compose_project(tmp_path / "missing", "SECRET_KEY=x\n"))
    assert missing.returncode != 0 and "REDIS_PASSWORD" in missing.stderr


def test_compose_services_are_wired_for_health_and_durability():
    services = COMPOSE["services"]
    app, worker, redis = services["app"], services["worker"], services["redis"]
    assert app["build"]["context"] == "." and app["env_file"] == ".env" and app["restart"] == "unless-stopped"
    assert set(app["build"]["args"]) <= set(BUILDER.args), "a build argument the Dockerfile does not declare"
    assert any(str(port).endswith(":8000") for port in app["ports"])
    assert app["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert app["healthcheck"]["test"] == ["CMD", *RUNTIME.healthcheck[0]]
    assert worker["command"] == ["flask", "outbox", "deliver", "--loop"]
    assert worker["image"] == app["image"] and worker["depends_on"] == app["depends_on"]
    assert worker["restart"] == "unless-stopped"
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-\w+)?", redis["image"]), "pin the Redis image"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert "ping" in " ".join(redis["healthcheck"]["test"]) and redis["restart"] == "unless-stopped"
    [data] = [volume for volume in redis["volumes"] if volume.endswith(":/data")]
    assert data.split(":")[0] in COMPOSE["volumes"]
    caddy = services["caddy"]
    assert caddy["profiles"] == ["tls"] and re.fullmatch(r"caddy:\d+\.\d+\.\d+(-\w+)?", caddy["image"])


def _scalars(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _scalars(value, (*path, str(key)))
    elif isinstance(node, list):
        for value in node:
            yield from _scalars(value, path)
    else:
        yield path, str(node)


def test_compose_file_holds_no_secret_values():
    for path, value in _scalars(COMPOSE):
        if SECRETISH.search(path[-1]):
            assert re.fullmatch(r"\$\{\w+(:?[?-][^}]*)?\}", value), f"{'.'.join(path)} must come from .env"
        assert not re.search(r"://[^:/@]*:[^$@/][^@/]*@", value), f"{'.'.join(path)} has a password in a URL"


# -- the container-equivalent run ------------------------------------------------------------------------------


def env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as compose reads an env_file (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (``$$`` is a literal ``$``)."""
    def replace(match):
        name, operator, argument = match[1], match[2], match[3]
        current = variables.get(name, "")
        if operator == ":?" and not current:
            raise KeyError(f"{name}: {argument}")
        return current or (argument if operator == ":-" else "")
    return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", replace, value).replace("$$", "$")


@pytest.fixture(scope="module")
def redis_with_password():
    server = RedisServer(password=REDIS_PASSWORD).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def telegram():
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def image(tmp_path_factory, dotenv):
    """The runtime image's file system, made by the Dockerfile's own steps with the compose file's build
    arguments: {container path: local path}."""
    venv = venvs.virtualenv("container", installed_requirements())
    build_args = {name: interpolate(str(value), dotenv)
                  for name, value in COMPOSE["services"]["app"]["build"].get("args", {}).items()}
    root = tmp_path_factory.mktemp("image")
    paths = {VENV_IN_IMAGE: venv, BUILDER.workdir: root / "src", RUNTIME.workdir: root / "app"}

    def local(container_path: str, workdir: str) -> Path:
        absolute = container_path if container_path.startswith("/") else f"{workdir}/{container_path}"
        for prefix, folder in paths.items():
            if absolute == prefix or absolute.startswith(prefix + "/"):
                return Path(f"{folder}{absolute[len(prefix):]}")
        raise AssertionError(f"no local place for {absolute}")

    def run_stage(stage: Stage) -> None:
        local(stage.workdir, "/").mkdir(parents=True, exist_ok=True)
        for kind, rest in stage.steps:
            words = rest.split()
            if kind == "COPY":
                source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
                *sources, target = [w for w in words if not w.startswith("--")]
                for source in sources:
                    origin = local(source, BUILDER.workdir) if source_stage else ROOT / source
                    if str(origin) == str(venv):
                        continue  # the virtualenv is the cached one already
                    destination = local(target, stage.workdir)
                    if origin.is_dir():
                        shutil.copytree(origin, destination if source.endswith("/") or not target.endswith("/")
                                        else destination / origin.name, dirs_exist_ok=True,
                                        ignore=shutil.ignore_patterns("__pycache__"))
                    else:
                        destination.mkdir(parents=True, exist_ok=True) if target.endswith("/") else None
                        shutil.copy(origin, destination / origin.name if target.endswith("/") else destination)
            elif stage is BUILDER and "site build" in rest:
                environ = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8",
                           **{k: v.replace(f"{VENV_IN_IMAGE}/bin:$PATH", f"{venv}/bin:/usr/bin:/bin")
                              for k, v in stage.env.items()},
                           **stage.args, **{k: v for k, v in build_args.items() if k in stage.args}}
                result = subprocess.run(["bash", "-c", rest], cwd=local(stage.workdir, "/"), env=environ,
                                        capture_output=True, text=True, timeout=120)
                assert result.returncode == 0, result.stderr
            # Other RUN steps make the virtualenv (cached above from the same file), users and bytecode.

    run_stage(BUILDER)
    run_stage(RUNTIME)
    (local(RUNTIME.workdir, "/") / "instance").mkdir()
    return {"venv": venv, "app": local(RUNTIME.workdir, "/"), "local": lambda path: local(path, RUNTIME.workdir)}


def container_environment(image, service: str, redis_port: int, extra: dict[str, str]) -> dict[str, str]:
    """The Dockerfile's ENV, then the compose service's env_file and environment, with the compose network's
    ``redis`` host mapped to the loopback server."""
    dotenv = {**env_file((ROOT / ".env.example").read_text()), **extra}
    environ = {"HOME": str(image["app"]), "LANG": "C.UTF-8"}
    for name, value in RUNTIME.env.items():
        if name == "PATH":
            value = value.replace(VENV_IN_IMAGE, str(image["venv"])).replace("$PATH", "/usr/bin:/bin")
        elif value.startswith("/"):
            value = str(image["local"](value))
        environ[name] = value
    definition = COMPOSE["services"][service]
    if definition.get("env_file"):
        environ.update(dotenv)
    for name, value in (definition.get("environment") or {}).items():
        environ[name] = interpolate(str(value), dotenv).replace("@redis:6379", f"@127.0.0.1:{redis_port}")
    return environ


def _resolve(argv: list[str], environ: dict[str, str]) -> list[str]:
    return [shutil.which(argv[0], path=environ["PATH"]) or argv[0], *argv[1:]]


@pytest.fixture(scope="module")
def dotenv(telegram):
    """What the operator writes into .env (on top of .env.example)."""
    return {"REDIS_PASSWORD": REDIS_PASSWORD, "SECRET_KEY": "compose-secret-key-0123456789", "SITE_URL": SITE_URL,
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "4242", "TELEGRAM_API_URL": telegram.url,
            "OUTBOX_INLINE_SECONDS": "0", "OUTBOX_POLL_SECONDS": "0.2", "VISITOR_RATE_LIMIT": "60/minute"}


@pytest.fixture(scope="module")
def app_container(image, redis_with_password, dotenv, tmp_path_factory):
    """gunicorn started as the app service: the image's CMD, in its WORKDIR, with its environment."""
    environ = container_environment(image, "app", redis_with_password.port, dotenv)
    port = free_port()
    published = COMPOSE["services"]["app"]["ports"][0].rsplit(":", 1)[1]
    default_bind = re.search(r'^bind = os.environ.get\("BIND", "([^"]+)"\)', GUNICORN_CONF, re.M)[1]
    assert "BIND" not in environ and default_bind.rsplit(":", 1)[1] == published == RUNTIME.expose[0]
    environ["BIND"] = f"127.0.0.1:{port}"  # what the port mapping does for the container's 8000
    log = open(tmp_path_factory.mktemp("logs") / "app.log", "w+")  # noqa: SIM115 - open while gunicorn runs
    process = subprocess.Popen(_resolve(RUNTIME.cmd, environ), cwd=image["app"], env=environ, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30)
        yield {"url": f"http://127.0.0.1:{port}", "env": environ, "process": process, "log": log}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def http(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310 - loopback URLs
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_container_answers_health_and_its_healthcheck_passes(app_container, image):
    status, headers, body = http(f"{app_container['url']}/api/health")
    assert status == 200 and json.loads(body)["storage"] == "redis"
    check = subprocess.run(_resolve(RUNTIME.healthcheck[0], app_container["env"]), cwd=image["app"],
                           env=app_container["env"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_container_serves_the_site_built_with_the_compose_build_arguments(app_container):
    status, headers, body = http(f"{app_container['url']}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in body.lower()
    assert f'<link rel="canonical" href="{SITE_URL}/'.encode() in body


def test_container_counts_views_in_the_password_protected_redis(app_container, redis_with_password):
    import redis

    url = app_container["url"]
    counts = [json.loads(http(f"{url}/api/visitors", "POST", {"path": "/compose"},
                              {"X-Forwarded-For": "198.51.100.9"})[2]) for _ in range(2)]
    assert [c["page_views"] for c in counts] == [1, 2] and all(c["counted"] for c in counts)
    assert json.loads(http(f"{url}/api/visitors?path=/compose")[2])["page_views"] == 2
    with socket.create_connection(("127.0.0.1", redis_with_password.port), timeout=5) as anonymous:
        anonymous.sendall(b"PING\r\n")
        assert anonymous.recv(100).startswith(b"-NOAUTH")
    stored = redis.Redis(port=redis_with_password.port, password=REDIS_PASSWORD)
    assert [key for key in stored.scan_iter("*page:/compose*")], "the count is not in Redis"


def test_container_access_log_is_json_lines(app_container):
    http(f"{app_container['url']}/api/visitors?path=/logged", headers={"User-Agent": 'odd "agent" \\ value'})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        app_container["log"].seek(0)
        entries = [json.loads(line) for line in app_container["log"] if line.startswith("{")]
        access = [e for e in entries if e.get("logger") == "access" and e["path"] == "/api/visitors"
                  and e["user_agent"] == 'odd "agent" \\ value']
        if access:
            break
        time.sleep(0.1)
    assert access and access[0]["status"] == 200 and access[0]["request_id"]


def test_healthcheck_fails_while_redis_is_down(app_container, image, redis_with_password):
    redis_with_password.stop()
    try:
        check = subprocess.run(_resolve(RUNTIME.healthcheck[0], app_container["env"]), cwd=image["app"],
                               env=app_container["env"], capture_output=True, text=True, timeout=30)
        assert check.returncode != 0
    finally:
        redis_with_password.start()
    assert http(f"{app_container['url']}/api/health")[0] == 200


def test_worker_command_delivers_the_outbox_to_telegram(app_container, image, redis_with_password, dotenv,
                                                        telegram, tmp_path):
    path = f"/bot{TOKEN}/sendMessage"
    telegram.script("POST", path, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    status, _, body = http(f"{app_container['url']}/api/contact", "POST",
                           {"name": "Grace Hopper", "email": "grace@example.com", "message": "Hello from compose"},
                           {"X-Forwarded-For": "198.51.100.20"})
    assert status == 202, body
    assert telegram.count("POST", path) == 0  # OUTBOX_INLINE_SECONDS=0: the worker's job
    environ = container_environment(image, "worker", redis_with_password.port, dotenv)
    log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115 - open while the worker runs
    worker = subprocess.Popen(_resolve(COMPOSE["services"]["worker"]["command"], environ), cwd=image["app"],
                              env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while telegram.count("POST", path) == 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        assert telegram.count("POST", path) == 1, log.seek(0) or log.read()
        assert "Grace Hopper" in telegram.calls("POST", path)[0].json()["text"]
    finally:
        worker.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
        try:
            code = worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = worker.wait()
        log.close()
    assert code == 0
