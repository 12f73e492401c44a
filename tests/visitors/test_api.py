"""The visitor counter through the HTTP API: counting rules, privacy, paths, rate limit, badge, daily series."""

from __future__ import annotations

import pytest

from ..helpers import BACKENDS, BROWSER_UA, fold
from ..storagecalls import StorageCalls

BROWSER = BROWSER_UA
OTHER_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"


def view(client, path="/", ua=BROWSER, ip="203.0.113.7", view_id=None, **headers):
    body = {"path": path} if view_id is None else {"path": path, "view_id": view_id}
    return client.post("/api/visitors", json=body, headers={"User-Agent": ua, **headers},
                       environ_base={"REMOTE_ADDR": ip})


@pytest.mark.parametrize("backend", BACKENDS)
def test_views_and_unique_visitors(make_app, clock, backend):
    app = make_app(backend)
    client = app.test_client()
    first = view(client, "/blog/12")
    assert first.status_code == 200
    # page and site totals include the view at once; unique visitors come from the fold
    assert first.json == {"path": "/blog/12", "page_views": 1, "total_views": 1, "unique_visitors": 0,
                          "counted": True}
    assert first.headers["Cache-Control"] == "no-store"
    assert fold(app) == 1
    # the same visitor again that day: a view, not a new visitor
    assert view(client, "/blog/12").json["unique_visitors"] == 1
    # another page, same visitor
    other_page = view(client, "/").json
    assert other_page["page_views"] == 1 and other_page["total_views"] == 3 and other_page["unique_visitors"] == 1
    # another browser on the same IP, and another IP: new visitors
    view(client, "/", ua=OTHER_BROWSER)
    view(client, "/", ip="198.51.100.1")
    fold(app)
    assert client.get("/api/visitors").json["unique_visitors"] == 3
    # the next UTC day, the first visitor counts again
    clock.advance(86400)
    next_day = view(client, "/blog/12").json
    assert next_day["page_views"] == 3
    assert fold(app) == 1
    # reading does not count
    read = client.get("/api/visitors?path=/blog/12")
    assert read.json == {"path": "/blog/12", "page_views": 3, "total_views": 6, "unique_visitors": 4,
                         "counted": False}
    daily = client.get("/api/visitors/daily?days=2").json
    assert [(d["views"], d["unique_visitors"]) for d in daily] == [(5, 3), (1, 1)]
    assert daily[0]["date"] == "2027-01-15" and daily[1]["date"] == "2027-01-16"


def test_a_record_that_cannot_be_read_does_not_hold_up_the_fold(make_app):
    from service.storage import Hit

    app = make_app()
    client = app.test_client()
    view(client, "/a")
    app.extensions["vitae.storage"].hit(Hit(record=("views", '{"not": "a view"}')))
    view(client, "/b", ip="198.51.100.2")
    assert fold(app) == 3
    assert client.get("/api/visitors/daily?days=1").json[0] == {"date": "2027-01-15", "views": 2,
                                                                 "unique_visitors": 2}


def test_a_recorded_view_keeps_only_what_the_stats_keep(make_app):
    app = make_app()
    client = app.test_client()
    answer = client.post("/api/visitors", json={"path": "/blog/12?utm_source=News", "referrer":
                                                "https://news.example.com/item?id=42&secret=s3cr3t"},
                         headers={"User-Agent": BROWSER}, environ_base={"REMOTE_ADDR": "203.0.113.99"})
    assert answer.status_code == 200
    [(_, text)] = app.extensions["vitae.storage"].log_read("views", None, 10)
    assert "203.0.113.99" not in text and "Gecko" not in text and "rv:" not in text
    assert "s3cr3t" not in text and "item?id" not in text and "news.example.com" in text


@pytest.mark.parametrize("ua", [
    "", "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0)", "facebookexternalhit/1.1",
    "Mozilla/5.0 (Linux) Chrome-Lighthouse",
])
def test_bots_are_not_counted(client, ua):
    answer = view(client, "/", ua=ua)
    assert answer.status_code == 200 and answer.json["counted"] is False
    assert answer.json["total_views"] == 0
    assert client.get("/api/visitors").json["total_views"] == 0


@pytest.mark.parametrize("header", ["DNT", "Sec-GPC"])
def test_do_not_track_counts_the_view_but_stores_no_visitor(client, header):
    answer = view(client, "/", **{header: "1"})
    assert answer.json["counted"] is True and answer.json["page_views"] == 1
    assert fold(client.application) == 1
    assert client.get("/api/visitors").json["unique_visitors"] == 0
    assert not [r for r in client.application.extensions["vitae.storage"].export()
                if r["type"] == "value" and r["key"].startswith("visitor:")]


def test_only_a_hash_is_stored_no_ip_or_user_agent(client):
    view(client, "/", ip="203.0.113.99")
    fold(client.application)
    stored = repr(list(client.application.extensions["vitae.storage"].export()))
    # the User-Agent is reduced to its browser family and device class, never stored as sent
    assert "203.0.113.99" not in stored and "rv:128.0" not in stored and "Gecko" not in stored
    markers = [r for r in client.application.extensions["vitae.storage"].export()
               if r["type"] == "value" and r["key"].startswith("visitor:")]
    assert len(markers) == 1 and markers[0]["expires_at"] is not None


