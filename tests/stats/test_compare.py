"""Comparison with the previous period, long ranges by week and month, the owner's time zone, and the
fields of /api/stats: hard numbers from views counted at known moments and folded, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from service.core.config import ConfigError, load
from service.core.deps import current
from service.stats import SETTINGS as STATS_SETTINGS
from service.stats.counting import key
from service.storage import Hit, Tally

from ..helpers import BACKENDS, fold
from ..storagecalls import StorageCalls
from .test_stats import BEARER, IPHONE, TOKEN, telegram, view

DAY = 86400


def at(clock, moment: str) -> None:
    """Set the app's clock to an ISO UTC moment such as ``2027-01-14T23:30``."""
    clock.now = dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC).timestamp()


def stats(client, query: str) -> dict:
    answer = client.get(f"/api/stats?{query}", headers=BEARER)
    assert answer.status_code == 200, answer.json
    return answer.json


def rows(data: dict, table: str) -> dict:
    return {row["value"]: (row["count"], row["comparison"]["count"] if data["comparison"] else None)
            for row in data["tables"][table]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_week_is_compared_with_the_week_before_number_by_number(make_app, clock, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, VISITOR_RATE_LIMIT="off")
    client = app.test_client()
    start = clock.now  # 2027-01-15 08:00 UTC: this week is 01-09..01-15, the week before 01-02..01-08
    at(clock, "2027-01-01T12:00")
    view(client, "/a", ip="198.51.100.1")  # before both periods: in neither
    at(clock, "2027-01-05T12:00")
    view(client, "/a", ip="198.51.100.1")
    at(clock, "2027-01-06T12:00")
    view(client, "/a", ip="198.51.100.2")
    view(client, "/b", ip="198.51.100.1", ua=IPHONE)
    at(clock, "2027-01-14T12:00")
    for n in (1, 2, 3):
        view(client, "/a", ip=f"198.51.100.{n}")
    clock.now = start
    view(client, "/c", ip="198.51.100.1")
    fold(app)
    data = stats(client, "range=7d")
    assert data["totals"] == {"views": 4, "visitors": 4}
    assert data["comparison"]["from"] == "2027-01-02" and data["comparison"]["to"] == "2027-01-08"
    assert data["comparison"]["complete"] is True
    assert data["comparison"]["totals"] == {"views": {"previous": 3, "delta": 1, "percent": 33.3},
                                            "visitors": {"previous": 3, "delta": 1, "percent": 33.3}}
    assert rows(data, "pages") == {"/a": (3, {"previous": 2, "delta": 1, "percent": 50.0}),
                                   "/c": (1, {"previous": 0, "delta": 1, "percent": None})}
    assert rows(data, "devices") == {"desktop": (4, {"previous": 2, "delta": 2, "percent": 100.0})}
    # the same days without the comparison: the same numbers, nothing compared
    alone = stats(client, "range=7d&compare=none")
    assert alone["comparison"] is None and alone["totals"] == data["totals"]
    assert all("comparison" not in row for table in alone["tables"].values() for row in table)
    # a filter is compared with the same filter
    only = stats(client, "range=7d&dimension=pages&value=/a")
    assert only["totals"]["views"] == 3 and only["comparison"]["totals"]["views"]["previous"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_comparison_is_read_in_the_same_storage_call(make_app, clock, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN)
    client = app.test_client()
    view(client, "/x")
    fold(app)
    costs = {}
    for query in ("range=30d&compare=none", "range=30d", "from=2026-12-01&to=2027-01-15"):
        with StorageCalls(app) as cost:
            stats(client, query)
        costs[query] = cost.round_trips
    assert len(set(costs.values())) == 1, costs
    if backend == "dynamodb":
        with StorageCalls(app) as cost:
            stats(client, "range=90d")
        # one per daily tally name (10 dimensions, events and their visitors, reading time and depth), both
        # periods in each
        assert cost.operations.count("Query") == 14


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_year_is_charted_by_week_and_longer_ranges_by_month(make_app, clock, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, VISITOR_RATE_LIMIT="off")
    client = app.test_client()
    start = clock.now  # Friday 2027-01-15
    for moment, ip in (("2026-01-16T10:00", 1), ("2026-03-10T10:00", 2), ("2026-03-20T10:00", 3),
                       ("2026-03-21T10:00", 4), ("2027-01-11T10:00", 5)):
        at(clock, moment)
        view(client, "/", ip=f"198.51.100.{ip}")
    clock.now = start
    fold(app)
    year = stats(client, "range=365d")
    assert year["from"] == "2026-01-16" and year["interval"] == "week" and len(year["daily"]) == 365
    weeks = year["series"]
    assert len(weeks) == 53 and sum(week["days"] for week in weeks) == 365
    assert weeks[0] == {"from": "2026-01-16", "to": "2026-01-18", "days": 3, "views": 1, "visitors": 1}
    assert weeks[-1] == {"from": "2027-01-11", "to": "2027-01-15", "days": 5, "views": 1, "visitors": 1}
    march = [week for week in weeks if week["views"] and week["from"].startswith("2026-03")]
    assert [(week["from"], week["views"]) for week in march] == [("2026-03-09", 1), ("2026-03-16", 2)]
    # the year before is mostly past the retention (400 days): compared, and said to be incomplete
    assert year["comparison"]["from"] == "2025-01-16" and year["comparison"]["complete"] is False
    months = stats(client, "from=2026-01-01&to=2027-01-15&compare=none")
    assert months["interval"] == "month" and len(months["series"]) == 13
    assert months["series"][0] == {"from": "2026-01-01", "to": "2026-01-31", "days": 31, "views": 1, "visitors": 1}
    assert months["series"][2]["views"] == 3 and months["series"][-1]["days"] == 15
    assert stats(client, "range=90d")["interval"] == "day"
    client.post("/stats/login", data={"token": TOKEN})
    page = client.get("/stats?range=365d")
    assert page.status_code == 200 and page.data.count(b'<rect class="views"') == 53
    assert b"visitors per week" in page.data
    # ranges reach back to the retention and no further
    assert client.get("/api/stats?from=2025-12-12", headers=BEARER).status_code == 200
    assert client.get("/api/stats?from=2025-12-11", headers=BEARER).status_code == 400


def test_a_short_retention_refuses_the_year(make_app):
    client = make_app(STATS_TOKEN=TOKEN, STATS_RETENTION_DAYS="30").test_client()
    answer = client.get("/api/stats?range=365d", headers=BEARER)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_range"
    assert client.get("/api/stats?range=30d", headers=BEARER).status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_long_report_is_cached_for_the_owner_too(make_app, monkeypatch, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN)
    storage = app.extensions["vitae.storage"]
    reads = []
    real = storage.daily_tallies
    monkeypatch.setattr(storage, "daily_tallies", lambda *args: reads.append(args[2:]) or real(*args))
    client = app.test_client()
    view(client, "/x")
    fold(app)
    first = stats(client, "range=365d")
    assert reads == [("2025-12-12", "2027-01-15")]  # both years in one read, none past the retention
    assert stats(client, "compare=previous&range=365d") == first and len(reads) == 1
    view(client, "/y")
    fold(app)
    assert stats(client, "range=365d")["totals"]["views"] == 1  # up to LONG_SECONDS behind
    stats(client, "range=90d")
    stats(client, "range=90d")
    assert len(reads) == 3  # up to 92 days the owner's report is always fresh


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_owners_time_zone_decides_the_day_a_view_is_counted_on(make_app, clock, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, STATS_TIMEZONE="Europe/Berlin", VISITOR_RATE_LIMIT="off")
    utc = make_app(backend, STATS_TOKEN=TOKEN, VISITOR_RATE_LIMIT="off")
    for counted in (app, utc):
        client = counted.test_client()
        at(clock, "2027-01-14T22:30")  # 23:30 in Berlin: the 14th
        view(client, "/late")
        at(clock, "2027-01-14T23:30")  # 00:30 in Berlin: the 15th; the visitor's hash has a new day's salt
        view(client, "/midnight")
        at(clock, "2027-01-15T06:00")  # the same Berlin day: the same visitor
        view(client, "/morning")
        fold(counted)
    at(clock, "2027-01-15T08:00")
    berlin = stats(app.test_client(), "range=today")
    assert berlin["from"] == "2027-01-15" and berlin["timezone"] == "Europe/Berlin"
    assert berlin["totals"] == {"views": 2, "visitors": 1}
    assert set(rows(berlin, "pages")) == {"/midnight", "/morning"}
    yesterday = stats(app.test_client(), "from=2027-01-14&to=2027-01-14")["tables"]["pages"]
    assert [row["value"] for row in yesterday] == ["/late"]
    in_utc = stats(utc.test_client(), "range=today")
    assert in_utc["timezone"] == "UTC" and set(rows(in_utc, "pages")) == {"/morning"}
    # the public daily series counts the same days
    daily = app.test_client().get("/api/visitors/daily?days=2").json
    assert [(day["date"], day["views"]) for day in daily] == [("2027-01-14", 1), ("2027-01-15", 2)]
    page = app.test_client().get("/stats?range=today")
    assert page.status_code == 401  # private: the zone shows once signed in
    signed = app.test_client()
    signed.post("/stats/login", data={"token": TOKEN})
    assert b"2027-01-15 to 2027-01-15 (Europe/Berlin)" in signed.get("/stats?range=today").data


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "/etc/localtime", "UTC+1" + "x" * 80])
def test_an_unknown_time_zone_stops_start_up(zone):
    with pytest.raises(ConfigError, match="STATS_TIMEZONE"):
        load(STATS_SETTINGS, {"STATS_TIMEZONE": zone})
    assert load(STATS_SETTINGS, {"STATS_TIMEZONE": "America/New_York"})["STATS_TIMEZONE"] == "America/New_York"


