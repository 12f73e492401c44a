"""A Docker engine for tests/deploy/test_compose.py, and stand-ins for base images no registry serves here.

`Engine.start()` uses the engine that answers (``DOCKER_HOST`` or the default
socket, as on a CI runner); when none does it starts ``dockerd`` itself, as
root, with its socket, pidfile and exec-root in a temporary folder and its
data-root in ``~/.cache/vitae-docker/engine`` (so base images and the build's
layer cache survive between runs), and `Engine.stop()` stops it. A file lock
keeps two test runs on one machine from sharing that data-root or the compose
file's fixed host ports. Where no engine can start, `EngineUnavailable` says
why (the tests fail with it; they are never skipped).

`ensure_base_images()` makes every base image the Dockerfile and the compose
file name present: a real image already in the engine or pulled from a
registry, else a stand-in built from Debian packages (`STAND_INS`):
``debootstrap --variant=minbase trixie`` (Debian 13, whose Python is 3.13) from the mirror apt uses, the
image's packages installed in a chroot, the machine's CA bundle copied in,
and ``docker import`` under the exact name, with the image's PATH, working
directory and command. A stand-in is also tagged
``vitae-stand-in/<name>:<key>``, where the key hashes its recipe, so a rerun
finds it and a changed recipe rebuilds it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vitae-docker"
DEBIAN_SUITE = "trixie"
PATH_IN_IMAGE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none could be started here; the message says why."""


@dataclasses.dataclass(frozen=True)
class StandIn:
    """What an official image provides that our files use: its packages, links and image settings."""

    packages: tuple[str, ...]
    changes: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()
    folders: tuple[str, ...] = ()


