"""The app shell: settings, the JSON error shape, logs and request ids, CORS and origins, health and outages."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from flask import abort

from service import create_app
from service.core.config import ConfigError
from service.features import SETTINGS
from service.storage import ConfigurationError

from ..blog.test_posts import issue, serve
from ..contact.test_api import GOOD as CONTACT
from ..helpers import BROWSER, PROMPTLY, ROOT
from ..servers import RedisServer

# -- settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("TRUSTED_PROXIES", "two"), ("TRUSTED_PROXIES", "-1"), ("DYNAMODB_COUNTER_SHARDS", "0"),
    ("VISITOR_RATE_LIMIT", "lots"), ("VISITOR_RATE_LIMIT", "5/fortnight"), ("VISITOR_RATE_LIMIT", "5/0s"),
    ("ALLOWED_ORIGINS", "example.com"),
    ("SITE_URL", "ftp://x"), ("MAX_BODY_BYTES", "12"), ("LOG_LEVEL", "LOUD"),
])
def test_bad_settings_stop_start_up_naming_the_variable(make_app, name, value):
    with pytest.raises(ConfigError, match=name):
        make_app(**{name: value})


@pytest.mark.parametrize("url", ["mysql://localhost/x", "redis://", "dynamodb://?region=x", "sqlite:/x"])
def test_bad_storage_url_stops_start_up(make_app, url, monkeypatch):
    monkeypatch.setenv("STORAGE_URL", url)
    with pytest.raises(ConfigurationError):
        create_app({"SECRET_KEY": "k"})


@pytest.mark.parametrize("url", [
    "redis://:hunter2@localhost:notaport/0",  # the port's parser quotes the port, never the URL
    "redis://:hunter2@[::1:6379/0",  # a broken address: urllib raises before any backend is chosen
    "sqlite:///vitae.db?key=hunter2",  # a query SQLite URLs do not take
    "sqlite://hunter2@host/vitae.db",
    "dynamodb://vitae?region=eu-west-1&secret=hunter2",
    "dynamodb://vitae/hunter2",
])
def test_secret_values_are_not_echoed_in_errors(monkeypatch, url):
    monkeypatch.setenv("STORAGE_URL", url)
    with pytest.raises(ConfigurationError) as info:
        create_app({"SECRET_KEY": "k"})
    assert "malformed" in str(info.value) and "hunter2" not in str(info.value)


def test_without_secret_key_a_persistent_random_one_is_made(make_app, tmp_path):
    first = make_app(SECRET_KEY="").config["SECRET_KEY"]
    second = make_app(SECRET_KEY="").config["SECRET_KEY"]
    assert first == second and len(first) >= 32
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.read_text() == first and key_file.stat().st_mode & 0o077 == 0


def test_every_setting_is_documented():
    # the documentation's configuration reference is generated from SETTINGS (tests/test_docs.py builds it)
    example = (ROOT / ".env.example").read_text()
    assert "<!-- settings -->" in (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert re.search(rf"^#? ?{setting.name}=", example, re.M), f"{setting.name} missing from .env.example"
        assert setting.help


# -- errors ----------------------------------------------------------------------------------

def _is_error(response, status, code=None):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"error", "message"} and body["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    if code:
        assert body["error"] == code
    return body


def test_every_error_is_json(make_app):
    app = make_app(MAX_BODY_BYTES="1024")

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("secret internals")

    @app.get("/api/gone")
    def gone():
        abort(503)

    client = app.test_client()
    _is_error(client.get("/api/nothing-here"), 404, "not_found")
    wrong_method = client.delete("/api/visitors")
    _is_error(wrong_method, 405, "method_not_allowed")
    assert "POST" in wrong_method.headers["Allow"]
    _is_error(client.post("/api/visitors", data="x" * 5000, content_type="application/json"), 413,
              "payload_too_large")
    _is_error(client.post("/api/visitors", data="{", content_type="application/json"), 400)
    crashed = client.get("/api/boom")
    assert "secret internals" not in _is_error(crashed, 500, "internal_error")["message"]
    _is_error(client.get("/api/gone"), 503, "unavailable")
    _is_error(client.get("/not-a-page"), 404)  # no site built: JSON too


def test_site_404_page_is_served_for_pages(make_app, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "404.html").write_text("<h1>lost</h1>")
    (site / "app.0123abcd.js").write_text("console.log(1)")
    client = make_app(SITE_DIR=str(site)).test_client()
    home = client.get("/")
    assert home.status_code == 200 and b"home" in home.data and home.headers["Cache-Control"] == "no-cache"
    asset = client.get("/app.0123abcd.js")
    assert "immutable" in asset.headers["Cache-Control"]
    missing = client.get("/missing")
    assert missing.status_code == 404 and b"lost" in missing.data
    assert client.get("/api/missing").mimetype == "application/json"
    assert client.get("/../secret").status_code == 404


# -- logs and request ids ------------------------------------------------------------------------

def test_request_id_is_echoed_or_made(client):
    assert client.get("/api/health", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    made = client.get("/api/health", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_logs_are_json_lines_with_the_request_id(make_app, capsys):
    app = make_app()

    @app.get("/api/warn")
    def warn():
        logging.getLogger("service.test").warning("something odd")
        return {"ok": True}

    app.test_client().get("/api/warn", headers={"X-Request-Id": "req-42"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    entry = next(line for line in lines if line["message"] == "something odd")
    assert entry["request_id"] == "req-42" and entry["level"] == "WARNING" and entry["path"] == "/api/warn"


# -- CORS and origins ------------------------------------------------------------------------------

def test_cors_only_for_listed_origins(make_app):
    client = make_app(ALLOWED_ORIGINS="https://me.example, https://www.me.example").test_client()
    allowed = client.get("/api/visitors", headers={"Origin": "https://me.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://me.example"
    refused = client.get("/api/visitors", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    preflight = client.options("/api/visitors", headers={
        "Origin": "https://www.me.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://www.me.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    evil_preflight = client.options("/api/visitors", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in evil_preflight.headers


def test_no_cors_headers_without_allowed_origins(client):
    answer = client.get("/api/visitors", headers={"Origin": "https://me.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_foreign_browser_posts_are_forbidden_when_origins_are_set(make_app):
    client = make_app(ALLOWED_ORIGINS="https://me.example", SITE_URL="https://site.example").test_client()
    post = {"json": {"path": "/"}}
    _is_error(client.post("/api/visitors", headers={**BROWSER, "Origin": "https://evil.example"}, **post), 403,
              "origin_not_allowed")
    for origin in ("https://me.example", "https://site.example"):
        assert client.post("/api/visitors", headers={**BROWSER, "Origin": origin}, **post).status_code == 200
    assert client.post("/api/visitors", headers=BROWSER, **post).status_code == 200  # not a browser: no Origin
    _is_error(client.post("/api/visitors", headers={**BROWSER, "Sec-Fetch-Site": "cross-site"}, **post), 403,
              "origin_not_allowed")  # a browser that sent no Origin but says where the post comes from
    assert client.get("/api/visitors").json["total_views"] == 3


def test_origin_secret_guards_the_api(make_app):
    client = make_app(ORIGIN_SECRET="cdn-only-7f3a").test_client()
    _is_error(client.get("/api/health"), 403, "forbidden")
    _is_error(client.get("/api/health", headers={"X-Origin-Verify": "guess"}), 403)
    non_ascii = "cdn-only-7f3\u00e9".encode().decode("latin-1")
    _is_error(client.get("/api/health", headers={"X-Origin-Verify": non_ascii}), 403)
    assert client.get("/api/health", headers={"X-Origin-Verify": "cdn-only-7f3a"}).status_code == 200


def test_origin_secret_rotation_accepts_the_previous_secret_until_it_is_unset(make_app):
    """Rotation: the function takes the new secret with the old one as previous, then CloudFront switches."""
    during = make_app(ORIGIN_SECRET="new-secret-2b", ORIGIN_SECRET_PREVIOUS="old-secret-1a").test_client()
    for sent in ("old-secret-1a", "new-secret-2b"):
        assert during.get("/api/health", headers={"X-Origin-Verify": sent}).status_code == 200
    for sent in ("", "old-secret-1", "new-secret-2b-", "guess"):
        _is_error(during.get("/api/health", headers={"X-Origin-Verify": sent}), 403, "forbidden")
    _is_error(during.get("/api/health"), 403, "forbidden")
    after = make_app(ORIGIN_SECRET="new-secret-2b").test_client()
    _is_error(after.get("/api/health", headers={"X-Origin-Verify": "old-secret-1a"}), 403, "forbidden")
    assert after.get("/api/health", headers={"X-Origin-Verify": "new-secret-2b"}).status_code == 200
    previous_only = make_app(ORIGIN_SECRET_PREVIOUS="old-secret-1a").test_client()  # never an open API
    _is_error(previous_only.get("/api/health"), 403, "forbidden")


#: One request of every kind the app serves, and its status when it carries the CDN's secret.
EVERY_KIND = [
    pytest.param("GET", "/", {}, 200, id="site"),
    pytest.param("GET", "/contact/thanks.html", {}, 200, id="site-page"),
    pytest.param("GET", "/missing.html", {}, 404, id="site-missing"),
    pytest.param("GET", "/blog/", {}, 200, id="blog-index"),
    pytest.param("GET", "/blog/3/post-3", {}, 200, id="blog-post"),
    pytest.param("GET", "/blog/feed.xml", {}, 200, id="atom-feed"),
    pytest.param("GET", "/blog/feed.json", {}, 200, id="json-feed"),
    pytest.param("GET", "/sitemap.xml", {}, 200, id="sitemap"),
    pytest.param("GET", "/stats", {}, 200, id="stats-page"),
    pytest.param("GET", "/stats/stats.css", {}, 200, id="stats-css"),
    pytest.param("POST", "/api/contact", {"data": CONTACT, "headers": {"Accept": "text/html"}}, 303,
                 id="contact-form-post"),
    pytest.param("GET", "/api/visitors", {}, 200, id="api"),
    pytest.param("GET", "/api/health", {}, 200, id="health"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), EVERY_KIND)
def test_origin_secret_guards_every_route_pages_included(make_app, upstream, tmp_path, method, path, kwargs, status):
    """The function URL is public: a page fetched around the CDN would skip its cache and the WAF's limit."""
    site = tmp_path / "site"
    (site / "contact").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>Home</title>")
    (site / "contact" / "thanks.html").write_text("<!doctype html><title>Thanks</title>")
    serve(upstream, [issue(3)])
    app = make_app(ORIGIN_SECRET="new-secret-2b", ORIGIN_SECRET_PREVIOUS="old-secret-1a", SITE_DIR=str(site),
                   GITHUB_API_URL=upstream.url, BLOG_REPO="octo/blog", BLOG_COMMENTS="false", STATS_PUBLIC="true",
                   OUTBOX_INLINE_SECONDS="0", UPSTREAM_TIMEOUT="5")
    client = app.test_client()
    for sent in (None, "", "guess", "new-secret-2"):
        headers = {**kwargs.get("headers", {}), **({"X-Origin-Verify": sent} if sent is not None else {})}
        refused = client.open(path, method=method, **{**kwargs, "headers": headers})
        _is_error(refused, 403, "forbidden")
        assert refused.headers["Cache-Control"] == "no-store"
    assert upstream.count() == 0  # refused before any work
    for sent in ("new-secret-2b", "old-secret-1a"):
        headers = {**kwargs.get("headers", {}), "X-Origin-Verify": sent}
        assert client.open(path, method=method, **{**kwargs, "headers": headers}).status_code == status, sent


