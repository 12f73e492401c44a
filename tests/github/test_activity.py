"""GET /api/github against a fake GitHub API on loopback, over SQLite and Redis."""

from __future__ import annotations

import pytest

from ..fakes import Reply

TOKEN = "github_pat_test_0123456789"
EVENTS = "/users/octo/events/public"
REPOS = "/users/octo/repos"
TTL = 300


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, upstream):
    return make_app(request.param, GITHUB_API_URL=upstream.url, GITHUB_USERNAME="octo", GITHUB_TOKEN=TOKEN,
                    GITHUB_CACHE_TTL=str(TTL), UPSTREAM_TIMEOUT="5")


def event(kind, repo="octo/site", payload=None, created_at="2027-01-15T07:00:00Z"):
    return {"id": "1", "type": kind, "actor": {"login": "octo"}, "repo": {"name": repo, "url": "ignored"},
            "payload": payload or {}, "public": True, "created_at": created_at}


SAMPLE = [
    event("PushEvent", payload={"ref": "refs/heads/main", "head": "a1b2c3d4e5", "size": 4, "commits": [
        {"sha": "1", "message": "Fix the feed\n\nLonger text"}, {"sha": "2", "message": "Add tests"},
        {"sha": "3", "message": "Tidy"}, {"sha": "4", "message": "Fourth"}]}),
    event("PushEvent", payload={"ref": "refs/heads/dev", "head": "ffff000"}),  # GitHub's trimmed payload
    event("PullRequestEvent", payload={"action": "opened", "number": 7, "pull_request": {
        "number": 7, "title": "Faster counter", "html_url": "https://github.com/octo/site/pull/7"}}),
    event("PullRequestEvent", payload={"action": "closed", "number": 8, "pull_request": {"number": 8,
                                                                                      "merged": True}}),
    event("IssuesEvent", payload={"action": "opened", "issue": {
        "number": 3, "title": "Dark mode", "html_url": "https://github.com/octo/site/issues/3"}}),
    event("ReleaseEvent", payload={"action": "published", "release": {
        "tag_name": "v1.2.0", "name": "", "html_url": "https://github.com/octo/site/releases/tag/v1.2.0"}}),
    event("CreateEvent", payload={"ref_type": "branch", "ref": "feature"}),
    event("ForkEvent", repo="other/lib", payload={"forkee": {"full_name": "octo/lib",
                                                            "html_url": "https://github.com/octo/lib"}}),
    event("WatchEvent", repo="other/tool", payload={"action": "started"}),
    event("IssueCommentEvent", payload={"action": "created"}),  # not shown
    {"type": "PushEvent", "repo": None},  # malformed: skipped
]


def repo(name, stars, **extra):
    return {"name": name, "description": f"{name} description", "stargazers_count": stars, "language": "Python",
            "html_url": f"https://github.com/octo/{name}", "fork": False, "archived": False, "private": False,
            **extra}


def test_events_are_summarised(app, upstream):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE))
    upstream.script("GET", REPOS, Reply(200, json=[]))
    response = app.test_client().get("/api/github?limit=30")
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "octo" and body["stale"] is False and body["age"] == 0
    web = upstream.url  # addresses GitHub did not send are built from the API's host
    assert body["events"] == [
        {"type": "push", "repo": "octo/site", "url": f"{web}/octo/site/commit/a1b2c3d4e5",
         "created_at": "2027-01-15T07:00:00Z", "branch": "main", "commits": 4,
         "messages": ["Fix the feed", "Add tests", "Tidy"]},
        {"type": "push", "repo": "octo/site", "url": f"{web}/octo/site/commit/ffff000",
         "created_at": "2027-01-15T07:00:00Z", "branch": "dev", "commits": None, "messages": []},
        {"type": "pull_request", "repo": "octo/site", "url": "https://github.com/octo/site/pull/7",
         "created_at": "2027-01-15T07:00:00Z", "action": "opened", "title": "Faster counter", "number": 7},
        {"type": "pull_request", "repo": "octo/site", "url": f"{web}/octo/site/pull/8",
         "created_at": "2027-01-15T07:00:00Z", "action": "merged", "title": None, "number": 8},
        {"type": "issue", "repo": "octo/site", "url": "https://github.com/octo/site/issues/3",
         "created_at": "2027-01-15T07:00:00Z", "action": "opened", "title": "Dark mode", "number": 3},
        {"type": "release", "repo": "octo/site", "url": "https://github.com/octo/site/releases/tag/v1.2.0",
         "created_at": "2027-01-15T07:00:00Z", "action": "published", "name": "v1.2.0", "tag": "v1.2.0"},
        {"type": "create", "repo": "octo/site", "url": f"{web}/octo/site",
         "created_at": "2027-01-15T07:00:00Z", "ref_type": "branch", "ref": "feature"},
        {"type": "fork", "repo": "other/lib", "url": "https://github.com/octo/lib",
         "created_at": "2027-01-15T07:00:00Z", "fork": "octo/lib"},
        {"type": "star", "repo": "other/tool", "url": f"{web}/other/tool",
         "created_at": "2027-01-15T07:00:00Z"},
    ]
    call = upstream.calls("GET", EVENTS)[0]
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.headers["user-agent"].startswith("vitae/")
    assert response.headers["Cache-Control"] == f"public, max-age={TTL}"


