"""The container image recipe and the compose file, checked without a Docker engine (fast, static).

* The Dockerfile passes hadolint and has the shape the deployment needs.
* ``.dockerignore`` lets in what the Dockerfile copies and nothing secret.
* ``docker-compose.yml`` validates (Debian's ``docker-compose config``),
  refuses to start without the Redis password, holds no secret values and
  wires healthchecks, Redis with a password and a volume, and the worker.

What the image and the compose file do when they run is shown by
tests/test_compose.py on a real engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from service import __version__

from .. import venvs
from ..dockerfile import parse_dockerfile
from ..helpers import PYTHON

ROOT = venvs.ROOT
HADOLINT = ROOT / ".venv-tools" / "bin" / "hadolint"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
REDIS_PASSWORD = "compose-redis-password-0123456789"
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", re.I)


DOCKERFILE_TEXT = (ROOT / "Dockerfile").read_text(encoding="utf-8")
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
    assert len(STAGES) == 2 and BUILDER.name == "builder"
    for stage in STAGES:
        assert stage.base == f"python:{PYTHON}-slim-trixie"
    assert installed_requirements() == "requirements-server.txt"
    copied = [rest for kind, rest in RUNTIME.steps if kind == "COPY"]
    assert f"--from=builder {VENV_IN_IMAGE} {VENV_IN_IMAGE}" in copied
    assert not [rest for rest in copied if "requirements-dev" in rest or "tests" in rest]
    assert "site/ site/" in copied  # the pages rendered per request read the resume and the templates
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
    # the Caddyfile sends it to the app (tests/deploy/test_caddyfile.py)
    assert caddy["environment"]["ORIGIN_SECRET"] == "${ORIGIN_SECRET:-}"


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
