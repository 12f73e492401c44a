"""Python environments built once from a requirements file and reused by later test runs and benchmarks.

`virtualenv("container", "requirements.txt")` answers the path of
``.venv-cache/container-<hash>``, a virtualenv holding exactly that file's
requirements; `target_dir` does the same for a plain ``pip install --target``
folder (what Lambda's runtime provides next to a package). The hash covers the
requirements file, every file it includes with ``-r`` and the Python version,
so a changed pin builds a new environment and an unchanged one costs nothing.
Builds take a file lock (two test processes never build the same one) and an
environment without its ``.complete`` marker is rebuilt from scratch.

Raises `subprocess.CalledProcessError` when pip fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".venv-cache"
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement)\s+(\S+)", re.M)


def requirement_files(path: Path) -> list[Path]:
    """``path`` and every requirements file it includes, depth first."""
    files = [path]
    for name in _INCLUDE.findall(path.read_text(encoding="utf-8")):
        files += requirement_files((path.parent / name).resolve())
    return files


def _key(text: str, requirements: Path) -> str:
    digest = hashlib.sha256(f"{sys.version_info[:2]}|{text}".encode())
    for path in requirement_files(requirements):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_TARGET")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _build(folder: Path, make) -> Path:
    CACHE.mkdir(exist_ok=True)
    marker = folder / ".complete"
    if marker.exists():
        return folder
    with open(CACHE / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            shutil.rmtree(folder, ignore_errors=True)
            make(folder)
            marker.touch()
    return folder


def virtualenv(name: str, requirements: str | Path, *, extra: tuple[str, ...] = ()) -> Path:
    """A virtualenv with ``requirements`` (relative to the repository) and ``extra`` pip arguments installed."""
    path = ROOT / requirements

    def make(folder: Path) -> None:
        subprocess.run([str(BASE_PYTHON), "-m", "venv", str(folder)], check=True, env=_pip_env())
        subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(path), *extra],
                       check=True, env=_pip_env(), stdout=subprocess.DEVNULL)

    return _build(CACHE / f"{name}-{_key(' '.join(extra), path)}", make)


def target_dir(name: str, requirements: str | Path, packages: tuple[str, ...]) -> Path:
    """A folder with ``packages`` (pinned as in ``requirements``) installed by ``pip install --target``."""
    path = ROOT / requirements
    pins = {}
    for file in requirement_files(path):
        for line in file.read_text(encoding="utf-8").splitlines():
            requirement = line.split("#", 1)[0].strip()
            if "==" in requirement:
                package, version = requirement.split("==", 1)
                pins[package.split("[", 1)[0].lower()] = version
    specs = [f"{package}=={pins[package]}" if package in pins else package for package in packages]

    def make(folder: Path) -> None:
        subprocess.run([str(BASE_PYTHON), "-m", "pip", "install", "-q", "--target", str(folder), *specs],
                       check=True, env=_pip_env(), stdout=subprocess.DEVNULL)

    return _build(CACHE / f"{name}-{_key(' '.join(specs), path)}", make)
