"""GET /api/spotify and `flask spotify authorize` against a fake Spotify on loopback, over SQLite and Redis."""

from __future__ import annotations

import base64
import logging
import os
import stat
from urllib.parse import parse_qs, urlsplit

import pytest

from service.spotify import nowplaying
from service.spotify.client import SpotifyAccounts, SpotifyAPI

from ..fakes import Reply

CLIENT_ID = "abc123clientid"
CLIENT_SECRET = "s3cret-client-value"
REFRESH = "refresh-token-value-1"
ACCESS = "access-token-value-1"
NOW = "/v1/me/player/currently-playing"
RECENT = "/v1/me/player/recently-played"
TOKEN = "/api/token"
TTL = 30


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, upstream):
    return make_app(request.param, SPOTIFY_API_URL=f"{upstream.url}/v1", SPOTIFY_ACCOUNTS_URL=upstream.url,
                    SPOTIFY_CLIENT_ID=CLIENT_ID, SPOTIFY_CLIENT_SECRET=CLIENT_SECRET, SPOTIFY_REFRESH_TOKEN=REFRESH,
                    SPOTIFY_CACHE_TTL=str(TTL), UPSTREAM_TIMEOUT="5")


def token_reply(access=ACCESS, expires_in=3600, **extra):
    return Reply(200, json={"access_token": access, "token_type": "Bearer", "expires_in": expires_in,
                            "scope": "user-read-currently-playing user-read-recently-played", **extra})


def track(name="Teardrop", **overrides):
    item = {
        "type": "track", "name": name, "duration_ms": 329000, "is_local": False,
        "artists": [{"name": "Massive Attack"}, {"name": "Elizabeth Fraser"}],
        "album": {"name": "Mezzanine", "images": [
            {"url": "https://i.scdn.example/640.jpg", "width": 640, "height": 640},
            {"url": "https://i.scdn.example/300.jpg", "width": 300, "height": 300},
            {"url": "https://i.scdn.example/64.jpg", "width": 64, "height": 64}]},
        "external_urls": {"spotify": "https://open.spotify.com/track/1"},
    }
    item.update(overrides)
    return item


def playing(item=None, is_playing=True, progress_ms=61000):
    return Reply(200, json={"is_playing": is_playing, "progress_ms": progress_ms,
                            "currently_playing_type": (item or track())["type"], "item": item or track()})


def recently(name="Angel", played_at="2027-01-15T07:30:00.000Z"):
    return Reply(200, json={"items": [{"track": track(name), "played_at": played_at}]})


def test_a_playing_track(app, upstream):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing())
    response = app.test_client().get("/api/spotify")
    assert response.status_code == 200
    assert response.get_json() == {
        "is_playing": True, "type": "track", "title": "Teardrop", "artists": ["Massive Attack", "Elizabeth Fraser"],
        "album": "Mezzanine", "image_url": "https://i.scdn.example/300.jpg", "url": "https://open.spotify.com/track/1",
        "progress_ms": 61000, "duration_ms": 329000, "played_at": None, "stale": False, "age": 0,
    }
    assert response.headers["Cache-Control"] == f"public, max-age={TTL}"
    token_call = upstream.calls("POST", TOKEN)[0]
    assert token_call.form() == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH]}
    assert token_call.headers["authorization"] == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    now_call = upstream.calls("GET", NOW)[0]
    assert now_call.headers["authorization"] == f"Bearer {ACCESS}"
    assert now_call.query["additional_types"] == ["track,episode"]
    assert now_call.headers["user-agent"].startswith("vitae/")


def test_one_token_request_per_expiry(app, upstream, clock):
    upstream.script("POST", TOKEN, token_reply(ACCESS, expires_in=600), token_reply("access-token-value-2"))
    upstream.script("GET", NOW, playing())
    client = app.test_client()
    for _ in range(600 // TTL):  # a token's lifetime of refreshes, one per TTL
        assert client.get("/api/spotify").status_code == 200
        clock.advance(TTL)
    assert upstream.count("GET", NOW) == 600 // TTL
    assert upstream.count("POST", TOKEN) == 2  # the first, and one shortly before it expires
    assert upstream.calls("GET", NOW)[-1].headers["authorization"] == "Bearer access-token-value-2"


@pytest.mark.parametrize("nothing", [Reply(204), playing(is_playing=False), Reply(200, json={"is_playing": True,
                                                                                         "item": None})],
                         ids=["204", "paused", "no-item"])
def test_when_nothing_plays_the_last_played_track_is_answered(app, upstream, nothing):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, nothing)
    upstream.script("GET", RECENT, recently())
    body = app.test_client().get("/api/spotify").get_json()
    assert body["is_playing"] is False
    assert (body["title"], body["played_at"], body["progress_ms"]) == ("Angel", "2027-01-15T07:30:00.000Z", None)
    assert upstream.calls("GET", RECENT)[0].query["limit"] == ["1"]


