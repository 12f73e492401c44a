"""No configured secret comes back out through an upstream's words: upstreams that echo everything they
receive (path, headers, body) in their error answers, and every place their words could reach checked for
every spelling of every secret: log records and stdout, stored outbox errors, `flask outbox` output and
HTTP answers."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote, quote_plus

import pytest

from service.contact.turnstile import ERROR_CODES
from service.core import redaction
from service.storage import open_storage

from ..fakes import Reply, echo

SECRETS = {
    "TELEGRAM_BOT_TOKEN": "555000111:AAF-echo_Secret-TOKEN-value",
    "TURNSTILE_SECRET": "0x4AAAAAAA-echo-turnstile-secret",
    "SPOTIFY_CLIENT_SECRET": "spotify-echo-client-secret-9f8e",
    "SPOTIFY_REFRESH_TOKEN": "AQD-echo-refresh-token-7c6b5a",
    "GITHUB_TOKEN": "github_pat_echo_11AAAA_secret",
    "SECRET_KEY": "echo-secret-key-for-the-visitor-hash",
    "ORIGIN_SECRET": "echo-origin-secret-value",
}
CLIENT_ID = "echoclient01"
SITEVERIFY = "/turnstile/v0/siteverify"
GOOD = {"name": "Ada", "email": "ada@example.com", "message": "Hello."}


def spellings() -> dict[str, str]:
    """Every form a secret travels in: as written, URL-encoded, the Basic value Spotify's token call sends,
    and the key half of the bot token on its own."""
    found = {}
    for name, value in SECRETS.items():
        found.update({f"{name}": value, f"{name} quoted": quote(value, safe=""),
                      f"{name} quote_plus": quote_plus(value)})
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRETS['SPOTIFY_CLIENT_SECRET']}".encode()).decode()
    found["Basic authorization"] = basic
    found["bot token key"] = SECRETS["TELEGRAM_BOT_TOKEN"].split(":", 1)[1]
    return found


def assert_nowhere(texts: dict[str, str]) -> None:
    leaks = [(where, form) for where, text in texts.items() for form, value in spellings().items() if value in text]
    assert not leaks, leaks


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_echoing_upstreams_leak_no_secret(make_app, upstream, clock, caplog, capsys, backend):
    caplog.set_level(logging.DEBUG)  # urllib3 logs request paths, the bot token's place, at DEBUG
    upstream.fallback = echo(400)
    upstream.script("POST", SITEVERIFY, echo(200, success=False), Reply(200, json={"success": True}))
    bot_path = f"/bot{SECRETS['TELEGRAM_BOT_TOKEN']}/sendMessage"
    # first an HTML page whose reason line carries the path, then JSON whose description repeats everything
    upstream.script("POST", bot_path, echo(502, as_json=False), echo(400))
    app = make_app(backend, **SECRETS, TELEGRAM_CHAT_ID="1", TELEGRAM_API_URL=upstream.url, TELEGRAM_TIMEOUT="1",
                   OUTBOX_INLINE_SECONDS="1", TURNSTILE_VERIFY_URL=upstream.url + SITEVERIFY,
                   SPOTIFY_CLIENT_ID=CLIENT_ID, SPOTIFY_ACCOUNTS_URL=upstream.url, SPOTIFY_API_URL=upstream.url,
                   GITHUB_USERNAME="octo", GITHUB_API_URL=upstream.url, BLOG_REPO="octo/blog",
                   UPSTREAM_TIMEOUT="1")
    client = app.test_client()
    client.environ_base["HTTP_X_ORIGIN_VERIFY"] = SECRETS["ORIGIN_SECRET"]
    texts: dict[str, str] = {}

    def answer(label, response):
        texts[f"answer {label}"] = f"{response.status} {response.headers} {response.get_data(as_text=True)}"
        return response

    failed = answer("turnstile", client.post("/api/contact", json={**GOOD, "cf-turnstile-response": "t1"}))
    assert failed.status_code == 400 and failed.json["error"] == "turnstile_failed"
    assert set(failed.json["codes"]) <= ERROR_CODES
    accepted = answer("contact", client.post("/api/contact", json={**GOOD, "cf-turnstile-response": "t2"}))
    assert accepted.status_code == 202
    for url in ("/api/spotify", "/api/github", "/api/blog", "/api/blog/1"):
        assert answer(url, client.get(url)).status_code in (404, 503)

    runner = app.test_cli_runner()
    commands = [["outbox", "status"], ["outbox", "status", "--json"], ["outbox", "list"], ["outbox", "list", "--json"]]
    for args in commands:
        texts[f"cli {args} pending"] = runner.invoke(args=args).output
    clock.advance(3600)
    texts["cli deliver"] = runner.invoke(args=["outbox", "deliver"]).output
    for args in commands:
        texts[f"cli {args} dead"] = runner.invoke(args=args).output

    storage = open_storage(app.config["STORAGE_URL"])
    [dead] = storage.items("outbox", "dead")
    texts["stored"] = repr(list(storage.export()))
    storage.close()
    texts["log records"] = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}"
                                     for r in caplog.records)
    captured = capsys.readouterr()
    texts["stdout"], texts["stderr"] = captured.out, captured.err

    # the upstreams did hear every secret, and their words did come back to us, with the secrets taken out
    heard = repr(upstream.requests)
    assert SECRETS["TELEGRAM_BOT_TOKEN"] in heard and SECRETS["TURNSTILE_SECRET"] in heard
    assert spellings()["Basic authorization"] in heard and SECRETS["GITHUB_TOKEN"] in heard
    assert f"/bot{redaction.HIDDEN}/sendMessage" in dead.last_error and "POST" in dead.last_error
    assert any(f"/bot{redaction.HIDDEN}/sendMessage" in text for where, text in texts.items() if "pending" in where)
    assert_nowhere(texts)


def test_every_spelling_of_a_registered_secret_is_replaced():
    secret = "s3cr3t/with:odd+chars value"
    redaction.register([secret, None, "", "abc"])  # empty and very short values are not registered
    for client_id in ("a", "ab", "abc", "a-much-longer-client-id"):
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        assert basic not in redaction.redact(f"Authorization: Basic {basic}")
    for form in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret)):
        assert redaction.redact(f"x{form}y") == f"x{redaction.HIDDEN}y"
    assert redaction.redact("/bot123:unregistered-token_x/getMe") == f"/bot{redaction.HIDDEN}/getMe"
    assert redaction.redact("the abc of /bottles/12") == "the abc of /bottles/12"


def test_errors_stored_before_redaction_are_hidden_when_shown(make_app, clock):
    # a record written by an older version may quote the token: `flask outbox` shows it redacted anyway
    token = SECRETS["TELEGRAM_BOT_TOKEN"]
    app = make_app(TELEGRAM_BOT_TOKEN=token, TELEGRAM_CHAT_ID="1")
    storage = open_storage(app.config["STORAGE_URL"])
    for state in ("pending", "dead"):
        storage.enqueue("outbox", {**GOOD, "number": 1, "received_at": clock.now}, now=clock.now)
        [item] = storage.claim("outbox", lease=60, now=clock.now)
        error = f"Telegram answered 400: POST /bot{token}/sendMessage ({quote(token, safe='')})"
        if state == "pending":
            storage.release("outbox", item.id, item.token, ready_at=clock.now + 60, error=error, now=clock.now)
        else:
            storage.bury("outbox", item.id, item.token, reason=error, now=clock.now)
    storage.close()
    runner = app.test_cli_runner()
    outputs = {" ".join(args): runner.invoke(args=args).output
               for args in (["outbox", "status"], ["outbox", "status", "--json"], ["outbox", "list"],
                            ["outbox", "list", "--json"])}
    assert all("Telegram answered 400" in output for output in outputs.values()), outputs
    assert_nowhere(outputs)


def test_a_log_line_or_traceback_quoting_a_secret_is_redacted(make_app, caplog, capsys):
    make_app(GITHUB_TOKEN=SECRETS["GITHUB_TOKEN"])
    log = logging.getLogger("service.anything")
    try:
        raise RuntimeError(f"GitHub said: Authorization: Bearer {SECRETS['GITHUB_TOKEN']}")
    except RuntimeError:
        log.exception("refresh failed with %s", quote(SECRETS["GITHUB_TOKEN"], safe=""))
    log.warning("an ordinary line %s", "stays as it is")
    [failed, ordinary] = caplog.records[-2:]
    assert failed.getMessage() == "refresh failed with <hidden>"
    assert "Bearer <hidden>" in failed.exc_text
    assert ordinary.args == ("stays as it is",)  # untouched when there is nothing to hide
    texts = {"caplog": caplog.text, "stdout": capsys.readouterr().out}
    assert "Bearer <hidden>" in texts["stdout"]
    assert_nowhere(texts)
