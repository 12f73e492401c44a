"""The AWS Lambda target: Zappa's package, the package answering events in a fresh interpreter, and the
whole deploy / update / status / undeploy lifecycle against moto's server.

Zappa runs from a lean virtualenv made of requirements-deploy.txt alone
(`tests.venvs`, built once per pin set). The unzipped package runs in a
fresh interpreter that sees only the package and the libraries Lambda's
runtime provides (`tests.lambda_runtime`), against DynamoDB, Telegram and
GitHub on loopback.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import subprocess
import zipfile
from urllib.parse import unquote

import pytest

from service.aws_lambda import PUBLIC_INVOKE_SID, SCHEDULED_TASKS
from service.features import SETTINGS as APP_SETTINGS

from .. import venvs
from ..fakes import FakeUpstream, Reply
from ..helpers import PYTHON
from ..lambda_runtime import (
    ACCOUNT,
    EDGE_IP,
    REGION,
    SITE_HOST,
    URL_HOST,
    LambdaProcess,
    function_url_event,
    response_body,
    response_json,
    scheduled_event,
    zappa,
)
from ..servers import MotoServer

ROOT = venvs.ROOT
SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text(encoding="utf-8"))
STAGE = "production"
FUNCTION = f"{SETTINGS[STAGE]['project_name']}-{STAGE}"
HANDLER = SETTINGS[STAGE]["lambda_handler"]
MAX_PACKAGE_BYTES = 15_000_000
ORIGIN_SECRET = "origin-secret-for-tests-0123456789abcdef"
TOKEN = "123456789:AAE-lambda_TOKEN-value"
OUTBOX_TASK = "service.tasks.deliver_outbox"
FOLD_TASK = "service.tasks.fold_views"
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}
ISSUE = {"number": 7, "title": "Hello from Lambda", "state": "open", "user": {"login": "octo"},
         "labels": [{"name": "published"}], "body": "A post written as an issue.",
         "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"}


@pytest.fixture(scope="module")
def lambda_venv():
    return venvs.virtualenv("lambda", "requirements-deploy.txt")


@pytest.fixture(scope="module")
def runtime_libraries():
    """What Lambda's Python runtime provides and the package leaves out: boto3 and its dependencies."""
    return venvs.target_dir("lambda-runtime", "requirements.txt", ("boto3",))


