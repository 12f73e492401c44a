"""One Python everywhere, and a guard against the next Lambda runtime deprecation.

The project's Python (pyproject.toml's ``requires-python``) is the Lambda
runtime (zappa_settings.json), the container image's base (Dockerfile), the
stand-in base image the compose test builds (tests/docker_engine.py), the
version `make` looks for (Makefile), CI's (ci.yml, deploy.yml) and the one
this suite runs on. The runtime must be in tools/lambda-runtimes.toml (AWS's
table, with its source and date) and at least `WARNING_DAYS` before its
deprecation date: past that, Lambda soon blocks creating and then updating
functions on it, so the AWS target could no longer deploy. docs/operations.md,
"Moving to the next Lambda runtime", says what to do when this test fails.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import tomllib

import yaml

from ..docker_engine import STAND_INS
from ..dockerfile import parse_dockerfile
from ..helpers import PYTHON, ROOT

WARNING_DAYS = 90
TABLE = tomllib.loads((ROOT / "tools" / "lambda-runtimes.toml").read_text())
RUNTIMES = {row["runtime"]: row for row in TABLE.values()}
ZAPPA = json.loads((ROOT / "zappa_settings.json").read_text(encoding="utf-8"))


def runtime_problem(runtime: str, today: datetime.date) -> str | None:
    """Why ``runtime`` cannot be deployed with confidence on ``today``, or None when it can."""
    row = RUNTIMES.get(runtime)
    if row is None:
        return f"{runtime} is not in tools/lambda-runtimes.toml (AWS's table of Lambda runtimes)"
    days = (row["deprecated"] - today).days
    if days < WARNING_DAYS:
        return (f"{runtime} is deprecated on {row['deprecated']} ({days} days from {today}); Lambda blocks creating "
                f"functions on it from {row['block_create']} and updating them from {row['block_update']}: "
                "move to the next runtime (docs/operations.md, 'Moving to the next Lambda runtime')")
    return None


def test_the_lambda_runtime_is_far_from_its_deprecation():
    for stage in ZAPPA:
        runtime = {**ZAPPA["production"], **ZAPPA[stage]}["runtime"]
        assert runtime_problem(runtime, datetime.datetime.now(datetime.UTC).date()) is None


def test_the_guard_fails_within_ninety_days_of_a_deprecation():
    deprecated = RUNTIMES["python3.13"]["deprecated"]
    assert runtime_problem("python3.13", deprecated - datetime.timedelta(days=WARNING_DAYS)) is None
    assert "deprecated on 2029-06-30" in runtime_problem("python3.13", deprecated - datetime.timedelta(days=89))
    # the runtime this project left: AWS stopped supporting it on 2026-06-30
    assert "python3.11 is deprecated" in runtime_problem("python3.11", datetime.date(2026, 12, 7))
    assert "not in tools/lambda-runtimes.toml" in runtime_problem("python3.9", datetime.date(2026, 12, 7))


def test_the_table_is_in_order():
    for runtime, row in RUNTIMES.items():
        assert re.fullmatch(r"python3\.\d+", runtime)
        assert row["deprecated"] < row["block_create"] <= row["block_update"], runtime


def test_one_python_everywhere():
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" == PYTHON  # `make test` made .venv with it
    for stage in ZAPPA:
        assert {**ZAPPA["production"], **ZAPPA[stage]}["runtime"] == f"python{PYTHON}"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PYTHON_VERSION := (\S+)$", makefile, re.M)[1] == PYTHON
    dockerfile = parse_dockerfile((ROOT / "Dockerfile").read_text())
    assert {stage.base for stage in dockerfile} == {f"python:{PYTHON}-slim-trixie"}
    assert f"python:{PYTHON}-slim-trixie" in STAND_INS  # what the compose test stands in for
    workflows = ROOT / ".github" / "workflows"
    for name in ("ci.yml", "deploy.yml"):
        assert yaml.safe_load((workflows / name).read_text())["env"]["PYTHON_VERSION"] == PYTHON
    assert yaml.safe_load((workflows / "ci.yml").read_text())["jobs"]["test"]["container"] == f"python:{PYTHON}-trixie"
