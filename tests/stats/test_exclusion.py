"""Views the stats leave out: the owner's browser (signing in, the switch on /stats) and STATS_IGNORE's paths
and networks; and what a stranger cannot do with either."""

from __future__ import annotations

import pytest

from service import create_app
from service.core.config import ConfigError
from service.stats.exclusion import COOKIE, ignore_rules

from ..helpers import BACKENDS, BROWSER, fold

TOKEN = "correct horse battery staple"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SAME_SITE = {"Origin": "http://localhost"}


def view(client, path="/", ip="203.0.113.7", headers=None):
    return client.post("/api/visitors", json={"path": path}, headers={**BROWSER, **(headers or {})},
                       environ_base={"REMOTE_ADDR": ip})


def totals(client) -> dict:
    fold(client.application)
    answer = client.get("/api/stats?range=today", headers=BEARER)
    pages = {row["value"]: row["count"] for row in answer.json["tables"]["pages"]}
    return {**answer.json["totals"], "pages": pages}


def flag(client) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_browser_that_signed_in_is_not_counted_until_the_switch_counts_it_again(make_app, backend):
    owner = make_app(backend, STATS_TOKEN=TOKEN).test_client()
    visitor = owner.application.test_client()
    assert view(owner).json["counted"] is True  # before signing in: a visitor like any other
    signed_in = owner.post("/stats/login", data={"token": TOKEN}, headers=SAME_SITE)
    assert signed_in.status_code == 303
    cookie = next(h for h in signed_in.headers.getlist("Set-Cookie") if h.startswith(f"{COOKIE}="))
    assert "Path=/;" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie and "HttpOnly" not in cookie
    assert "Max-Age=34560000" in cookie  # 400 days: renewed by every sign-in and the switch

    left_out = view(owner, "/blog/1")
    assert left_out.status_code == 200 and left_out.json["counted"] is False
    assert left_out.json["page_views"] == 0  # the counts as they are, this view not in them
    assert view(visitor, "/blog/1", ip="198.51.100.9").json["counted"] is True  # others still count
    page = owner.get("/stats").get_data(as_text=True)
    assert "Count this browser again" in page and "This browser is not counted" in page

    # the switch works without signing in again: sign out first
    owner.post("/stats/logout", headers=SAME_SITE)
    assert "Count this browser again" in owner.get("/stats").get_data(as_text=True)  # on the sign-in page
    switched = owner.post("/stats/counting", data={"count": "yes"}, headers=SAME_SITE)
    assert switched.status_code == 303 and flag(owner) is None
    assert view(owner, "/blog/1").json["counted"] is True
    assert "Don't count this browser" in owner.get("/stats").get_data(as_text=True)
    owner.post("/stats/counting", data={"count": "no"}, headers=SAME_SITE)
    assert flag(owner) == "1" and view(owner, "/blog/1").json["counted"] is False
    assert totals(owner) == {"views": 3, "visitors": 2, "pages": {"/": 1, "/blog/1": 2}}


def test_another_site_cannot_flip_a_visitors_switch(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = client.post("/stats/counting", data={"count": "no"}, headers=headers)
        assert refused.status_code == 403 and refused.json["error"] == "origin_not_allowed"
        assert flag(client) is None
    assert view(client).json["counted"] is True


def test_only_the_flag_itself_leaves_a_view_out(make_app):
    client = make_app(STATS_TOKEN=TOKEN).test_client()
    for value in ("0", "yes", "1 ", "11"):
        client.set_cookie(COOKIE, value)
        assert view(client).json["counted"] is True, value
    client.set_cookie(COOKIE, "1")
    assert view(client).json["counted"] is False


def test_the_switch_is_off_where_stats_are_not_served(make_app):
    client = make_app().test_client()
    assert client.post("/stats/counting", data={"count": "no"}).status_code == 404
    assert flag(client) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_stats_ignore_leaves_out_paths_and_networks(make_app, backend):
    client = make_app(backend, STATS_TOKEN=TOKEN, VISITOR_RATE_LIMIT="off",
                      STATS_IGNORE="/drafts/*, /preview 198.51.100.0/24,2001:db8::/32 192.0.2.1").test_client()
    answers = {
        ("/drafts/one", "203.0.113.7"): False, ("/drafts/a/b", "203.0.113.7"): False,
        ("/preview", "203.0.113.7"): False, ("/preview/x", "203.0.113.7"): True, ("/drafts", "203.0.113.7"): True,
        ("/", "198.51.100.200"): False, ("/", "::ffff:198.51.100.3"): False, ("/", "2001:db8::7"): False,
        ("/", "192.0.2.1"): False, ("/", "192.0.2.2"): True, ("/", "2001:db9::1"): True, ("/", "203.0.113.7"): True,
    }
    for (path, ip), counted in answers.items():
        assert view(client, path, ip=ip).json["counted"] is counted, (path, ip)
    found = totals(client)
    assert found["views"] == 5 and found["pages"] == {"/preview/x": 1, "/drafts": 1, "/": 3}


def test_stats_ignore_matches_the_client_address_behind_a_trusted_proxy(make_app):
    client = make_app(STATS_IGNORE="198.51.100.0/24", TRUSTED_PROXIES="1").test_client()
    behind = {"X-Forwarded-For": "198.51.100.5"}
    assert view(client, ip="10.0.0.2", headers=behind).json["counted"] is False
    assert view(client, ip="198.51.100.5", headers={"X-Forwarded-For": "203.0.113.9"}).json["counted"] is True


def test_no_address_is_stored_for_a_network_rule(make_app):
    app = make_app(STATS_IGNORE="198.51.100.0/24")
    client = app.test_client()
    view(client, ip="198.51.100.5")
    view(client, ip="203.0.113.77")
    fold(app)
    stored = repr(list(app.extensions["vitae.storage"].export()))
    assert "198.51.100" not in stored and "203.0.113.77" not in stored


@pytest.mark.parametrize("value", ["10.0.0.0/33", "drafts/*", "example.com", "/ok, 300.1.2.3", "/a\x01b"])
def test_a_bad_stats_ignore_stops_start_up_naming_the_entry(make_app, value):
    with pytest.raises(ConfigError) as raised:
        make_app(STATS_IGNORE=value)
    assert "STATS_IGNORE" in str(raised.value)


def test_stats_ignore_is_bounded():
    with pytest.raises(ValueError):
        ignore_rules(" ".join(f"/p{n}" for n in range(101)))
    assert ignore_rules("").paths is None and ignore_rules("").networks == ()


def test_create_app_reads_stats_ignore_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STATS_IGNORE", "fd00::/8 /x")
    app = create_app({"STORAGE_URL": f"sqlite:///{tmp_path}/v.db", "SECRET_KEY": "k"})
    rules = app.config["STATS_IGNORE"]
    assert rules.address("fd12::1") and rules.path("/x") and not rules.path("/y")