def test_limit_is_bounded(app, upstream):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE))
    upstream.script("GET", REPOS, Reply(200, json=[]))
    client = app.test_client()
    assert len(client.get("/api/github").get_json()["events"]) == 9  # default 10, nine showable
    assert [e["type"] for e in client.get("/api/github?limit=2").get_json()["events"]] == ["push", "push"]
    for bad in ("0", "31", "abc", "-1", "2.5"):
        response = client.get(f"/api/github?limit={bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"] == "invalid_limit"


def test_top_repositories(app, upstream):
    upstream.script("GET", EVENTS, Reply(200, json=[]))
    upstream.script("GET", REPOS, Reply(200, json=[
        repo("small", 1), repo("big", 90, language=None), repo("forked", 500, fork=True),
        repo("old", 300, archived=True), repo("mid", 12, description=None)]))
    app.config["GITHUB_TOP_REPOS"] = 2
    body = app.test_client().get("/api/github").get_json()
    assert body["repos"] == [
        {"name": "big", "description": "big description", "stars": 90, "language": None,
         "url": "https://github.com/octo/big"},
        {"name": "mid", "description": None, "stars": 12, "language": "Python", "url": "https://github.com/octo/mid"},
    ]
    assert upstream.calls("GET", REPOS)[0].query["type"] == ["owner"]


def test_no_repositories_means_no_repositories_call(app, upstream):
    app.config["GITHUB_TOP_REPOS"] = 0
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE))
    assert app.test_client().get("/api/github").get_json()["repos"] == []
    assert upstream.count("GET", REPOS) == 0


def test_a_304_reuses_the_cached_body(app, upstream, clock):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE, headers={"ETag": '"ev1"'}), Reply(304))
    upstream.script("GET", REPOS, Reply(200, json=[repo("a", 1)], headers={"ETag": 'W/"r1"'}), Reply(304))
    client = app.test_client()
    first = client.get("/api/github").get_json()
    clock.advance(TTL)
    second = client.get("/api/github").get_json()
    assert second["events"] == first["events"] and second["repos"] == first["repos"]
    assert (second["stale"], second["age"]) == (False, 0)
    assert upstream.calls("GET", EVENTS)[1].headers["if-none-match"] == '"ev1"'
    assert upstream.calls("GET", REPOS)[1].headers["if-none-match"] == 'W/"r1"'
    assert "if-none-match" not in upstream.calls("GET", EVENTS)[0].headers


def test_a_spent_rate_limit_stops_calls_until_the_reset(app, upstream, clock):
    reset = int(clock.now + 1800)
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE, headers={"X-RateLimit-Remaining": "0",
                                                                     "X-RateLimit-Reset": str(reset)}),
                    Reply(200, json=SAMPLE[:1], headers={"X-RateLimit-Remaining": "4999"}))
    app.config["GITHUB_TOP_REPOS"] = 0
    client = app.test_client()
    assert len(client.get("/api/github").get_json()["events"]) == 9
    for _ in range(5):
        clock.advance(TTL)
        body = client.get("/api/github").get_json()
        assert body["stale"] is True
    assert upstream.count("GET", EVENTS) == 1
    clock.advance(reset - clock.now)
    body = client.get("/api/github").get_json()
    assert (len(body["events"]), body["stale"]) == (1, False)
    assert upstream.count("GET", EVENTS) == 2