def test_zones_load_without_the_systems_zone_files():
    # Lambda's runtime and slim images may have no /usr/share/zoneinfo: the pinned tzdata package stands in
    import zoneinfo

    try:
        zoneinfo.reset_tzpath([])
        berlin = zoneinfo.ZoneInfo.no_cache("Europe/Berlin")
        assert berlin.utcoffset(dt.datetime(2027, 7, 1)) == dt.timedelta(hours=2)
        assert load(STATS_SETTINGS, {"STATS_TIMEZONE": "Asia/Kolkata"})["STATS_TIMEZONE"] == "Asia/Kolkata"
    finally:
        zoneinfo.reset_tzpath()


def test_the_digest_moment_is_the_owners_local_hour_across_daylight_saving():
    from service.stats.notify import digest_moment

    def moment(iso: str, day: str, hour: int, zone: str) -> str:
        at = dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC).timestamp()
        return digest_moment(at, day, hour, zone).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")

    assert moment("2027-01-15T12:59", "fri", 8, "America/New_York") == "2027-01-08 13:00"  # 07:59 there
    assert moment("2027-01-15T13:00", "fri", 8, "America/New_York") == "2027-01-15 13:00"
    assert moment("2027-03-15T12:00", "mon", 8, "America/New_York") == "2027-03-15 12:00"  # summer time
    assert moment("2027-01-15T08:00", "fri", 8, "UTC") == "2027-01-15 08:00"
    assert moment("2027-01-17T23:30", "mon", 0, "Europe/Berlin") == "2027-01-17 23:00"  # Monday 00:00 there


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_digest_goes_out_at_the_local_hour_with_the_local_week(make_app, upstream, clock, backend):
    from service.stats import notify

    app = telegram(make_app, upstream, backend, STATS_DIGEST_DAY="fri", STATS_DIGEST_HOUR="8",
                   STATS_TIMEZONE="America/New_York")
    client = app.test_client()
    at(clock, "2027-01-15T03:00")  # Thursday 22:00 in New York: the digest's week
    view(client, "/thursday-night")
    at(clock, "2027-01-08T04:00")  # Thursday the 7th, 23:00 there: the week before
    view(client, "/week-before", ip="198.51.100.4")
    view(client, "/week-before", ip="198.51.100.5")
    fold(app)
    at(clock, "2027-01-15T08:00")  # 03:00 in New York: not yet
    with app.app_context():
        assert notify.send_digest(current()) is False
        at(clock, "2027-01-15T13:10")  # 08:10 there
        assert notify.send_digest(current()) is True
    pending = app.extensions["vitae.storage"].items("outbox")
    text = pending[0].payload["text"]
    assert "Weekly stats 2027-01-08 to 2027-01-14" in pending[0].payload["title"]
    assert "Views: 1 (-50% on the week before)" in text and "/thursday-night" in text