def test_spoofed_forwarded_for_does_not_create_visitors(client):
    for n in range(5):
        view(client, "/", **{"X-Forwarded-For": f"10.0.0.{n}"})
    fold(client.application)
    assert client.get("/api/visitors").json["unique_visitors"] == 1


def test_trusted_proxy_hop_gives_the_client_address(make_app):
    client = make_app(TRUSTED_PROXIES="1").test_client()
    for n in range(3):
        # the proxy appends the address it saw; anything left of it is the client's own claim
        view(client, "/", ip="127.0.0.1", **{"X-Forwarded-For": f"6.6.6.6, 198.51.100.{n}"})
    fold(client.application)
    assert client.get("/api/visitors").json["unique_visitors"] == 3
    view(client, "/", ip="127.0.0.1", **{"X-Forwarded-For": "7.7.7.7, 198.51.100.0"})
    fold(client.application)
    assert client.get("/api/visitors").json["unique_visitors"] == 3


@pytest.mark.parametrize("raw, expected", [
    ("/", "/"), ("/blog/12", "/blog/12"), ("/blog/12/", "/blog/12"), ("//blog//12", "/blog/12"),
    ("/blog/12?utm_source=x", "/blog/12"), ("/blog/12#comments", "/blog/12"), ("/index.html", "/"),
    ("/blog/index.html", "/blog"), ("/%62log", "/blog"), ("/a-b_c.d~e", "/a-b_c.d~e"),
])
def test_paths_are_normalised(client, raw, expected):
    answer = view(client, raw)
    assert answer.status_code == 200 and answer.json["path"] == expected


@pytest.mark.parametrize("raw", [
    "", "blog", "/../etc/passwd", "/blog/../admin", "/./x", "/a b", "/<script>", "/%00", "/é",
    "/" + "a" * 200, 12, None, ["/"], {"p": "/"},
])
def test_invalid_paths_are_400(client, raw):
    answer = client.post("/api/visitors", json={"path": raw}, headers={"User-Agent": BROWSER})
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_path" and answer.json["message"]
    assert client.get("/api/visitors").json["total_views"] == 0


@pytest.mark.parametrize("kwargs", [
    {"data": "not json", "content_type": "application/json"},
    {"json": ["/"]},
    {"json": {"nopath": 1}},
    {"data": "path=/", "content_type": "application/x-www-form-urlencoded"},
    {"data": "[" * 5000, "content_type": "application/json"},  # deeper than Python's parser goes
    {"data": '{"path": ' + "[" * 5000 + "]" * 5000 + "}", "content_type": "application/json"},
])
def test_bad_bodies_are_400(client, kwargs):
    answer = client.post("/api/visitors", headers={"User-Agent": BROWSER}, **kwargs)
    assert answer.status_code == 400 and answer.json["error"] in ("invalid_body", "invalid_path")


@pytest.mark.parametrize("backend", BACKENDS)
def test_visitor_rate_limit_refuses_without_counting(make_app, clock, backend):
    clock.now = 1_800_000_000.0  # a minute boundary: the window has 60 s left
    client = make_app(backend, VISITOR_RATE_LIMIT="3/minute").test_client()
    assert [view(client).status_code for _ in range(3)] == [200, 200, 200]
    clock.advance(20)
    refused = view(client)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40" and refused.json["retry_after"] == 40
    assert refused.json["error"] == "rate_limited"
    assert view(client, ip="198.51.100.5").status_code == 200  # other visitors are not affected
    assert client.get("/api/visitors").json["total_views"] == 4
    clock.advance(40)  # a new window
    assert view(client).status_code == 200


def _answer_lost_once(monkeypatch, storage) -> None:
    """The store counts the next view but its answer is lost (a timeout after the write): the app answers 503."""
    from service.storage import StorageError

    real = storage.hit

    def hit_then_lose(spec):
        real(spec)
        monkeypatch.setattr(storage, "hit", real)
        raise StorageError("Redis: Timeout reading from socket")
    monkeypatch.setattr(storage, "hit", hit_then_lose)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_view_retried_with_its_id_is_counted_once(make_app, monkeypatch, backend):
    client = make_app(backend, VISITOR_RATE_LIMIT="2/minute").test_client()
    _answer_lost_once(monkeypatch, client.application.extensions["vitae.storage"])
    view_id = "3f2b8c1e-9d4a-4b7e-a1c2-5e6f7a8b9c0d"
    lost = view(client, "/blog/12", view_id=view_id)
    assert lost.status_code == 503 and lost.json["error"]
    retried = [view(client, "/blog/12", view_id=view_id) for _ in range(3)]
    assert [r.status_code for r in retried] == [200] * 3
    # the visitor sees their one view; the retries took nothing from the rate limit either
    assert [r.json["page_views"] for r in retried] == [1, 1, 1] and retried[0].json["counted"] is True
    assert view(client, "/blog/12").json["total_views"] == 2
    # a view without an id still counts, every time
    assert view(client, "/blog/12").status_code == 429