def test_security_headers_on_every_response(client):
    for response in (client.get("/api/health"), client.get("/api/missing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# -- health, outage and recovery ------------------------------------------------------------------------

@pytest.mark.server
def test_health_names_the_storage(make_app):
    for backend in ("sqlite", "redis", "dynamodb"):
        answer = make_app(backend).test_client().get("/api/health")
        assert answer.status_code == 200
        assert answer.json["status"] == "ok" and answer.json["storage"] == backend and answer.json["version"]


@pytest.mark.server
def test_redis_outage_is_503_fast_and_recovers_without_restart(make_app):
    server = RedisServer().start()
    try:
        client = make_app(STORAGE_URL=server.url).test_client()
        assert client.post("/api/visitors", json={"path": "/"}, headers=BROWSER).json["page_views"] == 1
        server.stop()
        for call in (lambda: client.get("/api/health"),
                     lambda: client.post("/api/visitors", json={"path": "/"}, headers=BROWSER),
                     lambda: client.get("/api/visitors")):
            started = time.monotonic()
            answer = call()
            assert time.monotonic() - started < PROMPTLY
            _is_error(answer, 503)
        assert answer.headers["Retry-After"]
        server.start()  # same port, empty data (no persistence in tests)
        assert client.get("/api/health").status_code == 200
        assert client.post("/api/visitors", json={"path": "/"}, headers=BROWSER).json["page_views"] == 1
    finally:
        server.cleanup()


@pytest.fixture
def black_hole():
    """A loopback port that accepts connections and never answers (a hung store)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("backend", ["redis", "dynamodb"])
def test_a_hung_store_is_503_in_seconds_not_minutes(make_app, black_hole, backend):
    url = {"redis": f"redis://127.0.0.1:{black_hole}/0",
           "dynamodb": f"dynamodb://t?region=us-east-1&endpoint_url=http://127.0.0.1:{black_hole}"}[backend]
    client = make_app(STORAGE_URL=url).test_client()
    for call in (lambda: client.get("/api/health"),
                 lambda: client.post("/api/visitors", json={"path": "/"}, headers=BROWSER)):
        started = time.monotonic()
        answer = call()
        assert time.monotonic() - started < PROMPTLY
        _is_error(answer, 503)


def _hold_writer_lock(path: str, holding, release) -> None:
    """Another process: a writer stuck inside its transaction, holding SQLite's writer lock until ``release``."""
    import fcntl

    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        holding.set()
        release.wait(30)


def test_a_sqlite_writer_stuck_in_a_transaction_is_503_in_seconds_for_the_others(make_app, tmp_path):
    """Another process holds the writer lock (as a writer stuck inside its transaction would): the others give up
    in time instead of waiting for it forever, and write again once it lets go."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'stuck.db'}"
    client = make_app(STORAGE_URL=url, VISITOR_RATE_LIMIT="off").test_client()
    assert client.post("/api/visitors", json={"path": "/"}, headers=BROWSER).status_code == 200
    context = multiprocessing.get_context("forkserver")  # no fork of this many-threaded process
    holding, release = context.Event(), context.Event()
    process = context.Process(target=_hold_writer_lock, args=(f"{tmp_path / 'stuck.db'}-writer.lock", holding, release))
    process.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        answer = client.post("/api/visitors", json={"path": "/"}, headers=BROWSER)
        assert time.monotonic() - started < PROMPTLY
        _is_error(answer, 503)
    finally:
        release.set()
        process.join(10)
    assert client.post("/api/visitors", json={"path": "/"}, headers=BROWSER).json["page_views"] == 2


@pytest.mark.parametrize("url, code", [
    ("/api/blog?page=", "invalid_page"), ("/api/blog?per_page=", "invalid_per_page"),
    ("/api/github?limit=", "invalid_limit"), ("/api/visitors/daily?days=", "invalid_days"),
])
def test_query_integers_longer_than_int_converts_are_400(client, url, code):
    # int() refuses more than 4,300 digits with a ValueError: never a 500
    for digits in ("9" * 4301, "0" * 5000 + "1"):
        answer = client.get(url + digits)
        assert (answer.status_code, answer.json["error"]) == (400, code)


# -- what start-up loads -------------------------------------------------------------------------

_LOADS = """
import json, sys
from service import create_app
app = create_app({"STORAGE_URL": sys.argv[1], "SECRET_KEY": "k" * 32, "BLOG_REPO": "octo/blog",
                  "SPOTIFY_CLIENT_ID": "id", "SPOTIFY_CLIENT_SECRET": "secret", "SPOTIFY_REFRESH_TOKEN": "token",
                  "GITHUB_USERNAME": "octo", "TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_CHAT_ID": "1",
                  "STATS_TOKEN": "t" * 20, "STATS_DIGEST": "true", "STATS_ALERTS": "true"})
app.extensions["vitae.storage"].init()
answer = app.test_client().post("/api/visitors", json={"path": "/", "referrer": "https://news.example/"},
                                headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Firefox/140.0"})
print(json.dumps({"status": answer.status_code, "modules": sorted(sys.modules)}))
"""


def test_start_up_and_a_counted_view_load_no_other_features_code(tmp_path):
    """Route, page and command modules import their feature's domain code inside the views and commands: with every
    feature configured, creating the app and counting a view loads none of the blog, Spotify, GitHub, contact or
    site-rendering code, nor the libraries only they use."""
    import subprocess
    import sys

    found = subprocess.run([sys.executable, "-c", _LOADS, f"sqlite:///{tmp_path / 'loads.db'}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(found.stdout.splitlines()[-1])
    assert result["status"] == 200
    modules = set(result["modules"])
    assert "service.visitors.counter" in modules and "service.stats.counting" in modules  # what it does use
    unused = {"service.blog.posts", "service.blog.comments", "service.blog.feeds", "service.blog.markdown",
              "service.blog.card", "service.blog.glyphs", "service.blog.png",
              "service.contact.form", "service.outbox.delivery", "service.channels.telegram_api",
              "service.contact.turnstile", "service.spotify.nowplaying", "service.spotify.client",
              "service.github.activity", "service.github.client", "service.site.build", "service.theme.render",
              "service.theme.resume",
              "service.stats.display",
              "markdown_it", "nh3", "pygments", "jsonschema", "requests",
              "zoneinfo"}  # STATS_TIMEZONE is UTC by default: no zone data is imported or read
    assert not unused & modules, sorted(unused & modules)
