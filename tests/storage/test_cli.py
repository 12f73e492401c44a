"""`flask storage ...` commands, run with the app's CLI runner against real stores."""

from __future__ import annotations

import json

import pytest

from ..helpers import BACKENDS, BROWSER, fold


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_is_idempotent_and_check_answers(make_app, backend):
    runner = make_app(backend).test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["storage", "init"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(args=["storage", "check"])
    assert result.exit_code == 0 and f"storage ok ({backend})" in result.output


def test_dynamodb_init_creates_the_documented_table(make_app, moto_server):
    import boto3

    app = make_app("dynamodb")
    table = app.extensions["vitae.storage"].table
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto_server.endpoint)
    client.delete_table(TableName=table)
    assert app.test_cli_runner().invoke(args=["storage", "init"]).exit_code == 0
    description = client.describe_table(TableName=table)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in description["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"


def test_check_fails_when_storage_is_down(make_app):
    from ..servers import free_port

    runner = make_app(STORAGE_URL=f"redis://127.0.0.1:{free_port()}/0").test_cli_runner()
    result = runner.invoke(args=["storage", "check"])
    assert result.exit_code == 1 and "does not answer" in result.output


@pytest.mark.server
def test_export_then_import_through_the_cli_keeps_what_visitors_see(make_app, tmp_path):
    """The commands' file round trip, seen through the API; every pair of backends is the storage contract's."""
    src = make_app("sqlite")
    client = src.test_client()
    for n, path in enumerate(["/", "/", "/blog/1", "/cv", "/"]):
        client.post("/api/visitors", json={"path": path}, headers=BROWSER, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
    folded = src.test_cli_runner().invoke(args=["visitors", "fold"])  # an export holds what is folded
    assert folded.exit_code == 0 and folded.output == "folded 5 recorded views\n"
    before = {p: client.get(f"/api/visitors?path={p}").json for p in ("/", "/blog/1", "/cv")}
    daily_before = client.get("/api/visitors/daily?days=3").json
    dump = tmp_path / "export.jsonl"
    exported = src.test_cli_runner().invoke(args=["storage", "export", str(dump)])
    assert exported.exit_code == 0 and "exported" in exported.output
    assert all(json.loads(line)["type"] in ("counter", "value", "tally") for line in dump.read_text().splitlines())

    dst = make_app("redis")
    imported = dst.test_cli_runner().invoke(args=["storage", "import", str(dump)])
    assert imported.exit_code == 0, imported.output
    after = dst.test_client()
    assert {p: after.get(f"/api/visitors?path={p}").json for p in before} == before
    assert after.get("/api/visitors/daily?days=3").json == daily_before
    # the owner's stats came along too
    tally_keys = [f"stats:{d['date']}:{dimension}" for d in daily_before for dimension in ("pages", "browsers")]
    stats_before = src.extensions["vitae.storage"].tallies(tally_keys)
    assert dst.extensions["vitae.storage"].tallies(tally_keys) == stats_before
    assert sum(stats_before[f"stats:{daily_before[-1]['date']}:pages"].values()) == 5
    # today's visitor markers came along: the same visitor is not counted as new again
    again = after.post("/api/visitors", json={"path": "/"}, headers=BROWSER, environ_base={"REMOTE_ADDR": "192.0.2.0"})
    assert again.status_code == 200, again.json
    fold(dst)
    assert after.get("/api/visitors").json["unique_visitors"] == before["/"]["unique_visitors"]


@pytest.mark.parametrize("content, message", [
    ("not json\n", "line 1: not JSON"),
    ('{"type": "counter", "key": "a", "value": 1}\n[1, 2]\n', "line 2: not an exported record"),
    ('{"type": "mystery"}\n', "line 1: not an exported record"),
])
def test_import_refuses_bad_files_with_the_line(runner, tmp_path, content, message):
    dump = tmp_path / "bad.jsonl"
    dump.write_text(content)
    result = runner.invoke(args=["storage", "import", str(dump)])
    assert result.exit_code == 1 and message in result.output
