"""The code stays lint-clean under the project's ruff rules (pyproject.toml), checked on every test run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_upstream_json_is_read_only_through_the_upstream_base():
    """Every client reads an answer's JSON with `service.core.upstream.json_body`, which makes its text valid."""
    base = ROOT / "service" / "core" / "upstream.py"
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "service").rglob("*.py"))
                 if path != base
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if ".json()" in line]
    assert offenders == []
