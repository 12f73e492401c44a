"""Beacons (a page's events and reading) through the HTTP API: one storage step each, folded into the events,
reading and per-page tables of /api/stats on every backend; bad, hostile and unwanted beacons."""

from __future__ import annotations

import json
import uuid

import pytest

from service.core.config import rate
from service.core.ratelimit import LocalWindows

from ..helpers import BACKENDS, BROWSER_UA, fold
from ..storagecalls import CapacityUnits, StorageCalls

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
TOKEN = "beacon-stats-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def view(client, path="/", ip="203.0.113.7", ua=BROWSER_UA, **body):
    """Count a view as the site's script does; its view id."""
    view_id = str(uuid.uuid4())
    answer = client.post("/api/visitors", json={"path": path, "view_id": view_id, **body},
                         headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": ip})
    assert answer.status_code == 200, answer.json
    return view_id


def beacon(client, body, ip="203.0.113.7", ua=BROWSER_UA, content_type="text/plain;charset=UTF-8", **headers):
    """Send a beacon as navigator.sendBeacon does (a text/plain JSON body)."""
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/visitors/events", data=data, content_type=content_type,
                       headers={"User-Agent": ua, **headers}, environ_base={"REMOTE_ADDR": ip})


def report(client, query="range=today"):
    """The report without its comparison (rows then hold only their own numbers)."""
    fold(client.application)  # as the worker or the schedule does within seconds
    answer = client.get(f"/api/stats?{query}&compare=none", headers=BEARER)
    assert answer.status_code == 200, answer.json
    return answer.json