def test_nothing_played_at_all(app, upstream):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, Reply(204))
    upstream.script("GET", RECENT, Reply(200, json={"items": []}))
    body = app.test_client().get("/api/spotify").get_json()
    assert body["is_playing"] is False and body["title"] is None and body["artists"] == []
    assert body["stale"] is False


def test_a_podcast_episode(app, upstream):
    episode = {"type": "episode", "name": "Episode 12", "duration_ms": 3_600_000, "images": [],
               "show": {"name": "The Show", "publisher": "Some Network",
                        "images": [{"url": "https://i.scdn.example/show.jpg", "width": 640, "height": 640}]},
               "external_urls": {"spotify": "https://open.spotify.com/episode/9"}}
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(episode, progress_ms=5000))
    body = app.test_client().get("/api/spotify").get_json()
    assert body["type"] == "episode"
    assert (body["title"], body["artists"], body["album"]) == ("Episode 12", ["Some Network"], "The Show")
    assert body["image_url"] == "https://i.scdn.example/show.jpg"
    assert body["url"] == "https://open.spotify.com/episode/9"


def test_a_local_file_without_artwork_or_link(app, upstream):
    local = track("Home Recording", is_local=True, album={"name": "", "images": []}, external_urls={},
                  artists=[{"name": "Me"}])
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(local))
    body = app.test_client().get("/api/spotify").get_json()
    assert (body["title"], body["artists"], body["album"], body["image_url"], body["url"]) == (
        "Home Recording", ["Me"], None, None, None)


def test_unsafe_links_from_upstream_are_dropped(app, upstream):
    item = track(external_urls={"spotify": "javascript:alert(1)"},
                 album={"name": "A", "images": [{"url": "data:image/png;base64,AAAA", "width": 300}]})
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(item))
    body = app.test_client().get("/api/spotify").get_json()
    assert body["url"] is None and body["image_url"] is None


def test_429_honours_retry_after_and_serves_the_cache(app, upstream, clock):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(), Reply(429, headers={"Retry-After": "300"}), playing(track("Next")))
    client = app.test_client()
    client.get("/api/spotify")
    clock.advance(TTL)
    body = client.get("/api/spotify").get_json()
    assert (body["title"], body["stale"], body["age"]) == ("Teardrop", True, TTL)
    assert upstream.count("GET", NOW) == 2
    for _ in range(29):  # ten seconds apart, up to 290 s after the 429: no call
        clock.advance(10)
        assert client.get("/api/spotify").get_json()["stale"] is True
    assert upstream.count("GET", NOW) == 2
    clock.advance(10)
    body = client.get("/api/spotify").get_json()
    assert (body["title"], body["stale"]) == ("Next", False)
    assert upstream.count("GET", NOW) == 3


@pytest.mark.parametrize("expires_in", [1e300, -5, "3600", None])
def test_an_unusable_token_lifetime_is_a_failed_refresh_and_remembered(app, upstream, clock, expires_in):
    upstream.script("POST", TOKEN, token_reply(expires_in=120), token_reply("access-token-value-2", expires_in))
    upstream.script("GET", NOW, playing())
    client = app.test_client()
    assert client.get("/api/spotify").status_code == 200
    clock.advance(TTL + 120)  # past the cached answer's TTL and the access token's lifetime
    answers = [client.get("/api/spotify") for _ in range(10)]
    assert [(a.status_code, a.get_json()["stale"]) for a in answers] == [(200, True)] * 10
    assert upstream.count("POST", TOKEN) == 2  # the failed refresh is remembered: one token request


def test_an_unusable_token_lifetime_with_nothing_cached_is_upstream_unavailable(app, upstream):
    upstream.script("POST", TOKEN, token_reply(expires_in=1e300))
    upstream.script("GET", NOW, playing())
    answers = [app.test_client().get("/api/spotify") for _ in range(10)]
    assert {(a.status_code, a.get_json()["error"]) for a in answers} == {(503, "upstream_unavailable")}
    assert upstream.count("POST", TOKEN) == 1