HOSTILE = "=HYPERLINK(\"http://evil.example\")\x1b[2J\u202e<b>x</b>\u200b"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hostile_value_is_neutral_in_the_csv_escaped_in_the_terminal_and_the_digest(make_app, upstream, clock,
                                                                                        backend):
    from service.stats import notify

    app = telegram(make_app, upstream, backend, STATS_DIGEST_DAY="fri", STATS_DIGEST_HOUR="8")
    storage = app.extensions["vitae.storage"]
    # a value no counted view can make today (paths and hosts are cut down when counted), as a table added
    # later could hold: every way out must still show it harmlessly
    for value in (HOSTILE, "-1+2", "@SUM(A1)", "\tcmd"):
        storage.hit(Hit(tally=[Tally(key("2027-01-14", "pages"), value, 100, 3600)]))
    client = app.test_client()
    csv = client.get("/api/stats.csv?table=pages&range=7d&compare=none", headers=BEARER).data.decode()
    cells = [line.split(",")[0] for line in csv.splitlines()[1:]]
    assert all(cell.startswith(("'", '"\'')) for cell in cells), cells
    shown = app.test_cli_runner().invoke(args=["stats", "show", "--range", "7d"])
    assert shown.exit_code == 0 and "\x1b" not in shown.output and "\u202e" not in shown.output
    assert "\\u001b[2J\\u202e<b>x</b>\\u200b" in shown.output
    with app.app_context():
        title, html, text = notify.digest(storage, notify.digest_moment(clock.now, "fri", 8))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "\x1b" not in html + text and "\u202e" not in html + text and "\\u202e" in text
    client.post("/stats/login", data={"token": TOKEN})
    page = client.get("/stats?range=7d")
    assert page.status_code == 200 and b"<b>x</b>" not in page.data and b"&lt;b&gt;x&lt;/b&gt;" in page.data


