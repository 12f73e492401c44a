"""The stale-while-revalidate cache (service/cache.py) over real SQLite, Redis and DynamoDB (moto) stores.

Fetchers here call the loopback fake upstream through the GitHub client, so a
refresh is a real HTTP request and "one refresh" is counted by the server.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable

import pytest

from service.core import cache
from service.core.db import get_storage
from service.core.deps import current
from service.core.errors import Unavailable
from service.core.upstream import UpstreamError
from service.github import client

from ..fakes import Reply
from ..helpers import PROMPTLY, run_threads

BACKENDS = ["sqlite", "redis", "dynamodb"]
TTL = 300


@pytest.fixture(params=BACKENDS)
def app(request, make_app, upstream):
    app = make_app(request.param, GITHUB_API_URL=upstream.url, UPSTREAM_TIMEOUT="0.5")
    with app.app_context():
        yield app


def fetch_from(upstream, path="/thing"):
    """A fetcher reading JSON from the fake upstream (what every widget's fetcher does, minus parsing)."""
    github = client.GitHub(upstream.url, read_timeout=0.5)

    def fetch(previous):
        answer = github.get(path)
        return cache.Entry(answer.data, state={"etag": answer.etag})
    return fetch


# -- the widgets on the cache: one shared check of each promise, run against every widget ------------

@dataclasses.dataclass(frozen=True)
class Widget:
    """A widget as the cache sees it: its settings, its upstream call, and the part of its answer it caches."""

    endpoint: str
    call: tuple[str, str]  # the upstream request each refresh makes (method, path)
    ttl_setting: str
    settings: Callable[[str], dict[str, object]]  # upstream URL -> settings (parsed values)
    good: Reply
    value: Callable[[dict], object]
    secret: str  # a credential among the settings: it must never reach a log line
    other_calls: tuple[tuple[str, str, Reply], ...] = ()  # answered, not counted (e.g. a token)


WIDGETS = {
    "spotify": Widget(
        "/api/spotify", ("GET", "/v1/me/player/currently-playing"), "SPOTIFY_CACHE_TTL",
        lambda url: {"SPOTIFY_API_URL": f"{url}/v1", "SPOTIFY_ACCOUNTS_URL": url, "SPOTIFY_CLIENT_ID": "id",
                     "SPOTIFY_CLIENT_SECRET": "spotify-client-secret", "SPOTIFY_REFRESH_TOKEN": "refresh"},
        Reply(200, json={"is_playing": True, "progress_ms": 1000, "currently_playing_type": "track", "item": {
            "type": "track", "name": "Teardrop", "duration_ms": 329000, "artists": [{"name": "Massive Attack"}],
            "album": {"name": "Mezzanine", "images": []}, "external_urls": {}}}),
        lambda body: body["title"], "spotify-client-secret",
        (("POST", "/api/token", Reply(200, json={"access_token": "a", "token_type": "Bearer", "expires_in": 3600})),)),
    "github": Widget(
        "/api/github", ("GET", "/users/octo/events/public"), "GITHUB_CACHE_TTL",
        lambda url: {"GITHUB_API_URL": url, "GITHUB_USERNAME": "octo", "GITHUB_TOP_REPOS": 0,
                     "GITHUB_TOKEN": "github_pat_widget_token"},
        Reply(200, json=[{"type": "WatchEvent", "repo": {"name": "octo/a"}, "created_at": "2027-01-01T00:00:00Z"}]),
        lambda body: body["events"], "github_pat_widget_token"),
    "blog": Widget(
        "/api/blog", ("GET", "/repos/octo/blog/issues"), "BLOG_CACHE_TTL",
        lambda url: {"GITHUB_API_URL": url, "BLOG_REPO": "octo/blog", "SITE_URL": "https://octo.example",
                     "GITHUB_TOKEN": "github_pat_widget_token"},
        Reply(200, json=[{"number": 5, "title": "Post 5", "body": "Words.", "state": "open", "user": {"login": "octo"},
                          "labels": [{"name": "published"}], "created_at": "2027-01-05T10:00:00Z",
                          "updated_at": "2027-01-05T12:00:00Z", "html_url": "https://github.com/octo/blog/issues/5"}]),
        lambda body: [post["title"] for post in body["posts"]], "github_pat_widget_token"),
}
FAILURES = [
    Reply(500, json={"message": "internal detail"}),
    Reply(200, body="{not json", headers={"Content-Type": "application/json"}),
    Reply(200, json={"late": "internal detail"}, delay=1.5),
]


@pytest.fixture(params=list(WIDGETS))
def widget(request, app, upstream) -> Widget:
    """A widget of each kind on each backend's app, its upstream scripted to answer well at first."""
    widget = WIDGETS[request.param]
    app.config.update(widget.settings(upstream.url))
    for method, path, reply in widget.other_calls:
        upstream.script(method, path, reply)
    return widget


def _get(app, widget):
    response = app.test_client().get(widget.endpoint)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_each_widget_calls_its_upstream_once_per_ttl(app, upstream, clock, widget):
    upstream.script(*widget.call, widget.good)
    ttl = app.config[widget.ttl_setting]
    first = _get(app, widget)
    assert first.get_json()["stale"] is False and f"max-age={ttl}" in first.headers["Cache-Control"]
    for _ in range(20):
        clock.advance((ttl - 1) / 20)
        again = _get(app, widget)
        assert widget.value(again.get_json()) == widget.value(first.get_json())
    assert (again.get_json()["age"], again.headers["Cache-Control"]) == (ttl - 1, "public, max-age=1")
    assert upstream.count(*widget.call) == 1
    clock.advance(1)
    assert _get(app, widget).get_json()["age"] == 0
    assert upstream.count(*widget.call) == 2


@pytest.mark.parametrize("failure", FAILURES, ids=["500", "malformed-json", "read-timeout"])
def test_each_widget_serves_its_last_answer_as_stale_while_its_upstream_fails(app, upstream, clock, widget, failure,
                                                                              caplog):
    upstream.script(*widget.call, widget.good, failure, widget.good)
    ttl = app.config[widget.ttl_setting]
    good = widget.value(_get(app, widget).get_json())
    clock.advance(ttl + 5)
    with caplog.at_level(logging.DEBUG):
        stale = _get(app, widget)
    assert (widget.value(stale.get_json()), stale.get_json()["stale"], stale.get_json()["age"]) == (good, True, ttl + 5)
    assert stale.headers["Cache-Control"] == f"public, max-age={min(ttl, cache.FAILURE_TTL)}"
    assert "internal detail" not in stale.get_data(as_text=True)
    assert any("refreshing" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert all(widget.secret not in r.getMessage() for r in caplog.records)
    # The failure is remembered: no upstream call for about a minute.
    clock.advance(cache.FAILURE_TTL - 1)
    for _ in range(5):
        assert _get(app, widget).get_json()["stale"] is True
    assert upstream.count(*widget.call) == 2
    clock.advance(1)
    assert _get(app, widget).get_json()["stale"] is False
    assert upstream.count(*widget.call) == 3


def test_nothing_cached_and_upstream_down_is_503_with_retry_after(app, upstream, clock):
    upstream.script("GET", "/thing", Reply(503))
    with pytest.raises(Unavailable) as caught:
        cache.cached(current(), "k", TTL, fetch_from(upstream))
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.retry_after == cache.FAILURE_TTL
    with pytest.raises(Unavailable):
        cache.cached(current(), "k", TTL, fetch_from(upstream))
    assert upstream.count() == 1


def test_an_upstream_asking_for_a_longer_wait_is_not_called_before_it(app, upstream, clock):
    def fetch(previous):
        raise UpstreamError("slow down", status=429, transient=True, retry_after=600)
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}))
    cache.cached(current(), "k", TTL, fetch_from(upstream))
    clock.advance(TTL)
    assert cache.cached(current(), "k", TTL, fetch).stale
    clock.advance(599)
    assert cache.cached(current(), "k", TTL, fetch_from(upstream)).stale
    assert upstream.count() == 1
    clock.advance(1)
    assert not cache.cached(current(), "k", TTL, fetch_from(upstream)).stale
    assert upstream.count() == 2