def test_nothing_cached_and_spotify_down_is_a_503(app, upstream):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, Reply(503, body="Service Unavailable"))
    response = app.test_client().get("/api/spotify")
    assert response.status_code == 503
    assert response.get_json()["error"] == "upstream_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_a_refused_access_token_is_replaced_once(app, upstream):
    upstream.script("POST", TOKEN, token_reply(ACCESS), token_reply("access-token-value-2"))
    upstream.script("GET", NOW, Reply(401, json={"error": {"status": 401, "message": "The access token expired"}}),
                    playing())
    body = app.test_client().get("/api/spotify").get_json()
    assert body["title"] == "Teardrop"
    assert upstream.count("POST", TOKEN) == 2
    assert [c.headers["authorization"] for c in upstream.calls("GET", NOW)] == [
        f"Bearer {ACCESS}", "Bearer access-token-value-2"]


def test_invalid_grant_asks_for_reauthorization(app, upstream, clock, caplog):
    upstream.script("POST", TOKEN, Reply(400, json={"error": "invalid_grant", "error_description": "Refresh token "
                                                    "revoked"}))
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/spotify")
    assert response.status_code == 503
    assert response.get_json()["error"] == "reauthorization_required"
    assert any(r.levelno == logging.ERROR and "flask spotify authorize" in r.getMessage() for r in caplog.records)
    clock.advance(30)
    assert client.get("/api/spotify").get_json()["error"] == "reauthorization_required"
    assert upstream.count("POST", TOKEN) == 1  # not hammered
    assert upstream.count("GET", NOW) == 0


def test_wrong_client_credentials_are_an_error_without_details(app, upstream, caplog):
    upstream.script("POST", TOKEN, Reply(400, json={"error": "invalid_client", "error_description": "Invalid "
                                                    "client secret"}))
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/api/spotify")
    assert response.status_code == 503 and response.get_json()["error"] == "upstream_unavailable"
    assert "Invalid client secret" not in response.get_data(as_text=True)
    assert any(r.levelno == logging.ERROR and "invalid_client" in r.getMessage() for r in caplog.records)


def test_a_rotated_refresh_token_is_kept_and_used(app, upstream, clock):
    upstream.script("POST", TOKEN, token_reply(refresh_token="refresh-token-value-2"), token_reply())
    upstream.script("GET", NOW, playing())
    client = app.test_client()
    client.get("/api/spotify")
    clock.advance(3600)
    client.get("/api/spotify")
    refreshes = [c.form()["refresh_token"][0] for c in upstream.calls("POST", TOKEN)]
    assert refreshes == [REFRESH, "refresh-token-value-2"]


def test_secrets_never_reach_answers_or_logs(app, upstream, clock, caplog):
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(), Reply(500), Reply(401), Reply(429, headers={"Retry-After": "1"}))
    client = app.test_client()
    texts = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            texts.append(client.get("/api/spotify").get_data(as_text=True))
            clock.advance(120)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (CLIENT_SECRET, REFRESH, ACCESS):
        assert secret not in logged
        assert all(secret not in text for text in texts)


def test_now_playing_takes_the_apps_deps_and_keeps_one_client_per_upstream(app, upstream, clock):
    # called outside any app context: the domain code reads only what it is given
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(), playing(track("Next")))
    deps = app.extensions["vitae.deps"]
    payload, result = nowplaying.now_playing(deps)
    assert (payload["title"], result.stale) == ("Teardrop", False)
    api = deps.client("spotify-api", SpotifyAPI.from_settings)
    accounts = deps.client("spotify-accounts", SpotifyAccounts.from_settings)
    session = api.session
    assert (api.base_url, accounts.base_url) == (f"{upstream.url}/v1", upstream.url)
    clock.advance(TTL)
    assert nowplaying.now_playing(deps)[0]["title"] == "Next"
    assert deps.client("spotify-api", SpotifyAPI.from_settings) is api and api.session is session
    assert upstream.count("GET", NOW) == 2 and upstream.count("POST", TOKEN) == 1


@pytest.mark.parametrize("missing", ["SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN"])
def test_missing_settings_answer_not_configured(make_app, upstream, missing):
    settings = dict(SPOTIFY_API_URL=f"{upstream.url}/v1", SPOTIFY_ACCOUNTS_URL=upstream.url,
                    SPOTIFY_CLIENT_ID=CLIENT_ID, SPOTIFY_CLIENT_SECRET=CLIENT_SECRET, SPOTIFY_REFRESH_TOKEN=REFRESH)
    del settings[missing]
    response = make_app("sqlite", **settings).test_client().get("/api/spotify")
    assert response.status_code == 503
    assert response.get_json()["error"] == "not_configured"
    assert missing in response.get_json()["message"]
    assert upstream.count() == 0


# -- flask spotify authorize -----------------------------------------------------------------

def authorize(app, *args, pasted="AQD-the-code-from-spotify_123"):
    return app.test_cli_runner().invoke(args=["spotify", "authorize", *args], input=pasted + "\n")


