"""The owner's stats: what a counted view adds, bounded input, access to /stats and /api/stats, the digest
and alerts (through the outbox to a fake Telegram on loopback)."""

from __future__ import annotations

import pytest

from service.core.deps import current
from service.outbox.delivery import QUEUE
from service.storage import DONE, OTHER, PENDING

from ..fakes import Reply
from ..helpers import BACKENDS, fold

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
TOKEN = "correct horse battery staple"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def view(client, path="/", ip="203.0.113.7", ua=FIREFOX, headers=None, **body):
    return client.post("/api/visitors", json={"path": path, **body}, headers={"User-Agent": ua, **(headers or {})},
                       environ_base={"REMOTE_ADDR": ip})


def tables(client):
    fold(client.application)  # as the worker or the schedule does within seconds
    answer = client.get("/api/stats?range=today", headers=BEARER)
    assert answer.status_code == 200, answer.json
    return {name: {row["value"]: row["count"] for row in rows} for name, rows in answer.json["tables"].items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_counted_views_fill_every_table(make_app, backend):
    # behind a trusted proxy (TRUSTED_PROXIES), which sets the country header
    client = make_app(backend, STATS_TOKEN=TOKEN, SITE_URL="https://me.example", TRUSTED_PROXIES="1").test_client()
    view(client, "/blog/1", referrer="https://www.google.com/search?q=x", query="?utm_source=News&utm_campaign=Launch",
         headers={"CloudFront-Viewer-Country": "DE"})
    view(client, "/", referrer="https://me.example/blog/1")  # the same visitor moving on: a view, not a visitor
    view(client, "/", ip="198.51.100.2", ua=IPHONE, referrer="https://me.example/")  # own host: direct
    view(client, "/", ip="198.51.100.3", headers={"DNT": "1"})  # opted out: a view, no visitor breakdown
    found = tables(client)
    assert found["pages"] == {"/": 3, "/blog/1": 1}
    assert found["referrers"] == {"google.com": 1, "(direct)": 1}
    assert found["sources"] == {"news": 1} and found["campaigns"] == {"launch": 1} and found["mediums"] == {}
    assert found["browsers"] == {"Firefox": 1, "Safari": 1}
    assert found["devices"] == {"desktop": 1, "mobile": 1}
    assert found["countries"] == {"DE": 1, "(unknown)": 1}
    totals = client.get("/api/stats?range=today", headers=BEARER).json["totals"]
    assert totals == {"views": 4, "visitors": 2}


def test_junk_is_cut_down_never_stored_raw(make_app):
    app = make_app(STATS_TOKEN=TOKEN, STATS_DAILY_VALUES="10")
    client = app.test_client()
    junk_ua = "Mozilla/5.0 " + "<script>" * 2000
    answer = view(client, "/", ua=junk_ua, referrer="javascript:alert(1)" + "x" * 100_00,
                  query="?utm_source=" + "%3Cb%3E" * 100 + "&utm_medium=" + "m" * 1000 + "&utm_campaign=" + "c" * 5000,
                  headers={"CloudFront-Viewer-Country": "<script>"})
    assert answer.status_code == 200
    for n in range(15):  # more referrers than a day keeps
        view(client, "/", ip=f"198.51.100.{n}", referrer=f"https://junk{n}.example/")
    found = tables(client)
    assert found["referrers"][OTHER] == 6 and len(found["referrers"]) == 11  # 10 kept + (other)
    assert found["sources"] == {"b" * 64: 1} and found["mediums"] == {"m" * 64: 1}
    assert found["countries"] == {"(unknown)": 16}
    stored = repr(list(app.extensions["vitae.storage"].export()))
    assert "<script>" not in stored and "javascript" not in stored and "m" * 65 not in stored


@pytest.mark.parametrize("backend", BACKENDS)
def test_referrer_spam_filling_the_day_cannot_hide_a_real_referrer(make_app, backend):
    client = make_app(backend, STATS_TOKEN=TOKEN, STATS_DAILY_VALUES="10", VISITOR_RATE_LIMIT="off").test_client()
    for ip in ("198.51.100.200", "198.51.100.201"):
        view(client, ip=ip, referrer="https://news.ycombinator.com/item?id=1")
    for n in range(11):  # spam: one visitor each (distinct User-Agents), more values than a day keeps
        view(client, ua=f"{FIREFOX} spam/{n}", referrer=f"https://spam{n}.example/")
    view(client, ip="198.51.100.202", referrer="https://lobste.rs/s/abc")  # a real referrer after the flood
    found = tables(client)["referrers"]
    assert found["news.ycombinator.com"] == 2 and found["lobste.rs"] == 1
    assert len(found) == 11 and sum(found.values()) == 14


def _listed_spam_hosts(count: int) -> list[str]:
    from service.stats.counting import SPAM_LIST

    with open(SPAM_LIST, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")][:count]


def test_the_spam_list_is_vendored_with_its_source():
    import re

    from service.stats.counting import SPAM_LIST

    with open(SPAM_LIST, encoding="utf-8") as handle:
        header = "".join(line for line in handle if line.startswith("#"))
    assert "github.com/matomo-org/referrer-spam-list" in header and "public domain" in header
    assert re.search(r"commit [0-9a-f]{40} of \d{4}-\d{2}-\d{2}", header)
    assert len(_listed_spam_hosts(100_000)) > 1000


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_view_from_a_listed_spam_host_is_never_counted_or_tallied(make_app, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN)
    client = app.test_client()
    hosts = _listed_spam_hosts(3)
    for n, host in enumerate(hosts):
        for referrer in (f"https://{host}/", f"http://www.{host}/page?x=1", f"https://sub.{host}/"):
            answer = view(client, ip=f"198.51.100.{n}", referrer=referrer)
            assert answer.status_code == 200 and answer.json["counted"] is False, referrer
    assert view(client, referrer="https://example.org/").json["counted"] is True
    found = tables(client)
    assert found["referrers"] == {"example.org": 1} and found["pages"] == {"/": 1}
    stored = repr(list(app.extensions["vitae.storage"].export()))
    assert not any(host in stored for host in hosts)


def test_a_query_with_many_fields_is_read_up_to_the_fiftieth(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    many = "?utm_source=first&" + "x=1&" * 48 + "utm_medium=last&" + "y=2&" * 500  # utm_medium is the 50th field
    assert view(client, "/", query=many).status_code == 200
    assert view(client, "/", ip="198.51.100.9", query="?" + "x=1&" * 50 + "utm_campaign=late").status_code == 200
    found = tables(client)
    assert found["sources"] == {"first": 1} and found["mediums"] == {"last": 1} and found["campaigns"] == {}


@pytest.mark.parametrize("body", [{"referrer": 12}, {"referrer": ["x"]}, {"query": {"utm_source": "x"}}])
def test_malformed_stats_fields_are_refused_with_400(client, body):
    answer = view(client, "/", **body)
    assert answer.status_code == 400 and answer.json["error"] in ("invalid_referrer", "invalid_query")


@pytest.mark.parametrize("query", ["range=year", "from=2027-01-01&to=2026-12-01", "from=2025-12-01&to=2026-12-31",
                                   "compare=yes", "range=365d&compare=Previous",
                                   "from=2027-13-01", "from=x" * 400, "to=2099-01-01&from=2099-01-01",
                                   "from=2020-01-01&to=2020-01-02", "dimension=bogus&value=x"])
def test_bad_ranges_and_filters_are_refused_with_400(make_app, query):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    answer = client.get(f"/api/stats?{query}", headers=BEARER)
    assert answer.status_code == 400 and set(answer.json) == {"error", "message"}


def test_a_filter_narrows_the_series_to_one_value(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    view(client, "/a")
    view(client, "/a")
    view(client, "/b")
    fold(client.application)
    answer = client.get("/api/stats?range=7d&dimension=pages&value=/a", headers=BEARER).json
    assert answer["totals"]["views"] == 2 and len(answer["daily"]) == 7
    assert answer["filter"] == {"dimension": "pages", "value": "/a"}


def test_private_by_default_wrong_tokens_get_401_and_count_towards_429(make_app):
    client = make_app(STATS_TOKEN=TOKEN, STATS_LOGIN_RATE_LIMIT="3/hour").test_client()
    assert client.get("/api/stats").status_code == 401  # no token at all: not an attempt
    for _ in range(2):
        assert client.get("/api/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/stats/login", data={"token": "nope"}).status_code == 401
    assert client.get("/api/stats", headers={"Authorization": "Bearer wrong"}).status_code == 429
    # the window is full: even the right token is not compared until it ends
    refused = client.get("/api/stats", headers=BEARER)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert client.application.test_client().get("/api/stats", headers=BEARER,
                                                 environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code == 200


def test_owner_cookie_is_scoped_signed_and_short_lived(make_app):
    client = make_app(STATS_TOKEN=TOKEN, STATS_SESSION_SECONDS="600").test_client()
    page = client.get("/stats")
    assert page.status_code == 401 and b'name="token"' in page.data
    assert page.headers["Cache-Control"] == "private, no-store"
    login = client.post("/stats/login", data={"token": TOKEN})
    assert login.status_code == 303
    cookie = login.headers["Set-Cookie"]
    for attribute in ("Path=/stats", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=600"):
        assert attribute in cookie
    shown = client.get("/stats?range=30d")
    assert shown.status_code == 200 and b"Top pages" in shown.data
    assert shown.headers["Cache-Control"] == "private, no-store"
    assert "script-src 'self'" in shown.headers["Content-Security-Policy"]
    assert b"<script" not in shown.data and b"style=" not in shown.data
    # a forged cookie is not the owner
    other = make_app(STATS_TOKEN=TOKEN).test_client()
    other.set_cookie("vitae_stats", cookie.split(";")[0].split("=", 1)[1] + "x", path="/stats")
    assert other.get("/stats").status_code == 401
    # the visitor site and API stay cookieless
    assert "Set-Cookie" not in view(client, "/").headers


def test_the_stylesheets_are_served_even_without_the_site(make_app, tmp_path):
    client = make_app(STATS_PUBLIC="true", SITE_DIR=str(tmp_path / "nowhere")).test_client()
    own = client.get("/stats/stats.css")
    assert own.status_code == 200 and own.mimetype == "text/css" and b":where(:root)" in own.data
    site = client.get("/stats/site.css")  # the source stylesheet of a checkout, or an empty one
    assert site.status_code == 200 and site.mimetype == "text/css"


def test_the_page_needs_the_origin_secret_like_the_api(make_app):
    client = make_app(STATS_PUBLIC="true", ORIGIN_SECRET="from-the-cdn").test_client()
    assert client.get("/stats").status_code == 403
    assert client.get("/stats", headers={"X-Origin-Verify": "from-the-cdn"}).status_code == 200
    assert client.get("/api/stats").status_code == 403
    rotating = make_app(STATS_PUBLIC="true", ORIGIN_SECRET="new-one", ORIGIN_SECRET_PREVIOUS="from-the-cdn")
    for sent in ("new-one", "from-the-cdn"):  # during a rotation the page takes both, as the API does
        assert rotating.test_client().get("/stats", headers={"X-Origin-Verify": sent}).status_code == 200
    assert rotating.test_client().get("/stats", headers={"X-Origin-Verify": "guess"}).status_code == 403


def test_stats_are_not_served_without_a_token_and_public_when_asked(make_app):
    assert make_app().test_client().get("/api/stats").status_code == 404
    assert make_app().test_client().get("/stats").status_code == 404
    public = make_app(STATS_PUBLIC="true").test_client()
    view(public, "/x")
    answer = public.get("/api/stats?range=today")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=60"
    assert public.get("/stats").status_code == 200


def test_csv_per_table_and_the_terminal_tables(make_app):
    app = make_app(STATS_TOKEN=TOKEN)
    client = app.test_client()
    view(client, "/blog/7", referrer="https://=cmd.example/")
    fold(app)
    csv = client.get("/api/stats.csv?table=pages&range=today", headers=BEARER)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.decode().splitlines() == ["value,views,previous views,change views", "/blog/7,1,0,1"]
    alone = client.get("/api/stats.csv?table=pages&range=today&compare=none", headers=BEARER)
    assert alone.data.decode().splitlines() == ["value,views", "/blog/7,1"]
    assert client.get("/api/stats.csv?table=nope", headers=BEARER).status_code == 404
    result = app.test_cli_runner().invoke(args=["stats", "show", "--range", "today"])
    assert result.exit_code == 0, result.output
    assert "1 views" in result.output and "/blog/7" in result.output and "Firefox" in result.output
    bad = app.test_cli_runner().invoke(args=["stats", "show", "--from", "2000-01-01"])
    assert bad.exit_code == 2


# -- Telegram: digest and alerts ------------------------------------------------------------------

PATH = "/botT0KEN/sendMessage"


def telegram(make_app, upstream, backend="sqlite", **settings):
    upstream.script("POST", PATH, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    return make_app(backend, **{"TELEGRAM_BOT_TOKEN": "T0KEN", "TELEGRAM_CHAT_ID": "1001",
                                "TELEGRAM_API_URL": upstream.url, "OUTBOX_INLINE_SECONDS": "0", "STATS_TOKEN": TOKEN,
                                "STATS_DIGEST": "true", "STATS_ALERTS": "true", **settings})


@pytest.mark.parametrize("backend", BACKENDS)
def test_weekly_digest_is_queued_once_per_week_and_delivered(make_app, upstream, clock, backend):
    from service.outbox import delivery
    from service.stats import notify

    # 2027-01-15 08:00 is a Friday: the digest is set for Fridays at 08:00 UTC, so it is due
    app = telegram(make_app, upstream, backend, STATS_DIGEST_DAY="fri", STATS_DIGEST_HOUR="8")
    client = app.test_client()
    clock.advance(-86400)  # a view the day before, inside the digest's week
    view(client, "/blog/1", referrer="https://lobste.rs/")
    fold(app)
    clock.advance(86400)
    with app.app_context():
        assert notify.send_digest(current()) is True
        notify.state(current()).sent_period = None  # as if another worker process: the storage claim still holds
        assert notify.send_digest(current()) is False
        assert delivery.deliver(current())["delivered"] == 1
        notify.state(current()).sent_period = None
        clock.advance(3600)  # past the digest's hour: a worker starting now sends nothing
        assert notify.send_digest(current()) is False
    text = upstream.calls("POST", PATH)[0].json()["text"]
    assert "Views: 1 (new on the week before)" in text and "/blog/1" in text and "lobste.rs" in text
    assert "Contact messages received: 0" in text


def test_nothing_is_sent_when_switched_off_or_telegram_is_missing(make_app, upstream):
    from service.stats import notify

    apps = (make_app(STATS_TOKEN=TOKEN, STATS_DIGEST="true", STATS_ALERTS="true"),  # no Telegram
            telegram(make_app, upstream, STATS_DIGEST="false", STATS_ALERTS="false"),  # switched off
            make_app(STATS_TOKEN=TOKEN, TELEGRAM_BOT_TOKEN="T0KEN", TELEGRAM_CHAT_ID="1001"))  # off by default
    for app in apps:
        with app.app_context():
            assert notify.send_digest(current()) is False
            assert notify.alert(current(), "dead_letter", "x") is False
            assert app.extensions["vitae.storage"].queue_counts(QUEUE)[PENDING] == 0


def test_alerts_are_deduplicated_per_interval_and_a_dead_letter_raises_one(make_app, upstream):
    from service.outbox import delivery
    from service.stats import notify

    app = telegram(make_app, upstream, STATS_ALERT_INTERVAL="3600", STATS_DIGEST="false")
    upstream.script("POST", PATH, Reply(400, json={"ok": False, "description": "Bad Request: chat not found"}),
                    Reply(200, json={"ok": True, "result": {"message_id": 2}}))
    storage = app.extensions["vitae.storage"]
    with app.app_context():
        delivery.accept(current(), {"name": "A", "email": "a@example.com", "message": "hi"}, at=1_800_000_000.0)
        summary = delivery.deliver(current())
        assert summary["dead"] == 1 and summary["delivered"] == 1  # the message died; its alert went out
        assert notify.alert(current(), "dead_letter", "again") is False  # within the interval
        assert notify.alert(current(), "github_rate_limit", "spent") is True  # another kind
    alert = upstream.calls("POST", PATH)[1].json()["text"]
    assert "dead-lettered" in alert and "chat not found" in alert
    assert storage.queue_counts(QUEUE)[DONE] == 1


def test_storage_errors_over_the_threshold_raise_one_alert(make_app, upstream):
    from service.stats import notify

    app = telegram(make_app, upstream, STATS_ALERT_STORAGE_ERRORS="3", STATS_DIGEST="false")
    storage = app.extensions["vitae.storage"]
    with app.app_context():
        for _ in range(2):
            notify.storage_failed(current())
        assert storage.queue_counts(QUEUE)[PENDING] == 0  # under the threshold
        notify.storage_failed(current())
        assert storage.queue_counts(QUEUE)[PENDING] == 1
        for _ in range(3):  # over it again, within the interval: no second alert
            notify.storage_failed(current())
        assert storage.queue_counts(QUEUE)[PENDING] == 1
    assert "storage errors" in storage.items(QUEUE)[0].payload["html"]


def test_spotify_needing_reauthorisation_raises_an_alert(make_app, upstream, clock):
    app = telegram(make_app, upstream, STATS_DIGEST="false", SPOTIFY_API_URL=f"{upstream.url}/v1",
                   SPOTIFY_ACCOUNTS_URL=upstream.url, SPOTIFY_CLIENT_ID="abc123", SPOTIFY_CLIENT_SECRET="s",
                   SPOTIFY_REFRESH_TOKEN="r")
    upstream.script("POST", "/api/token", Reply(400, json={"error": "invalid_grant"}))
    client = app.test_client()
    assert client.get("/api/spotify").json["error"] == "reauthorization_required"
    clock.advance(120)  # a later request: the alert is not repeated within STATS_ALERT_INTERVAL
    client.get("/api/spotify")
    pending = app.extensions["vitae.storage"].items(QUEUE)
    assert len(pending) == 1 and "flask spotify authorize" in pending[0].payload["html"]