def test_a_refresh_in_progress_elsewhere_means_serve_stale_without_calling(app, upstream, clock):
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}))
    cache.cached(current(), "k", TTL, fetch_from(upstream))
    clock.advance(TTL)
    assert get_storage().add("cache:k:lock", "another-worker", ttl=30)
    result = cache.cached(current(), "k", TTL, fetch_from(upstream))
    assert (result.value, result.stale) == ({"n": 1}, True)
    assert upstream.count() == 1
    assert get_storage().get("cache:k:lock") == "another-worker"  # not ours to release


def test_with_nothing_cached_a_caller_waits_for_the_refresher(app, upstream, monkeypatch):
    monkeypatch.setattr(cache, "WAIT", 3.0)
    storage = get_storage()
    assert storage.add("cache:k:lock", "another-worker", ttl=30)
    entry = json.dumps({"value": {"n": 7}, "fetched_at": app.config["CLOCK"](), "state": None})
    timer = threading.Timer(0.3, storage.set, ("cache:k", entry))
    timer.start()
    try:
        result = cache.cached(current(), "k", TTL, fetch_from(upstream))
    finally:
        timer.cancel()
    assert (result.value, result.stale) == ({"n": 7}, False)
    assert upstream.count() == 0


def test_waiting_for_a_refresher_is_bounded(app, upstream, monkeypatch):
    monkeypatch.setattr(cache, "WAIT", 0.3)
    assert get_storage().add("cache:k:lock", "stuck-worker", ttl=30)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        cache.cached(current(), "k", TTL, fetch_from(upstream))
    assert time.monotonic() - started < PROMPTLY  # the stuck lock lives 30 s
    assert upstream.count() == 0


