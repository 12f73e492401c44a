"""Signing in to the owner's stats over a real server: the sign-in limit under a concurrent burst, server-side
sessions that sign-out ends, and sign-in/out refusing other sites' posts."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlencode

import pytest

from ..browser import LiveService
from ..helpers import BACKENDS, run_threads

TOKEN = "correct horse battery staple"
#: Concurrent guesses: under redis-py's default pool of 100 connections per process.
BURST = 90
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post(service: LiveService, path: str, token: str | None = None, *, source: str = "127.0.0.1",
         headers: dict | None = None, ready: threading.Barrier | None = None) -> http.client.HTTPResponse:
    """POST ``path`` to the live service from loopback address ``source`` (another address: another visitor);
    with ``ready``, connect first and send once every party of the barrier has connected."""
    connection = http.client.HTTPConnection("127.0.0.1", service.server.server_port, timeout=30,
                                            source_address=(source, 0))
    if ready is not None:
        connection.connect()
        ready.wait(timeout=30)
    body = urlencode({"token": token}) if token is not None else ""
    connection.request("POST", path, body=body, headers={**FORM, **(headers or {})})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer


def get(service: LiveService, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", service.server.server_port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer


@pytest.fixture
def live(make_app):
    services = []

    def start(backend: str = "sqlite", **settings) -> LiveService:
        service = LiveService(make_app(backend, STATS_TOKEN=TOKEN, **settings))
        services.append(service)
        return service
    yield start
    for service in services:
        service.stop()


@pytest.fixture
def comparisons(monkeypatch):
    """Every token comparison the app makes, counted; each takes 20 ms, as on a busy server, so that a burst's
    requests overlap between the limit and the comparison."""
    from service.stats import access

    compared = []
    real = access.matches

    def counted(given: str, token: str) -> bool:
        compared.append(given)
        time.sleep(0.02)
        return real(given, token)
    monkeypatch.setattr(access, "matches", counted)
    return compared


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_burst_of_wrong_guesses_is_compared_at_most_the_limit(live, comparisons, backend):
    service = live(backend, STATS_LOGIN_RATE_LIMIT="10/hour")
    answers: list[int] = []
    lock, ready = threading.Lock(), threading.Barrier(BURST)

    def guess(n: int) -> None:
        status = post(service, "/stats/login", f"wrong-{n}", ready=ready).status
        with lock:
            answers.append(status)
    run_threads([threading.Thread(target=guess, args=(n,)) for n in range(BURST)], timeout=60)
    # 503: the store timed out under the burst (moto on a loaded machine); refused, never compared
    assert len(answers) == BURST and set(answers) <= {401, 429, 503}
    assert len(comparisons) <= 10, f"{len(comparisons)} wrong guesses compared"
    assert answers.count(401) == len(comparisons)  # a 401 is a guess that was compared
    assert answers.count(429) >= BURST - 10 - answers.count(503)
    for n in range(11):  # fill what timeouts left of the window, one guess at a time
        if post(service, "/stats/login", f"late-{n}").status == 429:
            break
    assert len(comparisons) <= 10  # (fewer when a slot was taken but its answer timed out)
    # the window is full: the right token is not compared either ...
    assert post(service, "/stats/login", TOKEN).status == 429
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert get(service, "/api/stats", bearer).status == 429
    # ... but the owner signs in from another address
    signed_in = post(service, "/stats/login", TOKEN, source="127.0.0.2")
    assert signed_in.status == 303 and "vitae_stats=" in signed_in.headers["Set-Cookie"]


def test_correct_tokens_do_not_use_up_the_limit(live):
    service = live(STATS_LOGIN_RATE_LIMIT="3/hour")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(10):  # the owner's script polling the API: every call is compared, none is refused
        assert get(service, "/api/stats", bearer).status == 200
    for n in range(3):
        assert post(service, "/stats/login", f"wrong-{n}").status == 401
    assert post(service, "/stats/login", "wrong-again").status == 429
    assert post(service, "/stats/login", TOKEN).status == 429


# -- sessions and other sites' posts -------------------------------------------------------------------

def signed_in(make_app, backend="sqlite", **settings):
    """A test client signed in as the owner, and the session cookie's value."""
    client = make_app(backend, STATS_TOKEN=TOKEN, **settings).test_client()
    answer = client.post("/stats/login", data={"token": TOKEN}, headers={"Origin": "http://localhost"})
    assert answer.status_code == 303, answer.data
    return client, client.get_cookie("vitae_stats", path="/stats").value


@pytest.mark.parametrize("backend", BACKENDS)
def test_sign_out_ends_the_session_on_the_server(make_app, backend):
    client, cookie = signed_in(make_app, backend)
    assert client.get("/stats").status_code == 200
    copied = client.application.test_client()  # someone who copied the cookie before sign-out
    copied.set_cookie("vitae_stats", cookie, path="/stats")
    assert copied.get("/stats").status_code == 200
    out = client.post("/stats/logout", headers={"Origin": "http://localhost"})
    assert out.status_code == 303 and "vitae_stats=;" in out.headers["Set-Cookie"]
    assert client.get("/stats").status_code == 401
    assert copied.get("/stats").status_code == 401 and copied.get("/stats/pages.csv").status_code == 401
    # a new sign-in is a new session; the old cookie stays dead
    again, fresh = signed_in(make_app, backend)
    assert fresh != cookie


def test_a_validly_signed_cookie_needs_a_session_the_server_holds(make_app):
    from service.stats import access

    client, cookie = signed_in(make_app, STATS_SESSION_SECONDS="600")
    app = client.application
    # a cookie signed with the app's own key, but naming no session the server holds
    with app.test_request_context():
        forged = access._serializer().dumps("owner")
    other = app.test_client()
    other.set_cookie("vitae_stats", forged, path="/stats")
    assert other.get("/stats").status_code == 401
    storage = app.extensions["vitae.storage"]
    sessions = [record for record in storage.export() if record.get("key", "").startswith("stats-session:")]
    assert len(sessions) == 1 and cookie not in repr(sessions)  # stored hashed, expiring
    assert sessions[0]["expires_at"] is not None


@pytest.mark.parametrize("path", ["/stats/login", "/stats/logout"])
@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_other_sites_cannot_sign_in_or_out(make_app, path, headers):
    client, _ = signed_in(make_app)
    answer = client.post(path, data={"token": TOKEN}, headers=headers)
    assert answer.status_code == 403 and answer.get_json()["error"] == "origin_not_allowed"
    assert "Set-Cookie" not in answer.headers
    assert client.get("/stats").status_code == 200  # still signed in


def test_the_site_itself_and_clients_without_origin_may_sign_in_and_out(make_app):
    client = make_app(STATS_TOKEN=TOKEN, SITE_URL="https://me.example").test_client()
    for headers in ({"Origin": "https://me.example"}, {"Sec-Fetch-Site": "same-origin"}, {}):
        assert client.post("/stats/login", data={"token": TOKEN}, headers=headers).status_code == 303
        assert client.post("/stats/logout", headers=headers).status_code == 303