@pytest.mark.parametrize("backend", BACKENDS)
def test_events_reading_systems_and_screens_are_folded_per_page_and_day(make_app, backend):
    client = make_app(backend, STATS_TOKEN=TOKEN).test_client()
    first = view(client, "/", width=1280, referrer="https://news.example/item",
                 query="?utm_campaign=launch")
    answer = beacon(client, {"path": "/", "view_id": first, "seq": 0, "events": ["outbound:github.com", "email"],
                             "reading": {"seconds": 42, "scroll": 80}})
    assert answer.status_code == 204 and answer.data == b"" and answer.headers["Cache-Control"] == "no-store"
    # a second visitor on a phone: the same outbound link twice, a shorter reading of another page
    second = view(client, "/blog/1", ip="198.51.100.2", ua=IPHONE, width=390)
    beacon(client, {"path": "/blog/1", "view_id": second, "events": ["outbound:github.com"],
                    "reading": {"seconds": 3, "scroll": 100}}, ip="198.51.100.2", ua=IPHONE)
    beacon(client, {"path": "/blog/1", "view_id": second, "seq": 1, "events": ["outbound:github.com"]},
           ip="198.51.100.2", ua=IPHONE)
    # a third visitor who fires nothing
    view(client, "/", ip="198.51.100.3", ua=WINDOWS, width=2560)
    data = report(client)
    assert data["totals"]["visitors"] == 3
    assert data["events"] == [
        {"value": "outbound:github.com", "count": 3, "visitors": 2, "conversion": round(2 / 3, 4)},
        {"value": "email", "count": 1, "visitors": 1, "conversion": round(1 / 3, 4)}]
    # the median of histogram buckets: 42 s lies in 30-60 s, 3 s in 0-5 s (one reading: the bucket's middle)
    assert data["reading"] == [
        {"value": "/", "readings": 1, "median_seconds": 45.0,
         "scroll": {"25": 1.0, "50": 1.0, "75": 1.0, "100": 0.0}},
        {"value": "/blog/1", "readings": 1, "median_seconds": 2.5,
         "scroll": {"25": 1.0, "50": 1.0, "75": 1.0, "100": 1.0}}]
    tables = {name: {row["value"]: row["count"] for row in rows} for name, rows in data["tables"].items()}
    assert tables["systems"] == {"Linux": 1, "iOS": 1, "Windows": 1}
    assert tables["screens"] == {"laptop": 1, "phone": 1, "desktop": 1}
    assert data["page"] is None  # the breakdown comes with a page chosen
    # clicking a page: its referrers, campaigns, countries and events
    page = report(client, "range=today&dimension=pages&value=/")["page"]
    assert page == {"referrers": [{"value": "(direct)", "count": 1}, {"value": "news.example", "count": 1}],
                    "campaigns": [{"value": "launch", "count": 1}],
                    "countries": [{"value": "(unknown)", "count": 2}],
                    "events": [{"value": "email", "count": 1}, {"value": "outbound:github.com", "count": 1}]}
    other = report(client, "range=today&dimension=pages&value=/blog/1")["page"]
    assert other["events"] == [{"value": "outbound:github.com", "count": 2}] and other["campaigns"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_beacon_is_one_storage_round_trip(make_app, backend):
    app = make_app(backend)
    client = app.test_client()
    view_id = view(client)
    with StorageCalls(app) as cost:
        assert beacon(client, {"path": "/", "view_id": view_id, "events": ["email"]}).status_code == 204
    if backend == "sqlite":  # in process: one transaction holding the one insert
        assert [op for op in cost.operations if op != "SELECT"] == ["BEGIN", "INSERT", "COMMIT"], cost.operations
    else:
        assert cost.round_trips == 1
    if backend == "dynamodb":
        assert cost.operations == ["PutItem"]


def test_a_beacon_costs_one_write_unit_on_dynamodb_at_its_largest(make_app):
    app = make_app("dynamodb")
    client = app.test_client()
    view_id = view(client)
    longest = {"path": "/" + "a" * 199, "view_id": "v" * 64, "seq": 7, "events": ["e" * 48] * 8,
               "reading": {"seconds": 86400, "scroll": 100}}
    with CapacityUnits(app.extensions["vitae.storage"]) as units:
        assert beacon(client, longest).status_code == 204
        assert beacon(client, {"path": "/", "view_id": view_id, "events": ["email"]}).status_code == 204
    assert units.write == 2 and units.read == 0, units.by_operation  # 1 write unit each: the record under 1 KB


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_view_reads_once_and_a_visitor_counts_once_per_event(make_app, backend):
    client = make_app(backend, STATS_TOKEN=TOKEN).test_client()
    view_id = view(client)
    body = {"path": "/", "view_id": view_id, "events": ["cta", "cta"], "reading": {"seconds": 100, "scroll": 50}}
    beacon(client, body)
    beacon(client, {**body, "seq": 1})  # a later beacon carrying a reading: its events count, the reading not
    data = report(client)
    assert data["events"] == [{"value": "cta", "count": 4, "visitors": 1, "conversion": 1.0}]
    assert [row["readings"] for row in data["reading"]] == [1]
    assert report(client)["events"][0]["count"] == 4  # folding again changes nothing


def test_bots_and_opted_out_visitors_record_nothing(make_app):
    app = make_app(STATS_TOKEN=TOKEN)
    client = app.test_client()
    view_id = view(client)
    fold(app)
    body = {"path": "/", "view_id": view_id, "events": ["email"], "reading": {"seconds": 9, "scroll": 10}}
    for headers in ({"DNT": "1"}, {"Sec-GPC": "1"}):
        assert beacon(client, body, **headers).status_code == 204
    assert beacon(client, body, ua="Mozilla/5.0 (compatible; Googlebot/2.1)").status_code == 204
    assert beacon(client, body, ua="").status_code == 204
    assert fold(app) == 0  # nothing was recorded
    assert report(client)["events"] == [] and report(client)["reading"] == []


def test_the_owners_browser_and_ignored_paths_and_networks_record_no_beacon(make_app):
    from service.stats.exclusion import COOKIE

    app = make_app(STATS_IGNORE="/drafts/* 198.51.100.0/24")
    client = app.test_client()
    body = {"path": "/", "view_id": "v" * 20, "events": ["email"]}
    assert beacon(client, {**body, "path": "/drafts/new"}).status_code == 204
    assert beacon(client, body, ip="198.51.100.40").status_code == 204
    client.set_cookie(COOKIE, "1")
    assert beacon(client, body).status_code == 204
    assert fold(app) == 0
    client.delete_cookie(COOKIE)
    assert beacon(client, body).status_code == 204
    assert fold(app) == 1  # the same beacon from a visitor is recorded


HOSTILE = [
    (b"not json", 400, "invalid_body"),
    (b"[1, 2]", 400, "invalid_body"),
    (b'{"a":' * 5000, 413, "body_too_large"),
    ({"path": "/", "events": ["email"]}, 400, "invalid_view_id"),
    ({"path": "/", "view_id": "short", "events": ["email"]}, 400, "invalid_view_id"),
    ({"path": "/", "view_id": "v" * 20}, 400, "empty_beacon"),
    ({"path": "javascript:alert(1)", "view_id": "v" * 20, "events": ["x"]}, 400, "invalid_path"),
    ({"path": "/", "view_id": "v" * 20, "seq": 8, "events": ["x"]}, 400, "invalid_seq"),
    ({"path": "/", "view_id": "v" * 20, "seq": True, "events": ["x"]}, 400, "invalid_seq"),
    ({"path": "/", "view_id": "v" * 20, "events": "email"}, 400, "invalid_events"),
    ({"path": "/", "view_id": "v" * 20, "events": ["e"] * 9}, 400, "invalid_events"),
    ({"path": "/", "view_id": "v" * 20, "events": ["<script>alert(1)</script>"]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": ["e" * 49]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": ["=cmd|calc"]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": ["-2+3"]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": ["a\u202eb"]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": ["a\x1b[2Jb"]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "events": [["nested"]]}, 400, "invalid_event"),
    ({"path": "/", "view_id": "v" * 20, "reading": {"seconds": -1, "scroll": 0}}, 400, "invalid_reading"),
    ({"path": "/", "view_id": "v" * 20, "reading": {"seconds": 1, "scroll": 101}}, 400, "invalid_reading"),
    ({"path": "/", "view_id": "v" * 20, "reading": {"seconds": 1.5, "scroll": 1}}, 400, "invalid_reading"),
    ({"path": "/", "view_id": "v" * 20, "reading": {"seconds": 1, "scroll": 1, "x": 1}}, 400, "invalid_reading"),
    ({"path": "/", "view_id": "v" * 20, "reading": [1, 2]}, 400, "invalid_reading"),
]


@pytest.mark.parametrize(("body", "status", "code"), HOSTILE, ids=[code + str(n) for n, (_, _, code) in
                                                                  enumerate(HOSTILE)])
def test_bad_and_hostile_beacons_get_a_clear_json_error_and_record_nothing(make_app, body, status, code):
    app = make_app()
    client = app.test_client()
    answer = beacon(client, body)
    assert answer.status_code == status and answer.json["error"] == code, answer.json
    assert fold(app) == 0


def test_a_beacon_of_another_media_type_gets_415(client):
    answer = beacon(client, "path=/", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 415 and answer.json["error"] == "unsupported_media_type"


def test_a_width_that_is_not_a_viewport_width_is_refused(client):
    for width in ("1280", -1, 0, 10**6, True, 12.5):
        answer = client.post("/api/visitors", json={"path": "/", "width": width}, headers={"User-Agent": BROWSER_UA})
        assert answer.status_code == 400 and answer.json["error"] == "invalid_width", width


def test_beacons_are_rate_limited_per_address(make_app):
    app = make_app(BEACON_RATE_LIMIT="2/minute")
    client = app.test_client()
    body = {"path": "/", "view_id": "v" * 20, "events": ["email"]}
    assert [beacon(client, body).status_code for _ in range(2)] == [204, 204]
    refused = beacon(client, body)
    assert refused.status_code == 429 and refused.json["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert beacon(client, body, ip="198.51.100.9").status_code == 204  # another address
    assert fold(app) == 3


def test_the_in_memory_windows_hold_a_bounded_number_of_addresses():
    windows, limit = LocalWindows(size=3), rate("1/minute")
    assert [windows.allow(limit, subject, 60.0) for subject in "abc"] == [True] * 3
    assert windows.allow(limit, "d", 60.0) is False  # full of current windows: a new address waits
    assert windows.allow(limit, "a", 61.0) is False  # a's window is full
    assert windows.allow(limit, "d", 120.0) is True  # the next window: the ended ones are dropped
    assert len(windows._windows) == 1


def test_hostile_stored_values_are_escaped_on_the_page_in_the_csv_and_the_terminal(make_app):
    """Values that reach the tables are reduced before they are stored; these are the last lines of defence
    for any that would not be (a stored value written straight into storage here)."""
    from service.storage import Hit, Tally

    app = make_app(STATS_TOKEN=TOKEN)
    client = app.test_client()
    view(client)
    fold(app)
    storage = app.extensions["vitae.storage"]
    day = client.get("/api/stats?range=today", headers=BEARER).json["to"]
    for name, member in (("events", "=HYPERLINK(1)"), ("event-visitors", "=HYPERLINK(1)"),
                         ("events", "<b>x</b>\u202e\x1b[31m"), ("page-events", "/ <img src=x>")):
        storage.hit(Hit(tally=[Tally(f"stats:{day}:{name}", member, 100, 86400)]))
    login = client.post("/stats/login", data={"token": TOKEN}, headers={"Origin": "http://localhost"})
    assert login.status_code == 303
    page = client.get("/stats?range=today&dimension=pages&value=/").data.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "<img src=x>" not in page
    csv = client.get("/api/stats.csv?table=events&range=today&compare=none", headers=BEARER).data.decode()
    assert csv.splitlines()[0] == "value,count,visitors,conversion"
    assert "'=HYPERLINK(1),1,1,1.0" in csv.splitlines()
    reading = client.get("/api/stats.csv?table=reading&range=today", headers=BEARER).data.decode()
    assert reading.splitlines()[0] == ("value,readings,median_seconds,scroll_25,scroll_50,scroll_75,scroll_100,"
                                       "previous readings,change readings,previous median_seconds,"
                                       "change median_seconds")
    shown = app.test_cli_runner().invoke(args=["stats", "show", "--range", "today"]).output
    assert "\x1b" not in shown and "\u202e" not in shown and "\\u202e" in shown


def test_what_beacons_cost_on_dynamodb_with_their_fold(make_app):
    """The figures of docs/cost.md: 60 beacons (each with an event and a reading) of 60 views from 40 visitors,
    the request and the fold's share. Each beacon here is its visitor's first of its event that day (the worst
    case): the fold writes a visitor marker for each, besides a share of the tally items."""
    app = make_app("dynamodb", STATS_TOKEN=TOKEN)
    client = app.test_client()
    views = [(view(client, f"/blog/{n % 5}", ip=f"198.51.100.{n % 40}"), n) for n in range(60)]
    fold(app)
    with CapacityUnits(app.extensions["vitae.storage"]) as units:
        for view_id, n in views:
            assert beacon(client, {"path": f"/blog/{n % 5}", "view_id": view_id, "events": [f"goal-{n % 3}"],
                                   "reading": {"seconds": n * 7, "scroll": n % 101}},
                          ip=f"198.51.100.{n % 40}").status_code == 204
        request_units = units.write
        assert fold(app) == 60
    breakdown = {operation: (int(calls), write / 60, read / 60)
                 for operation, (calls, write, read) in sorted(units.by_operation.items())}
    print(f"per beacon: {units.write / 60:.2f} write units, {units.read / 60:.2f} read units; {breakdown}")
    assert request_units == 60  # one write unit each on the request
    assert units.write / 60 <= 2.2 and units.read / 60 <= 1.2, breakdown


def test_the_median_time_is_interpolated_in_the_bucket_holding_the_middle_reading():
    from service.stats.reading import BOUNDS, median

    assert median([0] * (len(BOUNDS) + 1)) == 0.0
    # 10 readings: 4 under 5 s, 4 in 5-10 s, 2 in 10-20 s: the 5th is the first of 5-10 s
    assert median([4, 4, 2, 0, 0, 0, 0, 0, 0]) == 6.2
    assert median([0, 0, 0, 0, 0, 0, 0, 0, 3]) == 900.0  # the open last bucket: 600 s to 1200 s


def test_the_digest_lists_the_weeks_events_escaped(make_app, clock):
    import datetime as dt

    from service.stats import notify
    from service.storage import Hit, Tally

    app = make_app(STATS_TOKEN=TOKEN)
    storage = app.extensions["vitae.storage"]
    day = (dt.datetime.fromtimestamp(clock.now, dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    storage.hit(Hit(tally=[Tally(f"stats:{day}:events", "<b>cv</b>&", 100, 86400),
                           Tally(f"stats:{day}:event-visitors", "<b>cv</b>&", 100, 86400)]))
    _, html, plain = notify.digest(storage, dt.datetime.fromtimestamp(clock.now, dt.UTC))
    assert "<code>&lt;b&gt;cv&lt;/b&gt;&amp;</code> (1 visitors)" in html and "<b>cv</b>" not in html
    assert "Top events" in plain and "<b>cv</b>&" in plain


def test_events_reading_and_a_pages_breakdown_are_compared_with_the_previous_period(make_app, clock):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    body = {"path": "/", "events": ["email"], "reading": {"seconds": 8, "scroll": 30}}
    beacon(client, {**body, "view_id": view(client)})
    clock.advance(86400)  # the next day: two visitors fire it
    for ip in ("198.51.100.1", "198.51.100.2"):
        beacon(client, {**body, "view_id": view(client, ip=ip)}, ip=ip)
    fold(client.application)
    data = client.get("/api/stats?range=today&dimension=pages&value=/", headers=BEARER).json
    email = data["events"][0]
    assert email["value"] == "email" and email["count"] == 2
    assert email["comparison"]["count"] == {"previous": 1, "delta": 1, "percent": 100.0}
    assert email["comparison"]["visitors"]["delta"] == 1
    assert data["reading"][0]["comparison"]["readings"] == {"previous": 1, "delta": 1, "percent": 100.0}
    assert data["page"]["events"][0]["comparison"]["count"]["previous"] == 1
    page = client.post("/stats/login", data={"token": TOKEN}, headers={"Origin": "http://localhost"})
    assert page.status_code == 303
    html = client.get("/stats?range=today&dimension=pages&value=/").data.decode()
    assert "visitors change" in html and "readings change" in html


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_beacon_is_counted_on_its_views_day_in_the_owners_time_zone(make_app, clock, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, STATS_TIMEZONE="Europe/Berlin")
    client = app.test_client()
    clock.now = 1800401400.0  # 2027-01-19 23:30 UTC: 00:30 on the 20th in Berlin
    beacon(client, {"path": "/", "view_id": view(client), "events": ["email"], "reading": {"seconds": 8, "scroll": 30}})
    data = report(client)
    assert data["from"] == "2027-01-20" and data["totals"]["visitors"] == 1
    assert data["events"] == [{"value": "email", "count": 1, "visitors": 1, "conversion": 1.0}]
    assert [row["value"] for row in data["reading"]] == ["/"]
    assert report(client, "from=2027-01-19&to=2027-01-19")["events"] == []


def test_an_ipv6_client_is_limited_by_its_64_whichever_address_it_takes(make_app):
    app = make_app(BEACON_RATE_LIMIT="2/minute", VISITOR_RATE_LIMIT="2/minute")
    client = app.test_client()
    body = {"path": "/", "view_id": "v" * 20, "events": ["email"]}
    assert [beacon(client, body, ip=f"2001:db8:0:7::{n}").status_code for n in (1, 2, 3)] == [204, 204, 429]
    assert beacon(client, body, ip="2001:db8:0:8::1").status_code == 204  # another /64: another subscriber
    views = [client.post("/api/visitors", json={"path": "/"}, headers={"User-Agent": BROWSER_UA},
                         environ_base={"REMOTE_ADDR": f"2001:db8:0:9:{n}::1"}).status_code for n in (1, 2, 3)]
    assert views == [200, 200, 429]
    assert beacon(client, body, ip="::ffff:198.51.100.4").status_code == 204
    assert beacon(client, body, ip="198.51.100.4").status_code == 204
    assert beacon(client, body, ip="::ffff:198.51.100.4").status_code == 429  # the same IPv4 client