def test_the_lock_is_released_when_a_fetcher_breaks(app, upstream, clock):
    def broken(previous):
        raise RuntimeError("bug")
    with pytest.raises(RuntimeError):
        cache.cached(current(), "k", TTL, broken)
    assert get_storage().get("cache:k:lock") is None
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}))
    assert cache.cached(current(), "k", TTL, fetch_from(upstream)).value == {"n": 1}


def test_an_answer_the_parser_cannot_read_is_a_remembered_failure(app, upstream, clock):
    upstream.script("GET", "/thing", Reply(200, json={"title": "ok"}), Reply(200, json={"surprise": []}))

    def parse(previous):
        answer = client.GitHub(upstream.url, read_timeout=0.5).get("/thing")
        return cache.Entry({"title": answer.data["title"]})  # KeyError on the second answer
    assert cache.cached(current(), "k", TTL, parse).value == {"title": "ok"}
    clock.advance(TTL)
    for _ in range(5):
        result = cache.cached(current(), "k", TTL, parse)
        assert (result.value, result.stale) == ({"title": "ok"}, True)
    assert upstream.count("GET", "/thing") == 2  # remembered: not refetched on every request


def test_a_lone_surrogate_from_upstream_enters_as_a_replacement_character_and_is_cached(app, upstream):
    upstream.script("GET", "/thing", Reply(200, body=b'{"title": "broken \\ud800 text", "\\udfff": ["\\uDC00"]}',
                                           headers={"Content-Type": "application/json"}))
    first = cache.cached(current(), "k", TTL, fetch_from(upstream))
    assert first.value == {"title": "broken \ufffd text", "\ufffd": ["\ufffd"]}
    assert cache.cached(current(), "k", TTL, fetch_from(upstream)).value == first.value
    assert upstream.count("GET", "/thing") == 1


def test_a_value_kept_by_a_304_loses_the_lone_surrogates_an_older_version_stored(app, upstream, clock):
    """Before upstream text was made valid where it arrives, a lone surrogate could be stored; a 304 keeps the
    stored value, so the refresh cleans it (else an unchanged upstream would keep a page broken)."""
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}, headers={"ETag": '"v1"'}), Reply(304))

    def conditional(previous):
        answer = client.GitHub(upstream.url).get("/thing", etag=previous.state["etag"] if previous else None)
        return previous if answer.status == 304 else cache.Entry(answer.data, state={"etag": answer.etag})
    cache.cached(current(), "k", TTL, conditional)
    stored = json.loads(get_storage().get("cache:k"))
    get_storage().set("cache:k", json.dumps({**stored, "value": {"title": "old \ud800 text"}}))
    clock.advance(TTL)
    assert cache.cached(current(), "k", TTL, conditional).value == {"title": "old \ufffd text"}
    assert upstream.count("GET", "/thing") == 2