@pytest.mark.parametrize("raw", ["", "short", "x" * 65, "has space in it 123", "<script>alert(1)</script>", 12,
                                 ["3f2b8c1e-9d4a-4b7e"], {"id": 1}, "ü" * 20])
def test_malformed_view_ids_are_400(client, raw):
    answer = view(client, view_id=raw)
    assert answer.status_code == 400 and answer.json["error"] == "invalid_view_id" and answer.json["message"]
    assert client.get("/api/visitors").json["total_views"] == 0


def test_daily_days_bounds(client):
    assert len(client.get("/api/visitors/daily").json) == 30
    assert len(client.get("/api/visitors/daily?days=365").json) == 365
    # superscript two, Arabic-Indic three, and more digits than int() converts (4,300)
    for bad in ("0", "366", "-1", "x", "1.5", "\u00b2", "\u0663", "9" * 5000, "0" * 5000 + "1"):
        answer = client.get(f"/api/visitors/daily?days={bad}")
        assert answer.status_code == 400 and answer.json["error"] == "invalid_days"


def test_badge_is_an_svg_with_the_count(client):
    for _ in range(3):
        view(client, "/projects")
    badge = client.get("/api/visitors/badge.svg?path=/projects")
    assert badge.status_code == 200 and badge.mimetype == "image/svg+xml"
    assert "max-age=300" in badge.headers["Cache-Control"]
    assert b"<svg" in badge.data and b">3</text>" in badge.data
    assert client.get("/api/visitors/badge.svg?path=/../x").status_code == 400


# -- what one anonymous request costs the store ------------------------------------------------------

#: (storage calls, keys read) at most, per backend, for an anonymous read: figures in docs/counter.md.
#: DynamoDB reads each site-wide counter as 4 shards (the default DYNAMODB_COUNTER_SHARDS).
READ_BOUND = {"sqlite": (1, 3), "redis": (1, 3), "dynamodb": (1, 9)}
DAILY_BOUND = {"sqlite": (2, 5), "redis": (2, 5), "dynamodb": (2, 17)}
#: The first request of a new UTC day also folds the finished day into the history: one read, one write.
DAILY_FOLD_BOUND = {"sqlite": (6, 7), "redis": (4, 7), "dynamodb": (4, 26)}


def cost(app, call):
    with StorageCalls(app) as measured:
        answer = call()
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return measured


@pytest.mark.parametrize("backend", BACKENDS)
def test_anonymous_requests_cost_a_constant_few_storage_calls(make_app, clock, backend):
    app = make_app(backend, VISITOR_RATE_LIMIT="off")
    client = app.test_client()
    for day, views in enumerate((3, 1, 2)):  # 2027-01-15, -16, -17
        for n in range(views):
            view(client, "/", ip=f"198.51.100.{n}")
        fold(app)
        if day < 2:
            clock.advance(86400)
    client.get("/api/visitors/daily?days=365")  # the history is built once
    expected = {"2027-01-15": (3, 3), "2027-01-16": (1, 1), "2027-01-17": (2, 2)}
    for query in ("days=1", "days=30", "days=365", "days=365&x=1", "days=365&days=2&junk=" + "x" * 500):
        measured = cost(app, lambda q=query: client.get(f"/api/visitors/daily?{q}"))
        assert measured.calls <= DAILY_BOUND[backend][0] and measured.items <= DAILY_BOUND[backend][1], query
        assert not any(measured.consistent[1:]), "display reads of counters are eventually consistent"
    series = client.get("/api/visitors/daily?days=365").json
    assert len(series) == 365 and series[-1]["date"] == "2027-01-17"
    assert {d["date"]: (d["views"], d["unique_visitors"]) for d in series if d["views"]} == expected
    for url in ("/api/visitors?path=/" + "a/" * 90, "/api/visitors/badge.svg?path=/", "/api/health"):
        measured = cost(app, lambda u=url: client.get(u))
        assert measured.calls <= READ_BOUND[backend][0] and measured.items <= READ_BOUND[backend][1], url

    # a new day: one request folds 2027-01-16 (now final) into the history, the next ones are back to the bound
    clock.advance(86400)
    view(client, "/", ip="203.0.113.50")
    fold(app)
    measured = cost(app, lambda: client.get("/api/visitors/daily?days=365"))
    assert measured.calls <= DAILY_FOLD_BOUND[backend][0] and measured.items <= DAILY_FOLD_BOUND[backend][1]
    measured = cost(app, lambda: client.get("/api/visitors/daily?days=365"))
    assert measured.calls <= DAILY_BOUND[backend][0] and measured.items <= DAILY_BOUND[backend][1]
    series = client.get("/api/visitors/daily?days=4").json
    assert [(d["date"], d["views"]) for d in series] == [("2027-01-15", 3), ("2027-01-16", 1), ("2027-01-17", 2),
                                                         ("2027-01-18", 1)]
