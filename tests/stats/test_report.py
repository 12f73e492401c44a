"""What one stats report costs the store, whatever its range, and the public report's cache."""

from __future__ import annotations

import pytest

from service.core.config import Rate
from service.stats import report

from ..helpers import BACKENDS, fold
from ..storagecalls import StorageCalls
from .test_sharing import TOKEN, create, signed_in
from .test_stats import view

#: Storage round trips of a public report built afresh: the cache read, a slot of the readers' budget
#: (`report.READER_BUILDS`), the detail, the cache write (SQLite's writes are transactions: BEGIN, the
#: statements, COMMIT; DynamoDB reads the detail with one Query per daily tally name: 10 dimensions, the events
#: and their visitors, reading time and scroll depth, sent together).
FRESH = {"sqlite": 9, "redis": 4, "dynamodb": 17}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_report_costs_the_same_few_storage_calls_for_any_range(make_app, clock, backend):
    app = make_app(backend, STATS_PUBLIC="true")
    client = app.test_client()
    today = clock.now
    for back in (89, 60, 30, 6, 0):  # views across the 90 days
        clock.now = today - back * 86400
        view(client, f"/p{back}", ip=f"198.51.100.{back}")
    clock.now = today
    fold(app)  # as the worker or the schedule does within seconds
    client.get("/api/stats?range=today&dimension=pages&value=/warm")  # Redis loads the budget's script once
    costs = {}
    for name in ("today", "7d", "90d"):
        with StorageCalls(app) as cost:
            answer = client.get(f"/api/stats?range={name}")
        assert answer.status_code == 200, answer.json
        costs[name] = cost
    assert costs["90d"].round_trips == costs["7d"].round_trips == costs["today"].round_trips <= FRESH[backend]
    report = answer.json
    assert report["totals"] == {"views": 5, "visitors": 5} and len(report["daily"]) == 90
    assert [day["views"] for day in report["daily"] if day["views"]] == [1, 1, 1, 1, 1]
    assert {row["value"] for row in report["tables"]["pages"]} == {"/p89", "/p60", "/p30", "/p6", "/p0"}
    if backend == "dynamodb":  # the finding: 720 Query and 8 BatchGetItem calls for range=90d
        assert sorted(costs["90d"].operations) == ["GetItem", "PutItem"] + ["Query"] * 14 + ["UpdateItem"]
    # the same report asked again, with its parameters in another order: one read of the cached report
    filtered = "range=30d&dimension=pages&value=/p6"
    assert client.get(f"/api/stats?{filtered}").json["totals"]["views"] == 1
    with StorageCalls(app) as again:
        answer = client.get("/api/stats?value=/p6&range=30d&dimension=pages")
    assert answer.status_code == 200 and answer.json["totals"]["views"] == 1 and again.round_trips == 1


@pytest.mark.parametrize("query", ["range=90d&x=1", "range=90d&cachebuster=2", "range=7d&range=30d",
                                   "table=pages", "range=7d&table=pages"])
def test_unknown_or_repeated_parameters_are_refused_before_any_storage_call(make_app, query):
    app = make_app(STATS_PUBLIC="true")
    with StorageCalls(app) as cost:
        answer = app.test_client().get(f"/api/stats?{query}")
    assert answer.status_code == 400 and answer.json["error"] in ("unknown_parameter", "repeated_parameter")
    assert cost.calls == 0


def test_the_csv_takes_its_table_parameter_and_the_page_refuses_unknown_ones(make_app):
    client = make_app(STATS_PUBLIC="true").test_client()
    view(client, "/x")
    assert client.get("/api/stats.csv?table=pages&range=today").status_code == 200
    assert client.get("/stats?range=today&utm_source=x").status_code == 400
    assert client.get("/stats/pages.csv?range=today&table=pages").status_code == 400


def _asks(client, base: str, values, headers=None) -> list[int]:
    return [client.get(f"{base}?range=365d&dimension=pages&value=/v{n}", headers=headers).status_code for n in values]


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_asking_for_a_new_report_each_time_share_a_budget_of_built_ones(make_app, clock, monkeypatch,
                                                                               backend):
    """Another value (or range) each time misses every cache: STATS_PUBLIC's readers and share links' holders
    share a site-wide budget of built reports; reports read from the cache, and the owner's, cost it nothing."""
    monkeypatch.setattr(report, "READER_BUILDS", Rate(count=3, period=60))
    app = make_app(backend, STATS_PUBLIC="true", STATS_TOKEN=TOKEN)
    client = app.test_client()
    assert _asks(client, "/api/stats", range(4)) == [200, 200, 200, 429]
    refused = client.get("/api/stats?range=7d&dimension=pages&value=/other")
    assert refused.status_code == 429 and refused.json["error"] == "rate_limited" and refused.headers["Retry-After"]
    assert _asks(client, "/api/stats", [0, 1, 2]) == [200] * 3  # kept: read from the cache
    assert _asks(signed_in(app), "/stats", [5, 6]) == [200, 200]  # the owner's page is the owner's
    clock.advance(60)
    assert _asks(client, "/stats", [3]) == [200]  # the next minute's budget


def test_a_share_links_reports_take_the_readers_budget(make_app, monkeypatch):
    monkeypatch.setattr(report, "READER_BUILDS", Rate(count=2, period=60))
    app = make_app(STATS_TOKEN=TOKEN)
    link = create(signed_in(app))
    client = app.test_client()
    assert [client.get(f"{link}?range=7d&compare=none&dimension=pages&value=/v{n}").status_code
            for n in range(3)] == [200, 200, 429]
    assert client.get("/api/stats?range=7d", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
