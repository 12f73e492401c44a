"""Read-only share links: made and revoked by the signed-in owner (the page) or `flask stats share`, several at
once, stored as hashes; what a link's holder sees and cannot do; guessing is rate-limited."""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest

from service.stats import sharing

from ..helpers import BACKENDS, BROWSER, fold, run_threads

TOKEN = "correct horse battery staple"
SAME_SITE = {"Origin": "http://localhost"}
SITE = "https://me.example"


def signed_in(app):
    client = app.test_client()
    assert client.post("/stats/login", data={"token": TOKEN}, headers=SAME_SITE).status_code == 303
    return client


def create(owner, label="") -> str:
    """Make a link on the page; the path it opens."""
    answer = owner.post("/stats/shares", data={"label": label}, headers=SAME_SITE)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "private, no-store"
    link = re.search(r'<code id="new-share-link">([^<]+)</code>', answer.get_data(as_text=True))[1]
    site = owner.application.config["SITE_URL"]
    assert link.startswith(f"{site}/stats/share/")  # the site's own address, from SITE_URL
    return link.removeprefix(site)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_owner_shares_several_links_and_revokes_one(make_app, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, SITE_URL=SITE)
    owner = signed_in(app)
    app.test_client().post("/api/visitors", json={"path": "/blog/7"}, headers=BROWSER)  # a visitor
    fold(app)
    first, second = create(owner, "for <b>Ann</b>"), create(owner, "team")
    assert len(first.removeprefix("/stats/share/")) == 32  # 192 bits
    page = owner.get("/stats").get_data(as_text=True)
    assert "for &lt;b&gt;Ann&lt;/b&gt;" in page and "team" in page and first not in page  # shown once only

    stranger = app.test_client()
    shared = stranger.get(first + "?range=30d")
    html = shared.get_data(as_text=True)
    assert shared.status_code == 200 and shared.headers["Cache-Control"] == "private, no-store"
    assert "/blog/7" in html and f'href="{first}?range=7d' in html and f'action="{first}"' in html
    for owner_only in ("/stats/counting", "/stats/logout", "/stats/shares", ".csv", "Share links", "team"):
        assert owner_only not in html, owner_only
    assert stranger.get_cookie("vitae_stats") is None and stranger.get_cookie("vitae_ignore") is None

    ids = [link.id for link in sharing.links(app.extensions["vitae.storage"])]
    assert owner.post(f"/stats/shares/{ids[0]}/revoke", headers=SAME_SITE).status_code == 303
    assert stranger.get(first).status_code == 404 and stranger.get(second).status_code == 200
    assert owner.post(f"/stats/shares/{ids[0]}/revoke", headers=SAME_SITE).status_code == 404
    stored = repr(list(app.extensions["vitae.storage"].export()))
    assert second.removeprefix("/stats/share/") not in stored


def test_only_the_signed_in_owner_changes_links(make_app):
    app = make_app(STATS_TOKEN=TOKEN, STATS_PUBLIC="true")
    owner = signed_in(app)
    path = create(owner)
    link_id = sharing.links(app.extensions["vitae.storage"])[0].id
    for client in (app.test_client(), app.test_client()):  # a public reader; a link's holder
        client.get(path)
        assert client.post("/stats/shares", data={"label": "x"}, headers=SAME_SITE).status_code == 401
        assert client.post(f"/stats/shares/{link_id}/revoke", headers=SAME_SITE).status_code == 401
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert owner.post("/stats/shares", headers=headers).status_code == 403
        assert owner.post(f"/stats/shares/{link_id}/revoke", headers=headers).status_code == 403
    assert len(sharing.links(app.extensions["vitae.storage"])) == 1
    assert "Share links" not in app.test_client().get("/stats").get_data(as_text=True)  # the public page


def test_guessing_links_takes_the_sign_in_limit(make_app):
    app = make_app(STATS_TOKEN=TOKEN, STATS_LOGIN_RATE_LIMIT="3/hour")
    path = create(signed_in(app))
    visitor = app.test_client()
    for _ in range(5):  # a right link gives its attempt back
        assert visitor.get(path).status_code == 200
    wrong = ["/stats/share/" + "A" * 32, "/stats/share/short", "/stats/share/" + "x" * 5000]
    assert [visitor.get(p).status_code for p in wrong] == [404, 404, 404]
    refused = visitor.get("/stats/share/" + "B" * 32)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert visitor.get(path).status_code == 429  # the window is full: nothing is compared
    other = app.test_client()
    assert other.get(path, environ_base={"REMOTE_ADDR": "198.51.100.4"}).status_code == 200