@pytest.fixture(scope="module")
def package(lambda_venv, tmp_path_factory):
    archive = tmp_path_factory.mktemp("package") / "vitae.zip"
    result = zappa(lambda_venv, "package", STAGE, "-o", str(archive), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return archive


@pytest.fixture(scope="module")
def unzipped(package, tmp_path_factory):
    folder = tmp_path_factory.mktemp("task")
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    return folder


# -- the settings -----------------------------------------------------------------------------------------


def test_settings_match_the_project_and_keep_secrets_out():
    secret_names = {setting.name for setting in APP_SETTINGS if setting.secret} - {"STORAGE_URL"}
    for stage in ("dev", "production"):
        settings = {**SETTINGS["production"], **SETTINGS[stage]}
        assert settings["runtime"] == f"python{PYTHON}"
        assert settings["app_function"] == "service.wsgi.app"
        assert settings["manage_roles"] is False and settings["role_arn"].endswith(f":role/vitae-{stage}-lambda")
        assert settings["debug"] is False and settings["keep_warm"] is False
        assert settings["apigateway_enabled"] is False and settings["function_url_enabled"] is True
        assert settings["function_url_config"]["authorizer"] == "NONE"
        assert settings["memory_size"] >= 256 and 3 <= settings["timeout_seconds"] <= 30
        # a flood of direct calls to the function URL costs at most this many functions running at once
        assert 1 <= settings["lambda_concurrency"] <= 20
        assert {"boto3*", "botocore*", "tests"} <= set(settings["exclude"])
        assert {"function": OUTBOX_TASK, "expression": "rate(5 minutes)"} in settings["events"]
        assert {event["function"] for event in settings["events"]} == SCHEDULED_TASKS  # the entry point's list
        assert settings["callbacks"] == {"post": "service.aws_lambda.secure_function_policy"}
        assert settings["environment_variables"]["STORAGE_URL"].startswith("dynamodb://vitae")
        assert settings["environment_variables"]["TRUSTED_PROXIES"] == "0"
        assert not secret_names & set(settings["environment_variables"])
        assert not secret_names & set(settings.get("aws_environment_variables", {}))
        # Zappa's handler logs every request in Common Log Format, the viewer's address first, at INFO.
        assert settings["log_level"] == "WARNING"
    assert SETTINGS["dev"]["extends"] == "production"


# -- the package --------------------------------------------------------------------------------------------


def _dev_packages() -> set[str]:
    """The packages only development and the site build use (pypdf: the resume PDF's metadata, at build time)."""
    names = set()
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    for line in lines + (ROOT / "requirements-site.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0].lower().replace("-", "_"))
    return names


def test_package_is_small_and_holds_only_what_runs(package):
    assert package.stat().st_size <= MAX_PACKAGE_BYTES
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"handler.py", "zappa_settings.py", "service", "flask", "werkzeug", "zappa", "nh3"} <= tops
    # site/ holds the templates, assets and resume the function renders the blog's pages with, and the
    # translations and their words the sitemap lists and the pages' words come from
    assert {"site/templates/blog/post.html", "site/assets/site.css", "site/resume.json", "site/resume.de.json",
            "site/translations/en.json"} <= set(names)
    never = {"tests", "bench", "terraform", "build", "tools", "instance", ".env", ".git", ".github",
             "boto3", "botocore", "s3transfer", "pip", "setuptools", "troposphere", "yaml", "gunicorn", "redis",
             "charset_normalizer",
             "Dockerfile", "docker-compose.yml", "zappa_settings.json"}
    assert not tops & never
    assert not [top for top in tops if top.startswith(".venv") or top.endswith(".md")]
    dev = _dev_packages() | {"_pytest"}
    assert not [top for top in tops if top.split("-", 1)[0].lower() in dev], "a development package is packed"
    assert not [name for name in names if "/tests/" in name or "/test/" in name]


def test_package_ships_bytecode_that_needs_no_writable_folder(package):
    """Service modules carry checked hash-based .pyc files, libraries unchecked ones: no compiling on a cold start."""
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        modules = [name for name in names if name.startswith("service/") and name.endswith(".py")
                   and "/__pycache__/" not in name]
        assert modules
        for module in modules + ["werkzeug/routing/map.py", "flask/app.py"]:
            folder, file = module.rsplit("/", 1)
            cached = f"{folder}/__pycache__/{file[:-3]}.cpython-{PYTHON.replace('.', '')}.pyc"
            assert cached in names, f"{module} has no bytecode"
            flags = int.from_bytes(archive.read(cached)[4:8], "little")
            assert flags == (0b11 if module.startswith("service/") else 0b01), module


#: The C library of Lambda's Python 3.12+ runtimes (Amazon Linux 2023): a compiled module needing a newer one fails
#: to import there, however well it loads on the machine that packed it.
LAMBDA_GLIBC = (2, 34)


def test_package_binaries_load_on_the_lambda_runtime(package):
    """Every compiled module is built for the runtime's Python and architecture and its C library."""
    tag = f"cpython-{PYTHON.replace('.', '')}-{SETTINGS[STAGE]['architecture']}-linux-gnu"
    with zipfile.ZipFile(package) as archive:
        binaries = [name for name in archive.namelist() if re.search(r"\.so(\.|$)", name)]
        assert any(name.startswith("nh3/") for name in binaries)
        for name in binaries:
            assert tag in name or ".abi3." in name or ".libs/" in name, name
            needs = {tuple(map(int, v)) for v in re.findall(rb"GLIBC_(\d+)\.(\d+)", archive.read(name))}
            assert max(needs, default=(2, 0)) <= LAMBDA_GLIBC, f"{name} needs glibc {max(needs)}"


def test_package_settings_are_the_stage_s(package):
    with zipfile.ZipFile(package) as archive:
        text = archive.read("zappa_settings.py").decode()
    namespace: dict = {}
    exec(compile(text, "zappa_settings.py", "exec"), namespace)  # noqa: S102 - the file Zappa generated
    assert namespace["APP_MODULE"] == "service.wsgi" and namespace["APP_FUNCTION"] == "app"
    assert namespace["DEBUG"] is False and namespace["LOG_LEVEL"] == "WARNING"
    assert namespace["ENVIRONMENT_VARIABLES"]["STORAGE_URL"] == SETTINGS[STAGE]["environment_variables"]["STORAGE_URL"]
    assert ORIGIN_SECRET not in text and "SECRET_KEY" not in text


# -- the table ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vitae_table(lambda_venv, moto_server, tmp_path_factory):
    """`flask storage init` from the deploy virtualenv creates the table the production stage names."""
    table = SETTINGS[STAGE]["environment_variables"]["STORAGE_URL"].split("://", 1)[1].split("?", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(STORAGE_URL=f"dynamodb://{table}?region={REGION}&endpoint_url={moto_server.endpoint}",
               SECRET_KEY="init-secret", VITAE_INSTANCE_PATH=str(tmp_path_factory.mktemp("instance")))
    for _ in range(2):  # safe to run again
        result = subprocess.run([str(lambda_venv / "bin" / "flask"), "--app", "service.wsgi", "storage", "init"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    return table


def test_storage_init_creates_the_table_with_keys_and_ttl(vitae_table, moto_server):
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server.endpoint)
    table = client.describe_table(TableName=vitae_table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=vitae_table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


# -- the package answering events ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstreams():
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


def _lambda_env(moto_server, upstreams) -> dict[str, str]:
    """The function's environment as Zappa and deploy.yml leave it: the stage's ``aws_environment_variables``
    and the secrets set on the function (not in the package)."""
    return {**SETTINGS[STAGE]["aws_environment_variables"], "AWS_ENDPOINT_URL_DYNAMODB": moto_server.endpoint,
            "SECRET_KEY": "lambda-secret-key-0123456789", "ORIGIN_SECRET": ORIGIN_SECRET, "SITE_URL": f"https://{SITE_HOST}",
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "4242", "TELEGRAM_API_URL": upstreams.url,
            "OUTBOX_INLINE_SECONDS": "0", "GITHUB_API_URL": upstreams.url, "BLOG_REPO": "octo/blog",
            "STATS_TOKEN": STATS_TOKEN,
            # one writer here: recorded views are folded at once, not after DynamoDB's settling seconds
            "DYNAMODB_LOG_SETTLE": "0"}


@pytest.fixture(scope="module")
def function(unzipped, runtime_libraries, vitae_table, moto_server, upstreams):
    process = LambdaProcess(unzipped, runtime_libraries, HANDLER, env=_lambda_env(moto_server, upstreams),
                            function_name=FUNCTION, probe_routes=True)
    yield process
    process.stop()


def call(function, method, path, **kwargs):
    kwargs.setdefault("origin_secret", ORIGIN_SECRET)
    kwargs.setdefault("headers", BROWSER)
    return function.invoke(function_url_event(method, path, **kwargs))


STATS_TOKEN = "lambda-stats-token"


def test_owner_stats_are_served_by_the_package(function):
    """Templates and stylesheet ship in the package; the counted view's tallies reach /api/stats on DynamoDB."""
    counted = call(function, "POST", "/api/visitors", viewer_ip="192.0.2.77",
                   body=json.dumps({"path": "/stats-probe", "referrer": "https://lobste.rs/", "query": "?a=1"}),
                   headers={**BROWSER, "content-type": "application/json"})
    assert counted["statusCode"] == 200, function.logs()
    assert function.invoke(scheduled_event(FUNCTION, FOLD_TASK))["folded"] >= 1, function.logs()
    page = call(function, "GET", "/stats")
    assert page["statusCode"] == 401 and 'name="token"' in page["body"], function.logs()
    assert call(function, "GET", "/stats/stats.css")["statusCode"] == 200
    answer = call(function, "GET", "/api/stats", query="range=today&compare=none",
                  headers={**BROWSER, "authorization": f"Bearer {STATS_TOKEN}"})
    assert answer["statusCode"] == 200, function.logs()
    tables = response_json(answer)["tables"]
    assert {"value": "/stats-probe", "count": 1} in tables["pages"]
    assert {"value": "lobste.rs", "count": 1} in tables["referrers"]


def _imported_on_load(unzipped, runtime_libraries, moto_server, upstreams, **env) -> dict:
    """What importing the entry point does in a fresh interpreter of the package, before any event."""
    probe = ("import json, sys; import service.aws_lambda; loaded = {name: name in sys.modules for name in "
             "('zappa.handler', 'service.wsgi', 'service.blog.card')}; storage = "
             "sys.modules['service.wsgi'].app.extensions["
             "'vitae.storage'] if loaded['service.wsgi'] else None; print(json.dumps({**loaded, 'client': "
             "storage is not None and storage._client is not None}))")
    environ = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": f"{unzipped}{os.pathsep}{runtime_libraries}",
               "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", **_lambda_env(moto_server, upstreams), **env}
    result = subprocess.run([str(venvs.BASE_PYTHON), "-S", "-B", "-c", probe], cwd=unzipped, env=environ,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_app_and_its_dynamodb_client_are_made_while_the_function_initialises(
        unzipped, runtime_libraries, vitae_table, moto_server, upstreams):
    on_lambda = _imported_on_load(unzipped, runtime_libraries, moto_server, upstreams,
                                  AWS_LAMBDA_FUNCTION_NAME=FUNCTION, LAMBDA_TASK_ROOT=str(unzipped))
    # the share cards' drawing is imported by the first card, not by a cold start
    assert on_lambda == {"zappa.handler": True, "service.wsgi": True, "service.blog.card": False, "client": True}
    # zappa's own command loads the module by path off Lambda: nothing of the app then
    assert _imported_on_load(unzipped, runtime_libraries, moto_server, upstreams) == {
        "zappa.handler": False, "service.wsgi": False, "service.blog.card": False, "client": False}


def test_health_answers_only_through_the_cdn(function):
    response = call(function, "GET", "/api/health")
    assert response["statusCode"] == 200, function.logs()
    assert response_json(response)["status"] == "ok" and response_json(response)["storage"] == "dynamodb"
    assert response["headers"]["Cache-Control"] == "no-store"
    direct = call(function, "GET", "/api/health", cloudfront=False)
    assert direct["statusCode"] == 403 and response_json(direct)["error"] == "forbidden"
    wrong = call(function, "GET", "/api/health", origin_secret="guessed")
    assert wrong["statusCode"] == 403


def test_absolute_urls_and_redirects_name_the_site_without_a_stage(function):
    where = response_json(call(function, "GET", "/api/probe/where"))
    assert where["external"] == f"https://{SITE_HOST}/api/probe/where"
    assert where["path"] == "/api/probe/where" and where["host_url"] == f"https://{SITE_HOST}/"
    redirect = call(function, "GET", "/api/probe/redirect")
    assert redirect["statusCode"] == 302
    assert redirect["headers"]["Location"] == f"https://{SITE_HOST}/api/probe/where"
    slash = call(function, "GET", "/api/probe/folder", query="x=1")
    assert slash["statusCode"] == 308
    assert slash["headers"]["Location"] == f"https://{SITE_HOST}/api/probe/folder/?x=1"
    assert URL_HOST not in json.dumps([where, redirect, slash])


def test_zappa_alone_would_send_visitors_to_the_function_url(unzipped, runtime_libraries, vitae_table, moto_server,
                                                             upstreams):
    """Why service.aws_lambda exists: Zappa 0.63 keeps the function URL's host for payload-2.0 events."""
    bare = LambdaProcess(unzipped, runtime_libraries, "handler.lambda_handler",
                         env=_lambda_env(moto_server, upstreams), function_name=FUNCTION, probe_routes=True)
    try:
        slash = call(bare, "GET", "/api/probe/folder")
    finally:
        bare.stop()
    assert slash["headers"]["Location"] == f"https://{URL_HOST}/api/probe/folder/"


@pytest.mark.parametrize("forwarded_for", [
    "{viewer}",  # what CloudFront sends when the visitor sent no X-Forwarded-For
    "198.51.100.66, {viewer}",  # a visitor's own header, CloudFront's entry last
    "198.51.100.66, {viewer}, {edge}",  # the function URL appending its caller, the edge
], ids=["plain", "visitor-written", "edge-appended"])
def test_client_address_is_the_viewer_cloudfront_saw(function, forwarded_for):
    viewer = "192.0.2.44"
    answer = response_json(call(function, "GET", "/api/probe/where",
                                forwarded_for=forwarded_for.format(viewer=viewer, edge=EDGE_IP)))
    assert answer["remote_addr"] == viewer
    assert answer["scheme"] == "https"


def test_counting_views_uses_dynamodb_and_tells_visitors_apart(function):
    def view(viewer, forwarded_for=None):
        response = call(function, "POST", "/api/visitors", body=json.dumps({"path": "/lambda"}),
                        headers={**BROWSER, "content-type": "application/json"}, viewer_ip=viewer,
                        forwarded_for=forwarded_for)
        assert response["statusCode"] == 200, function.logs()
        return response_json(response)

    def fold():  # what the stage's schedule does every minute
        function.invoke(scheduled_event(FUNCTION, FOLD_TASK))

    fold()
    first = view("192.0.2.10")
    assert first["counted"] is True and first["path"] == "/lambda"
    fold()
    again = view("192.0.2.10", forwarded_for="198.51.100.1, 192.0.2.10")  # a forged entry changes nothing
    assert again["page_views"] == first["page_views"] + 1
    assert again["unique_visitors"] == first["unique_visitors"] + 1  # the first view, folded
    fold()
    assert view("192.0.2.11")["unique_visitors"] == again["unique_visitors"]
    fold()
    other = view("192.0.2.11")
    assert other["unique_visitors"] == first["unique_visitors"] + 2
    read = call(function, "GET", "/api/visitors", query="path=/lambda")
    assert response_json(read)["page_views"] == other["page_views"]


def test_requests_runs_without_charset_detection_and_says_nothing(function):
    """charset_normalizer is left out (about 20 ms of a cold start); requests falls back to UTF-8, and the
    stage's PYTHONWARNINGS keeps its import-time warning out of the logs."""
    call(function, "GET", "/api/health")
    assert "character detection" not in function.logs()
    assert "Traceback" not in function.logs()


def test_blog_reads_github_through_the_package(function, upstreams):
    upstreams.script("GET", "/repos/octo/blog/issues", Reply(200, json=[ISSUE], headers={"ETag": '"v1"'}))
    response = call(function, "GET", "/api/blog")
    assert response["statusCode"] == 200, function.logs()
    posts = response_json(response)["posts"]
    assert [(post["number"], post["title"]) for post in posts] == [(7, "Hello from Lambda")]
    assert upstreams.count("GET", "/repos/octo/blog/issues") == 1


def test_a_share_card_comes_out_of_the_package_as_a_png(function, upstreams):
    """The card is drawn inside the package (no imaging library in it) and leaves base64-encoded."""
    from PIL import Image

    upstreams.script("GET", "/repos/octo/blog/issues", Reply(200, json=[ISSUE]))
    upstreams.script("GET", "/repos/octo/blog/issues/7", Reply(200, json=ISSUE))
    response = call(function, "GET", "/blog/7/card.png")
    assert response["statusCode"] == 200, function.logs()
    assert response["isBase64Encoded"] is True and response["headers"]["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response_body(response)))
    assert (image.format, image.size) == ("PNG", (1200, 630))


def test_contact_message_is_delivered_by_the_scheduled_event(function, upstreams):
    path = f"/bot{TOKEN}/sendMessage"
    upstreams.script("POST", path, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    sent = call(function, "POST", "/api/contact", headers={**BROWSER, "content-type": "application/json"},
                body=json.dumps({"name": "Ada Lovelace", "email": "ada@example.com",
                                 "message": "Hello from a function URL event"}), viewer_ip="192.0.2.77")
    assert sent["statusCode"] == 202, function.logs()
    assert upstreams.count("POST", path) == 0  # OUTBOX_INLINE_SECONDS=0: left to the schedule
    summary = function.invoke(scheduled_event(FUNCTION, OUTBOX_TASK))
    assert summary["delivered"] == 1 and summary["pending"] == 0
    [message] = upstreams.calls("POST", path)
    assert "Ada Lovelace" in message.json()["text"] and message.json()["chat_id"] in ("4242", 4242)


# -- direct invocations -------------------------------------------------------------------------------------


def _forged_schedule(**changes):
    event = scheduled_event(FUNCTION, OUTBOX_TASK)
    event.update(changes)
    return event


#: Events an AWS account allowed to call Invoke could send, each carrying a marker that must not be logged.
DIRECT_EVENTS = {
    "raw_command": lambda touch, marker: {"raw_command": f"open({str(touch)!r}, 'w').write({marker!r})"},
    "command": lambda touch, marker: {"command": OUTBOX_TASK, "note": marker},
    "manage": lambda touch, marker: {"manage": f"shell -c {marker}"},
    "s3-record": lambda touch, marker: {"Records": [{"s3": {"configurationId": marker, "bucket": {"name": "b"},
                                                            "object": {"key": "k"}}}]},
    "other-rule": lambda touch, marker: _forged_schedule(
        resources=[f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{marker}-builtins.print"]),
    "other-account": lambda touch, marker: _forged_schedule(
        account="210987654321", resources=[f"arn:aws:events:{REGION}:210987654321:rule/{FUNCTION}-{OUTBOX_TASK}"],
        id=marker),
    "schedule-with-kwargs": lambda touch, marker: _forged_schedule(kwargs={"marker": marker}),
    "url-shape-without-http": lambda touch, marker: {"version": "2.0", "rawPath": "/api/health",
                                                     "requestContext": {}, "raw_command": marker},
    "not-an-object": lambda touch, marker: [marker],
}


@pytest.fixture()
def fresh_process(unzipped, runtime_libraries, vitae_table, moto_server, upstreams):
    """A cold function answering with ``handler`` (the stage's entry point unless a test passes Zappa's own)."""
    started = []

    def start(handler=HANDLER):
        started.append(LambdaProcess(unzipped, runtime_libraries, handler, env=_lambda_env(moto_server, upstreams),
                                     function_name=FUNCTION))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def test_zappa_alone_runs_what_a_direct_invocation_sends(fresh_process, tmp_path):
    """Why the entry point refuses: Zappa's handler exec()s raw_command and runs command."""
    touched = tmp_path / "ran"
    bare = fresh_process("handler.lambda_handler")
    bare.invoke(DIRECT_EVENTS["raw_command"](touched, "zappa-ran-it"))
    assert touched.read_text() == "zappa-ran-it"
    assert "pending" in bare.invoke(DIRECT_EVENTS["command"](touched, "x"))  # the outbox task's summary


@pytest.mark.parametrize("kind", sorted(DIRECT_EVENTS))
def test_entry_point_refuses_direct_invocations_without_running_or_logging_them(fresh_process, tmp_path, kind):
    touched = tmp_path / "ran"
    marker = f"marker-{kind}-7f3a"
    function = fresh_process()
    answer = function.invoke(DIRECT_EVENTS[kind](touched, marker))
    assert answer == {"error": "refused", "message": "this function answers only its URL and its own schedule"}
    logs = function.stop()
    assert not touched.exists()
    assert "[WARNING]\trefused a direct invocation" in logs
    assert marker not in logs and "Result of" not in logs and "Traceback" not in logs


# -- the lifecycle against moto ------------------------------------------------------------------------------


def _serve_function_url_listing() -> None:
    """Give moto Lambda's ListFunctionUrlConfigs (moto 5.2.5 lacks it; `zappa update` calls it), answered
    from moto's own Lambda backend. Routes are read when the server first sees a Lambda request."""
    from moto.awslambda import urls
    from moto.awslambda.exceptions import GenericResourcNotFound
    from moto.awslambda.responses import LambdaResponse

    class Responses(LambdaResponse):
        def list_function_url_configs(self) -> str:
            name = unquote(self.path.split("?", 1)[0].rstrip("/").split("/")[-2])
            try:
                configs = [self.backend.get_function_url_config(name).to_dict()]
            except GenericResourcNotFound:
                configs = []
            return json.dumps({"FunctionUrlConfigs": configs})

    urls.url_paths[r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/urls/?$"] = Responses.dispatch


@pytest.fixture(scope="module")
def aws():
    _serve_function_url_listing()
    server = MotoServer().start()
    yield server
    server.stop()


def _client(aws, service):
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=aws.endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _assert_invoke_only_through_the_url(lam) -> None:
    """The function's policy lets ``*`` invoke only through the function URL (the deploy callback's work)."""
    policy = json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])
    public_invoke = [s for s in policy["Statement"] if s["Principal"] in ("*", {"AWS": "*"})
                     and s["Action"] == "lambda:InvokeFunction"]
    assert [s["Sid"] for s in public_invoke] == [PUBLIC_INVOKE_SID]
    # moto 5.2 keeps the parameter as given: add_permission(..., InvokedViaFunctionUrl=True)
    assert public_invoke[0].get("InvokedViaFunctionUrl") is True, public_invoke
    assert not [s for s in policy["Statement"] if s["Principal"] in ("*", {"AWS": "*"})
                and s["Action"] not in ("lambda:InvokeFunction", "lambda:InvokeFunctionUrl")]


def test_deploy_update_status_undeploy_against_the_emulator(aws, lambda_venv, tmp_path):
    iam, lam, events, s3 = (_client(aws, name) for name in ("iam", "lambda", "events", "s3"))
    # What `terraform apply` makes first: the execution role and the package bucket.
    role = iam.create_role(RoleName=f"{FUNCTION}-lambda", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    bucket = f"{FUNCTION}-zappa-123456789012"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    # What deploy.yml does to the committed, account-neutral settings (lambda_concurrency: Terraform's
    # lambda_reserved_concurrency, null when none is wanted).
    settings = json.loads(json.dumps(SETTINGS))
    settings[STAGE].update(role_arn=role, s3_bucket=bucket, aws_region=REGION, manage_roles=False,
                           lambda_concurrency=7)
    settings_file = tmp_path / "zappa_settings.json"
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    env = {"AWS_ENDPOINT_URL": aws.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION}

    def run(*args):
        result = zappa(lambda_venv, *args, STAGE, "-s", str(settings_file), cwd=ROOT, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    run("deploy")
    config = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    stage = SETTINGS[STAGE]
    assert (config["Runtime"], config["Handler"], config["Role"]) == (stage["runtime"], HANDLER, role)
    assert (config["MemorySize"], config["Timeout"]) == (stage["memory_size"], stage["timeout_seconds"])
    assert config["Architectures"] == [stage["architecture"]]
    assert lam.get_function_concurrency(FunctionName=FUNCTION).get("ReservedConcurrentExecutions") == 7
    url = lam.get_function_url_config(FunctionName=FUNCTION)
    assert url["AuthType"] == "NONE" and ".lambda-url." in url["FunctionUrl"]
    policy = json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])
    assert any(s["Action"] == "lambda:InvokeFunctionUrl" and s["Principal"] == "*" and '"NONE"' in json.dumps(s)
               for s in policy["Statement"])
    _assert_invoke_only_through_the_url(lam)
    rules = {rule["Name"]: rule for rule in events.list_rules()["Rules"]}
    schedule = rules[f"{FUNCTION}-{OUTBOX_TASK}"]
    assert schedule["ScheduleExpression"] == "rate(5 minutes)" and schedule["State"] == "ENABLED"
    [target] = events.list_targets_by_rule(Rule=schedule["Name"])["Targets"]
    assert target["Arn"].split(":")[:7] == config["FunctionArn"].split(":")[:7]
    assert not [name for name in rules if "keep-warm" in name]

    # deploy.yml sets the secrets on the function; Zappa must keep them on update.
    variables = dict(config.get("Environment", {}).get("Variables", {}), ORIGIN_SECRET=ORIGIN_SECRET)
    lam.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})
    versions_before = len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"])
    settings[STAGE]["lambda_concurrency"] = None  # the variable set back to null: the reservation goes
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    run("update")
    assert lam.get_function_concurrency(FunctionName=FUNCTION).get("ReservedConcurrentExecutions") is None
    updated = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    assert updated["Environment"]["Variables"]["ORIGIN_SECRET"] == ORIGIN_SECRET
    assert updated["CodeSha256"] != config["CodeSha256"]
    assert len(lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]) > versions_before
    assert lam.get_function_url_config(FunctionName=FUNCTION)["FunctionUrl"] == url["FunctionUrl"]
    _assert_invoke_only_through_the_url(lam)

    status = run("status")
    assert FUNCTION in status and url["FunctionUrl"].rstrip("/") in status

    run("undeploy", "--yes")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=FUNCTION)
    assert f"{FUNCTION}-{OUTBOX_TASK}" not in {rule["Name"] for rule in events.list_rules()["Rules"]}


def test_excludes_only_remove_what_lambda_never_imports():
    """Zappa applies ``exclude`` to every file name in the tree: none may match a package the app imports."""
    imported = ["flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker",
                "requests", "urllib3", "idna", "certifi", "nh3", "markdown_it", "mdurl",
                "zappa", "durationpy", "service", "handler.py", "zappa_settings.py"]
    patterns = SETTINGS[STAGE]["exclude"]
    assert not [(name, pattern) for name in imported for pattern in patterns if fnmatch.fnmatch(name, pattern)]


# -- the function policy callback ----------------------------------------------------------------------------


class _FlakyLambda:
    """A Lambda client to moto whose permission changes fail as told, and which reads the policy after each."""

    def __init__(self, client, failures: dict[tuple[str, str], list[str]]):
        self.client, self.failures, self.exceptions = client, failures, client.exceptions
        self.policies: list[list[dict]] = []

    def get_policy(self, **kwargs):
        return self.client.get_policy(**kwargs)

    def _change(self, action: str, **kwargs):
        from botocore.exceptions import ClientError

        codes = self.failures.get((action, kwargs["StatementId"]), [])
        if codes:
            raise ClientError({"Error": {"Code": codes.pop(0), "Message": "injected"}}, action)
        getattr(self.client, action)(**kwargs)
        self.policies.append(json.loads(self.client.get_policy(FunctionName=kwargs["FunctionName"])["Policy"])
                             ["Statement"])

    def add_permission(self, **kwargs):
        self._change("add_permission", **kwargs)

    def remove_permission(self, **kwargs):
        self._change("remove_permission", **kwargs)


def _public_invoke(statements: list[dict]) -> tuple[list[str], list[str]]:
    """(Sids of conditioned, Sids of open) public lambda:InvokeFunction statements."""
    public = [s for s in statements if s["Principal"] in ("*", {"AWS": "*"}) and s["Action"] == "lambda:InvokeFunction"]
    return ([s["Sid"] for s in public if s.get("InvokedViaFunctionUrl") is True],
            [s["Sid"] for s in public if s.get("InvokedViaFunctionUrl") is not True])


@pytest.fixture
def zappa_cli(aws):
    """What Zappa's post callback receives, for a function with Zappa's open statement, on moto."""
    import io
    import types
    import uuid

    iam, lam = _client(aws, "iam"), _client(aws, "lambda")
    name = f"policy-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return event\n")
    lam.create_function(FunctionName=name, Runtime=f"python{PYTHON}", Role=role, Handler="handler.lambda_handler",
                        Code={"ZipFile": code.getvalue()})
    lam.add_permission(FunctionName=name, StatementId=PUBLIC_INVOKE_SID, Action="lambda:InvokeFunction",
                       Principal="*")  # what Zappa 0.63 adds for a public function URL

    def cli(failures=None):
        flaky = _FlakyLambda(lam, failures or {})
        return flaky, types.SimpleNamespace(zappa=types.SimpleNamespace(lambda_client=flaky), lambda_name=name,
                                            use_function_url=True, function_url_config={"authorizer": "NONE"})

    return cli


def test_the_policy_callback_never_leaves_the_url_without_permission(zappa_cli):
    from service.aws_lambda import secure_function_policy

    flaky, cli = zappa_cli({("add_permission", PUBLIC_INVOKE_SID): ["TooManyRequestsException"] * 2})
    secure_function_policy(cli, first_wait=0.01)
    assert _public_invoke(flaky.policies[-1]) == ([PUBLIC_INVOKE_SID], [])
    for statements in flaky.policies:  # after every change, something lets the URL invoke the function
        assert _public_invoke(statements)[0], statements


def test_a_failed_callback_keeps_the_url_working_and_a_rerun_finishes(zappa_cli):
    from botocore.exceptions import ClientError

    from service.aws_lambda import secure_function_policy

    flaky, cli = zappa_cli({("add_permission", PUBLIC_INVOKE_SID): ["TooManyRequestsException"] * 3})
    with pytest.raises(ClientError):
        secure_function_policy(cli, attempts=3, first_wait=0.01)
    conditioned, open_sids = _public_invoke(flaky.policies[-1])
    assert conditioned and not open_sids  # the bridge statement: the URL answers, nothing else may invoke
    flaky, cli = zappa_cli()
    secure_function_policy(cli, first_wait=0.01)
    assert _public_invoke(flaky.policies[-1]) == ([PUBLIC_INVOKE_SID], [])