def test_403_rate_limited_serves_stale_and_pauses_every_github_widget(app, upstream, clock):
    reset = int(clock.now + TTL + 1200)
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE), Reply(403, json={"message": "API rate limit exceeded for "
                                                                             "1.2.3.4"},
                                                                 headers={"X-RateLimit-Remaining": "0",
                                                                          "X-RateLimit-Reset": str(reset)}))
    upstream.script("GET", REPOS, Reply(200, json=[]))
    app.config["BLOG_REPO"] = "octo/blog"
    client = app.test_client()
    client.get("/api/github")
    clock.advance(TTL)
    response = client.get("/api/github")
    assert response.status_code == 200 and response.get_json()["stale"] is True
    assert "rate limit exceeded" not in response.get_data(as_text=True)
    calls = upstream.count()
    blog = client.get("/api/blog")  # the blog shares the limit: nothing cached, so 503 without a call
    assert blog.status_code == 503 and blog.get_json()["error"] == "upstream_unavailable"
    assert int(blog.headers["Retry-After"]) >= 1100
    clock.advance(1000)
    assert client.get("/api/github").get_json()["stale"] is True
    assert upstream.count() == calls


def test_429_with_retry_after_is_honoured(app, upstream, clock):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE), Reply(429, headers={"Retry-After": "600"}),
                    Reply(200, json=[]))
    app.config["GITHUB_TOP_REPOS"] = 0
    client = app.test_client()
    client.get("/api/github")
    clock.advance(TTL)
    assert client.get("/api/github").get_json()["stale"] is True
    clock.advance(599)
    assert client.get("/api/github").get_json()["stale"] is True
    assert upstream.count("GET", EVENTS) == 2
    clock.advance(1)
    assert client.get("/api/github").get_json()["events"] == []
    assert upstream.count("GET", EVENTS) == 3


def test_nothing_cached_and_github_down_is_a_503(app, upstream):
    upstream.script("GET", EVENTS, Reply(502, body="<html>Bad gateway</html>"))
    response = app.test_client().get("/api/github")
    assert response.status_code == 503
    assert response.get_json()["error"] == "upstream_unavailable"
    assert "Bad gateway" not in response.get_data(as_text=True)


def test_repositories_failing_still_gives_the_events(app, upstream):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE))
    upstream.script("GET", REPOS, Reply(500))
    body = app.test_client().get("/api/github").get_json()
    assert len(body["events"]) == 9 and body["repos"] == []


def test_github_enterprise_addresses(make_app, upstream):
    app = make_app("sqlite", GITHUB_API_URL=f"{upstream.url}/api/v3", GITHUB_USERNAME="octo", GITHUB_TOP_REPOS="0")
    upstream.script("GET", f"/api/v3{EVENTS}", Reply(200, json=[event("WatchEvent", repo="corp/tool")]))
    body = app.test_client().get("/api/github").get_json()
    assert body["events"][0]["url"] == f"{upstream.url}/corp/tool"
    assert "authorization" not in upstream.calls()[0].headers  # no token configured: none sent


def test_missing_username_answers_not_configured(make_app, upstream):
    response = make_app("sqlite", GITHUB_API_URL=upstream.url).test_client().get("/api/github")
    assert response.status_code == 503
    assert response.get_json()["error"] == "not_configured"
    assert upstream.count() == 0


def test_a_revalidating_client_gets_304(app, upstream):
    upstream.script("GET", EVENTS, Reply(200, json=SAMPLE))
    upstream.script("GET", REPOS, Reply(200, json=[]))
    client = app.test_client()
    etag = client.get("/api/github").headers["ETag"]
    again = client.get("/api/github", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_lone_surrogates_in_activity_enter_as_replacement_characters(app, upstream):
    """JSON may escape half a UTF-16 pair ("\\ud800"): the widget answers U+FFFD in its place, never a 5xx."""
    upstream.script("GET", EVENTS, Reply(200, json=[event("IssuesEvent", payload={"action": "opened", "issue": {
        "number": 3, "title": "Dark \ud800mode", "html_url": "https://github.com/octo/site/issues/3"}})]))
    upstream.script("GET", REPOS, Reply(200, json=[repo("site", 5, description="A \udc00site")]))
    response = app.test_client().get("/api/github")
    assert response.status_code == 200
    body = response.get_json()
    assert body["events"][0]["title"] == "Dark \ufffdmode"
    assert b"\\ud" not in response.data.lower()