def test_authorize_prints_the_address_then_the_refresh_token(app, upstream):
    upstream.script("POST", TOKEN, Reply(200, json={"access_token": "a", "refresh_token": "brand-new-refresh",
                                                    "expires_in": 3600}))
    result = authorize(app)
    assert result.exit_code == 0, result.output
    address = next(line.strip() for line in result.output.splitlines() if "/authorize?" in line)
    query = parse_qs(urlsplit(address).query)
    assert address.startswith(f"{upstream.url}/authorize?")
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) == {"user-read-currently-playing", "user-read-recently-played"}
    assert query["redirect_uri"] == ["http://127.0.0.1:8888/callback"] and query["state"][0]
    assert "SPOTIFY_REFRESH_TOKEN=brand-new-refresh" in result.output
    exchange = upstream.calls("POST", TOKEN)[0].form()
    assert exchange == {"grant_type": ["authorization_code"], "code": ["AQD-the-code-from-spotify_123"],
                        "redirect_uri": ["http://127.0.0.1:8888/callback"]}


def test_authorize_asks_for_unset_credentials_and_uses_the_apps_accounts_address(make_app, upstream):
    upstream.script("POST", TOKEN, Reply(200, json={"access_token": "a", "refresh_token": "brand-new-refresh"}))
    app = make_app("sqlite", SPOTIFY_ACCOUNTS_URL=upstream.url, UPSTREAM_TIMEOUT="5")
    result = authorize(app, pasted=f"{CLIENT_ID}\n{CLIENT_SECRET}\nAQD-the-code-from-spotify_123")
    assert result.exit_code == 0, result.output
    address = next(line.strip() for line in result.output.splitlines() if "/authorize?" in line)
    assert address.startswith(f"{upstream.url}/authorize?")
    assert parse_qs(urlsplit(address).query)["client_id"] == [CLIENT_ID]
    assert upstream.calls("POST", TOKEN)[0].headers["authorization"] == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert "SPOTIFY_REFRESH_TOKEN=brand-new-refresh" in result.output
    assert CLIENT_SECRET not in result.output


def test_authorize_accepts_the_pasted_redirect_address_only_with_its_state(app, upstream):
    result = authorize(app, pasted="http://127.0.0.1:8888/callback?code=AQDcode12345&state=someone-elses")
    assert result.exit_code != 0
    assert "state" in result.output
    assert upstream.count() == 0
    result = authorize(app, pasted="http://127.0.0.1:8888/callback?error=access_denied")
    assert result.exit_code != 0 and "access_denied" in result.output


def test_authorize_writes_an_env_file_only_when_asked(app, upstream, tmp_path):
    upstream.script("POST", TOKEN, Reply(200, json={"access_token": "a", "refresh_token": "brand-new-refresh"}))
    before = set(os.listdir(tmp_path))
    assert authorize(app).exit_code == 0
    assert set(os.listdir(tmp_path)) == before  # nothing written unasked
    env = tmp_path / "vitae.env"
    env.write_text("GITHUB_USERNAME=octo\nSPOTIFY_REFRESH_TOKEN=old\n")
    result = authorize(app, "--env-file", str(env))
    assert result.exit_code == 0, result.output
    assert env.read_text() == "GITHUB_USERNAME=octo\nSPOTIFY_REFRESH_TOKEN=brand-new-refresh\n"
    assert "brand-new-refresh" not in result.output
    fresh = tmp_path / "new.env"
    assert authorize(app, "--env-file", str(fresh)).exit_code == 0
    assert fresh.read_text() == "SPOTIFY_REFRESH_TOKEN=brand-new-refresh\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_authorize_reports_a_refused_code_without_secrets(app, upstream):
    upstream.script("POST", TOKEN, Reply(400, json={"error": "invalid_grant", "error_description": "Invalid "
                                                    "authorization code"}))
    result = authorize(app)
    assert result.exit_code != 0
    assert "did not give a token" in result.output
    assert CLIENT_SECRET not in result.output


def test_a_lone_surrogate_in_a_track_name_enters_as_a_replacement_character(app, upstream):
    """JSON may escape half a UTF-16 pair ("\\ud800"): the widget answers U+FFFD in its place, never a 5xx."""
    upstream.script("POST", TOKEN, token_reply())
    upstream.script("GET", NOW, playing(track("Tear\ud800drop", artists=[{"name": "Massive \udfffAttack"}])))
    response = app.test_client().get("/api/spotify")
    assert response.status_code == 200
    body = response.get_json()
    assert body["title"] == "Tear\ufffddrop" and body["artists"] == ["Massive \ufffdAttack"]
    assert b"\\ud" not in response.data.lower()