def test_links_are_capped_and_labels_cleaned(make_app):
    app = make_app(STATS_TOKEN=TOKEN)
    owner = signed_in(app)
    create(owner, "a\u202eb\x00c\u200bd " + "x" * 100)
    assert sharing.links(app.extensions["vitae.storage"])[0].label == "a b c d " + "x" * 52
    for _ in range(sharing.MAX_LINKS - 1):
        create(owner)
    refused = owner.post("/stats/shares", headers=SAME_SITE)
    assert refused.status_code == 400 and refused.json["error"] == "too_many_links"


@pytest.mark.parametrize("backend", BACKENDS)
def test_links_made_at_once_are_all_kept(make_app, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN)
    storage, made = app.extensions["vitae.storage"], []

    def make(n):
        made.append(sharing.create(storage, 1_800_000_000.0 + n, f"link {n}")[1])
    run_threads([threading.Thread(target=make, args=(n,)) for n in range(8)], timeout=60)
    assert len(made) == 8 and sorted(link.label for link in sharing.links(storage)) == [f"link {n}" for n in range(8)]
    assert all(sharing.find(storage, secret) for secret in made)
    assert storage.get(sharing.LOCK_KEY) is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_flask_stats_share_create_list_revoke(make_app, backend):
    app = make_app(backend, STATS_TOKEN=TOKEN, SITE_URL=SITE)
    runner = app.test_cli_runner()
    made = runner.invoke(args=["stats", "share", "create", "--label", "board"])
    assert made.exit_code == 0, made.output
    url, link_id = re.fullmatch(rf"({SITE}/stats/share/[A-Za-z0-9_-]{{32}})  \(id ([a-f0-9]{{8}})\)\n",
                                made.output).groups()
    listed = runner.invoke(args=["stats", "share", "list"]).output
    assert re.fullmatch(rf"{link_id}  \d{{4}}-\d\d-\d\d \d\d:\d\d UTC  board\n", listed) and url not in listed
    client = app.test_client()
    assert client.get(url.removeprefix(SITE)).status_code == 200
    assert runner.invoke(args=["stats", "share", "revoke", link_id]).exit_code == 0
    assert client.get(url.removeprefix(SITE)).status_code == 404
    gone = runner.invoke(args=["stats", "share", "revoke", link_id])
    assert gone.exit_code == 1 and "no share link with that id" in gone.output
    assert runner.invoke(args=["stats", "share", "list"]).output == "no share links\n"


def test_links_do_not_open_stats_that_are_not_served(make_app):
    app = make_app(STATS_TOKEN=TOKEN)
    path = create(signed_in(app))
    app.config["STATS_TOKEN"] = ""
    assert app.test_client().get(path).status_code == 404


def test_a_links_secret_never_reaches_a_log_line(make_app, caplog, capsys):
    app = make_app(STATS_TOKEN=TOKEN)
    path = create(signed_in(app))
    secret = path.removeprefix("/stats/share/")
    with app.test_request_context(path + "?range=7d"):  # the app's JSON lines carry the request's path
        logging.getLogger("service.anything").warning("while answering %s", path)
    # gunicorn's access log line (gunicorn.conf.py) is one logged JSON text holding the path
    logging.getLogger("gunicorn.access").info(json.dumps({"method": "GET", "path": path, "status": 200}))
    # paths a hand or a tool mangled answer 404 but hold the live secret all the same
    for mangled in (f"/stats//share/{secret}", f"/stats/share/../share/{secret}", f"/stats/./share/{secret}"):
        logging.getLogger("gunicorn.access").info(json.dumps({"method": "GET", "path": mangled, "status": 404}))
    out = capsys.readouterr().out
    assert "/stats/share/<hidden>" in caplog.text and '"path": "/stats/share/<hidden>"' in out
    assert "/stats//share/<hidden>" in out
    assert secret not in caplog.text + out