def test_the_api_answers_every_field_the_page_shows(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    view(client, "/x", referrer="https://example.org/")
    fold(client.application)
    data = stats(client, "range=30d")
    assert set(data) == {"from", "to", "range", "timezone", "filter", "totals", "daily", "counts", "tables",
                         "interval", "series", "comparison", "events", "reading", "page"}
    assert set(data["comparison"]) == {"from", "to", "complete", "totals"}
    assert set(data["tables"]) == set(data["counts"]) >= {"pages", "referrers", "countries"}
    assert data["tables"]["referrers"] == [{"value": "example.org", "count": 1,
                                            "comparison": {"count": {"previous": 0, "delta": 1, "percent": None}}}]
    assert set(data["daily"][0]) == {"date", "views", "visitors"}
    assert set(data["series"][0]) == {"from", "to", "days", "views", "visitors"}
    # the page shows the same numbers, each change with an arrow and words for screen readers
    signed = client.application.test_client()
    signed.post("/stats/login", data={"token": TOKEN})
    html = signed.get("/stats?range=30d").data.decode()
    assert '<span aria-hidden="true" title="up 1 from 0">▲ +1 (new)</span>' in html
    assert '<span class="visually-hidden">up 1 from 0</span>' in html
    assert 'compare=none' in html and "compared with 2026-11-17 to 2026-12-16" in html
    off = signed.get("/stats?range=30d&compare=none").data.decode()
    assert "▲" not in off and "compare with the previous period" in off