def test_not_modified_keeps_the_value_and_renews_its_time(app, upstream, clock):
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}, headers={"ETag": '"v1"'}), Reply(304))

    def conditional(previous):
        answer = client.GitHub(upstream.url).get("/thing", etag=previous.state["etag"] if previous else None)
        return previous if answer.status == 304 else cache.Entry(answer.data, state={"etag": answer.etag})
    cache.cached(current(), "k", TTL, conditional)
    clock.advance(TTL)
    result = cache.cached(current(), "k", TTL, conditional)
    assert (result.value, result.stale, result.age) == ({"n": 1}, False, 0)
    assert upstream.calls("GET", "/thing")[1].headers["if-none-match"] == '"v1"'


def test_an_unreadable_entry_is_refetched(app, upstream):
    get_storage().set("cache:k", "{garbage")
    upstream.script("GET", "/thing", Reply(200, json={"n": 1}))
    assert cache.cached(current(), "k", TTL, fetch_from(upstream)).value == {"n": 1}


def test_hold_pauses_an_upstream_by_the_injected_clock(app, clock):
    cache.held(current(), "spotify")  # nothing held: no error
    cache.hold(current(), "spotify", clock.now + 120)
    with pytest.raises(UpstreamError) as caught:
        cache.held(current(), "spotify")
    assert caught.value.transient and caught.value.retry_after == pytest.approx(120)
    cache.held(current(), "github")  # another upstream is not paused
    clock.advance(120)
    cache.held(current(), "spotify")


# Twenty threads share one process with the fake upstream: the upstream timeout here is the product's
# default, not the module's 0.5 s, so a loaded machine cannot turn a slow answer into a failed refresh.

def test_twenty_concurrent_requests_on_an_expired_entry_make_one_refresh(app, upstream, clock):
    """No stampede: one caller refreshes, and its answer waits until the other 19 served the stale value."""
    app.config.update(GITHUB_USERNAME="octo", GITHUB_TOP_REPOS=0, UPSTREAM_TIMEOUT=5.0)
    events = [{"type": "WatchEvent", "repo": {"name": "octo/a"}, "created_at": "2027-01-01T00:00:00Z"}]
    others_served = threading.Event()

    def refresh(recorded):
        others_served.wait(4)
        return Reply(200, json=events * 2)
    upstream.script("GET", "/users/octo/events/public", Reply(200, json=events), refresh)
    assert app.test_client().get("/api/github").status_code == 200
    clock.advance(app.config["GITHUB_CACHE_TTL"] + 1)
    barrier = threading.Barrier(20)
    answers = []

    def visitor():
        barrier.wait()
        answer = app.test_client().get("/api/github").get_json()
        answers.append(answer)
        if len(answers) == 19:
            others_served.set()
    run_threads([threading.Thread(target=visitor) for _ in range(20)], timeout=10)
    assert len(answers) == 20
    assert upstream.count("GET", "/users/octo/events/public") == 2  # the first fill + ONE refresh
    assert sorted(len(a["events"]) for a in answers) == [1] * 19 + [2]  # 19 stale answers, then the refresher's
    assert sum(1 for a in answers if a["stale"]) == 19
    assert len(app.test_client().get("/api/github").get_json()["events"]) == 2


def test_twenty_concurrent_first_requests_make_one_fetch_and_all_get_it(app, upstream):
    """Nothing cached yet: one caller fetches, the others wait for its value instead of calling too."""
    app.config.update(GITHUB_USERNAME="octo", GITHUB_TOP_REPOS=0, UPSTREAM_TIMEOUT=5.0)
    events = [{"type": "WatchEvent", "repo": {"name": "octo/a"}, "created_at": "2027-01-01T00:00:00Z"}]
    upstream.script("GET", "/users/octo/events/public", Reply(200, json=events, delay=0.3))
    barrier = threading.Barrier(20)
    answers = []

    def visitor():
        barrier.wait()
        response = app.test_client().get("/api/github")
        answers.append((response.status_code, response.get_json()))
    run_threads([threading.Thread(target=visitor) for _ in range(20)], timeout=15)
    assert len(answers) == 20
    assert all(status == 200 and len(body["events"]) == 1 for status, body in answers)
    assert upstream.count("GET", "/users/octo/events/public") == 1
