"""Lambda cold start and package size: the service's Zappa package against two references, side by side.

Three packages answer ``POST /api/visitors`` as the first event of a fresh
interpreter (no bytecode writing, only the package and the libraries
Lambda's runtime provides on the path), against DynamoDB served by moto over
HTTP, in turn, ``runs`` times each:

* **vitae**: ``zappa package production`` of this repository;
* **(a)**: `bench.apps.dynamodb_flask`, one Flask route doing one
  ``UpdateItem``, packaged by the same Zappa, settings, exclusions and
  bytecode step, entering through the same precompiled ``zappa.handler``;
* **(b)**: `bench.apps.dynamodb_bare`, a bare boto3 handler doing the same
  ``UpdateItem``.

A cold start is timed from starting the interpreter to having the answer.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
import zipfile
from pathlib import Path

from tests import venvs
from tests.lambda_runtime import LambdaProcess, function_url_event, zappa
from tests.servers import MotoServer

ROOT = venvs.ROOT
ORIGIN_SECRET = "bench-origin-secret-0123456789abcdef"
TABLE = "vitae"


def _unzip(archive: Path, folder: Path) -> dict[str, float]:
    with zipfile.ZipFile(archive) as package:
        package.extractall(folder)
        installed = sum(item.file_size for item in package.infolist())
    return {"zip_mb": archive.stat().st_size / 1e6, "installed_mb": installed / 1e6}


def _package_vitae(venv: Path, work: Path) -> tuple[Path, dict[str, float]]:
    archive = work / "vitae.zip"
    result = zappa(venv, "package", "production", "-o", str(archive), cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"zappa package failed:\n{result.stdout}{result.stderr}")
    return work / "vitae", _unzip(archive, work / "vitae")


def _package_reference(venv: Path, work: Path) -> tuple[Path, dict[str, float]]:
    """(a) in a project of its own, with the production stage's settings but its own app."""
    project = work / "reference-project"
    project.mkdir()
    shutil.copy(ROOT / "bench" / "apps" / "dynamodb_flask.py", project / "refapp.py")
    shutil.copy(ROOT / "service" / "aws_lambda.py", project / "vitae_build.py")
    stage = json.loads((ROOT / "zappa_settings.json").read_text())["production"]
    # The same precompiled entry as the service's (which wraps it), not Zappa's uncompiled root handler.py copy.
    stage.update(lambda_handler="zappa.handler.lambda_handler")
    stage.update(project_name="reference", app_function="refapp.app", prebuild_script="vitae_build.compile_bytecode",
                 events=[], environment_variables={"TABLE": TABLE})
    (project / "zappa_settings.json").write_text(json.dumps({"reference": stage}))
    archive = work / "reference.zip"
    result = zappa(venv, "package", "reference", "-o", str(archive), cwd=project)
    if result.returncode:
        raise RuntimeError(f"zappa package (reference) failed:\n{result.stdout}{result.stderr}")
    return work / "reference", _unzip(archive, work / "reference")


def _bare(work: Path) -> Path:
    folder = work / "bare"
    folder.mkdir()
    shutil.copy(ROOT / "bench" / "apps" / "dynamodb_bare.py", folder / "bare.py")
    return folder


def measure(work: Path, runs: int = 11, log=print) -> dict:
    """Package the three, run ``runs`` cold starts of each in turn; medians in ms, sizes in MB."""
    venv = venvs.virtualenv("lambda", "requirements-deploy.txt")
    runtime = venvs.target_dir("lambda-runtime", "requirements.txt", ("boto3",))
    log("packaging the service and reference (a) with Zappa...")
    vitae, vitae_size = _package_vitae(venv, work)
    reference, reference_size = _package_reference(venv, work)
    bare = _bare(work)
    moto = MotoServer().start()
    try:
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="eu-west-1")
        from service.storage import open_storage

        open_storage(f"dynamodb://{TABLE}?region=eu-west-1&endpoint_url={moto.endpoint}").init()
        stage_env = json.loads((ROOT / "zappa_settings.json").read_text())["production"]["aws_environment_variables"]
        common = {**stage_env, "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint}
        contenders = {
            "vitae": (vitae, "service.aws_lambda.lambda_handler",
                      {**common, "SECRET_KEY": "bench-secret-key-0123456789", "ORIGIN_SECRET": ORIGIN_SECRET}),
            "a": (reference, "zappa.handler.lambda_handler", common),
            "b": (bare, "bare.handler", {**common, "TABLE": TABLE}),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        log(f"cold starts: {runs} of each, in turn...")
        for run in range(runs):
            for name, (folder, handler, env) in contenders.items():
                event = function_url_event("POST", "/api/visitors", body=json.dumps({"path": "/"}),
                                           headers={"content-type": "application/json"},
                                           viewer_ip=f"192.0.2.{run + 1}", origin_secret=ORIGIN_SECRET)
                started = time.perf_counter()
                process = LambdaProcess(folder, runtime, handler, env=env)
                try:
                    answer = process.invoke(event)
                    elapsed = time.perf_counter() - started
                finally:
                    logs = process.stop()
                if answer.get("statusCode") != 200:
                    raise RuntimeError(f"{name} answered {answer}:\n{logs}")
                times[name].append(elapsed * 1000)
    finally:
        moto.stop()
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"runs": runs, "median_ms": medians, "min_ms": {n: min(v) for n, v in times.items()},
            "ratio_to_a": medians["vitae"] / medians["a"], "ratio_to_b": medians["vitae"] / medians["b"],
            "size": {"vitae": vitae_size, "a": reference_size}}