STAND_INS = {
    # python:*-slim has python, python3 and pip on /usr/local/bin; the Dockerfile runs `python -m venv`.
    "python:3.13-slim-trixie": StandIn(
        packages=("python3.13", "python3.13-venv"),
        changes=(f"ENV PATH={PATH_IN_IMAGE}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'),
        links=(("/usr/bin/python3.13", "/usr/local/bin/python"), ("/usr/bin/python3.13", "/usr/local/bin/python3"))),
    # redis:*-alpine runs redis-server in /data, with redis-cli beside it for the health check.
    "redis:7.4.2-alpine": StandIn(
        packages=("redis-server", "redis-tools"),
        changes=(f"ENV PATH={PATH_IN_IMAGE}", "WORKDIR /data", "EXPOSE 6379", 'CMD ["redis-server"]'),
        folders=("/data",)),
    # caddy:*-alpine keeps its state in /data and /config and runs the mounted Caddyfile. Debian's caddy (2.6)
    # knows request buffering only by its old name, which 2.8 no longer has: the stand-in renames it.
    "caddy:2.8.4-alpine": StandIn(
        packages=("caddy",),
        changes=(f"ENV PATH={PATH_IN_IMAGE}", "ENV XDG_CONFIG_HOME=/config", "ENV XDG_DATA_HOME=/data",
                 "WORKDIR /srv", "EXPOSE 80 443",
                 'CMD ["sh", "-c", "sed s/request_buffers.*/buffer_requests/ /etc/caddy/Caddyfile > /tmp/Caddyfile'
                 ' && exec caddy run --config /tmp/Caddyfile --adapter caddyfile"]'),
        folders=("/data", "/config", "/srv", "/etc/caddy")),
}


def _stop_orphans(data_root: str, wait: float = 30) -> None:
    """Stop a ``dockerd`` on ``data_root`` left by a run that was killed before its teardown (the lock is ours
    now, so it belongs to no run): a second engine on that data-root cannot start its containerd."""
    orphans = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"{entry.path}/cmdline", "rb") as cmdline:
                    args = cmdline.read().split(b"\0")
            except OSError:
                continue
            if args and os.path.basename(args[0]) == b"dockerd" and data_root.encode() in args:
                orphans.append(int(entry.name))
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # dockerd stops its containerd too
    deadline = time.monotonic() + wait
    while any(os.path.exists(f"/proc/{pid}") for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Engine:
    """The docker CLI pointed at an engine: ``engine.docker("ps")``, ``engine.env`` for docker-compose."""

    def __init__(self):
        self.env = dict(os.environ)
        self.process: subprocess.Popen | None = None
        self.folder: str | None = None
        self.log_path: str | None = None
        self._lock = None
        self.cli = shutil.which("docker") or "/usr/bin/docker"

    def docker(self, *args: str, timeout: float = 120, check: bool = True,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Runs ``docker ARGS`` against this engine; raises with its output when it fails and ``check``."""
        result = subprocess.run([self.cli, *args], env={**self.env, **(extra_env or {})}, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}"
                               f"\n{result.stderr}")
        return result

    def answers(self) -> bool:
        try:
            return self.docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode == 0
        except (subprocess.TimeoutExpired, FileNotFoundError):
            return False

    def start(self, lock_seconds: float = 600) -> Engine:
        """Takes the machine's lock, then uses the running engine or starts one (bounded waits)."""
        CACHE.mkdir(parents=True, exist_ok=True)
        self._lock = open(CACHE / "lock", "w")  # noqa: SIM115 - held until stop()
        deadline = time.monotonic() + lock_seconds
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"another test run held {CACHE / 'lock'} for {lock_seconds:.0f}s") \
                        from None
                time.sleep(1)
        if not shutil.which(self.cli):
            raise EngineUnavailable("no docker CLI: `make test` installs Debian's docker.io")
        if self.answers():
            return self
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise EngineUnavailable("no engine answers and dockerd is missing: `make test` installs docker.io")
        if os.geteuid() != 0:
            raise EngineUnavailable("no engine answers and starting dockerd needs root")
        _stop_orphans(str(CACHE / "engine"))
        self.folder = tempfile.mkdtemp(prefix="vitae-dockerd-")
        self.env["DOCKER_HOST"] = f"unix://{self.folder}/docker.sock"
        self.log_path = f"{self.folder}/dockerd.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [dockerd, "--data-root", str(CACHE / "engine"), "--exec-root", f"{self.folder}/exec",
                 "-H", self.env["DOCKER_HOST"], "--pidfile", f"{self.folder}/docker.pid",
                 "--storage-driver", "overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.answers():
                return self
            time.sleep(0.5)
        tail = Path(self.log_path).read_text(errors="replace")[-3000:]
        self.stop()
        raise EngineUnavailable(f"dockerd did not answer within 60 s; its log ends with:\n{tail}")

    def stop(self) -> None:
        """Stops the engine this object started (SIGTERM, then SIGKILL after 30 s) and releases the lock."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            self.process = None
        if self.folder:
            # dockerd leaves its network namespace mounted under the exec-root.
            with open("/proc/mounts") as mounts:
                inside = [line.split()[1] for line in mounts if line.split()[1].startswith(self.folder + "/")]
            for mount in sorted(inside, reverse=True):
                subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=30, check=False)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def image_exists(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False).returncode == 0


def stand_in_key(name: str) -> str:
    """A hash of everything a stand-in is made from: its spec, the recipe's code and the CA bundle."""
    recipe = inspect.getsource(build_stand_in) + inspect.getsource(debootstrap)
    spec = repr((name, STAND_INS[name], DEBIAN_SUITE, recipe, Path(CA_BUNDLE).read_bytes()))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def stand_in_tag(name: str) -> str:
    return f"vitae-stand-in/{re.sub(r'[^a-z0-9]+', '-', name)}:{stand_in_key(name)}"


def ensure_base_images(engine: Engine, names: list[str], pull_seconds: float = 60) -> dict[str, str]:
    """Makes each image present; answers {name: "present" | "pulled" | "stand-in cached" | "stand-in built"}."""
    how: dict[str, str] = {}
    missing = []
    for name in names:
        if engine.image_exists(stand_in_tag(name)):
            engine.docker("tag", stand_in_tag(name), name)
            how[name] = "stand-in cached"
        elif engine.image_exists(name) and not _is_stand_in(engine, name):
            how[name] = "present"
        else:
            missing.append(name)
    for name in missing:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if engine.docker("pull", "-q", name, timeout=pull_seconds, check=False).returncode == 0:
                how[name] = "pulled"
    to_build = [name for name in missing if name not in how]
    if to_build:
        with tempfile.TemporaryDirectory(prefix="vitae-rootfs-") as folder:
            base = debootstrap(Path(folder) / "base")
            # Side by side: most of each is waiting for downloads and for the engine's import.
            with concurrent.futures.ThreadPoolExecutor(len(to_build)) as pool:
                builds = [pool.submit(build_stand_in, engine, name, base, Path(folder) / f"image{i}")
                          for i, name in enumerate(to_build)]
                for name, build in zip(to_build, builds, strict=True):
                    build.result()
                    how[name] = "stand-in built"
    return how


def _is_stand_in(engine: Engine, name: str) -> bool:
    config = json.loads(engine.docker("image", "inspect", "--format", "{{json .Config.Env}}", name).stdout)
    return any(entry.startswith("VITAE_STAND_IN=") for entry in config or [])


def debian_mirror() -> str:
    """The first Debian mirror apt is configured with (deb822 .sources or one-line sources.list)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for match in re.finditer(r"^URIs:\s*(\S+)", path.read_text(), re.M):
            if "security" not in match[1]:
                return match[1]
    sources = Path("/etc/apt/sources.list")
    for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s", sources.read_text() if sources.exists() else "",
                             re.M):
        if "security" not in match[1]:
            return match[1]
    raise EngineUnavailable("no Debian mirror in /etc/apt/sources.list(.d) for the stand-in base images")


def _run(args: list[str], timeout: float, **kwargs) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                           f"\n{result.stderr[-3000:]}")


def debootstrap(root: Path) -> Path:
    """A minimal Debian root with ca-certificates and fresh package lists (no service starts in it)."""
    if not shutil.which("debootstrap"):
        raise EngineUnavailable("debootstrap is missing: `make test` installs it")
    _run(["debootstrap", "--variant=minbase", "--include=ca-certificates", DEBIAN_SUITE, str(root),
          debian_mirror()], timeout=600)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    _run(["chroot", str(root), "apt-get", "update", "-qq"], timeout=300)
    return root


def build_stand_in(engine: Engine, name: str, base: Path, root: Path) -> None:
    """Copies the base root, installs the image's packages in it and imports it as ``name``."""
    spec = STAND_INS[name]
    shutil.rmtree(root, ignore_errors=True)
    _run(["cp", "-a", str(base), str(root)], timeout=300)
    _run(["chroot", str(root), "apt-get", "install", "-y", "-qq", "--no-install-recommends", *spec.packages],
         timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    _run(["chroot", str(root), "apt-get", "clean"], timeout=60)
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "usr/sbin/policy-rc.d").unlink()
    shutil.copy(CA_BUNDLE, root / CA_BUNDLE.lstrip("/"))  # pip in a build trusts what this machine trusts
    for target, link in spec.links:
        (root / link.lstrip("/")).symlink_to(target)
    for folder in spec.folders:
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    changes = [*spec.changes, f"ENV VITAE_STAND_IN={stand_in_key(name)}"]
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    try:
        result = subprocess.run([engine.cli, "import", *[f"--change={c}" for c in changes], "-", name],
                                stdin=tar.stdout, env=engine.env, capture_output=True, text=True, timeout=600)
    finally:
        tar.stdout.close()
        tar.wait(timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"docker import {name} failed: {result.stderr}")
    engine.docker("tag", name, stand_in_tag(name))
    shutil.rmtree(root, ignore_errors=True)
