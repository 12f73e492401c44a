"""What a counted view costs on DynamoDB, in billed units, from the requests really sent to moto and the sizes
of the items they touch (`tests.storagecalls.CapacityUnits`): the figures of docs/cost.md."""

from __future__ import annotations

import uuid

import pytest

from ..helpers import BROWSER_UA, fold
from ..storagecalls import CapacityUnits

#: shards -> (write units, read units) per view, blended over 1.5 views per visitor per day, the fold
#: included: the figures of docs/cost.md (measured 2026-12-07, rounded up).
UNITS_PER_VIEW = {1: (6.0, 1.5), 4: (6.0, 4.5)}
VIEWS, VISITORS = 60, 40


@pytest.mark.parametrize("shards", sorted(UNITS_PER_VIEW))
def test_a_counted_view_costs_a_bounded_number_of_units_on_dynamodb(make_app, shards):
    app = make_app("dynamodb", DYNAMODB_COUNTER_SHARDS=str(shards))
    client = app.test_client()
    storage = app.extensions["vitae.storage"]
    with CapacityUnits(storage) as units:
        for n in range(VIEWS):  # as the site's script sends them: a view id, the referrer, the page's query
            visitor = n % VISITORS
            answer = client.post("/api/visitors", json={
                "path": f"/blog/{n % 5}", "referrer": f"https://news{n % 3}.example/item?id={n}",
                "query": "?utm_source=newsletter&utm_campaign=launch", "view_id": str(uuid.uuid4())},
                headers={"User-Agent": f"{BROWSER_UA} visitor/{visitor}", "CloudFront-Viewer-Country": "DE"},
                environ_base={"REMOTE_ADDR": f"198.51.100.{visitor}"})
            assert answer.status_code == 200 and answer.json["counted"] is True
        assert fold(app) == VIEWS
    breakdown = {operation: (int(calls), write / VIEWS, read / VIEWS)
                 for operation, (calls, write, read) in sorted(units.by_operation.items())}
    print(f"per view: {units.write / VIEWS:.2f} write units, {units.read / VIEWS:.2f} read units; {breakdown}")
    write, read = UNITS_PER_VIEW[shards]
    assert units.write / VIEWS <= write, breakdown
    assert units.read / VIEWS <= read, breakdown
