"""POST /api/contact through the HTTP API: validation, honeypot, rate limits, origin, body cap, Turnstile,
and the 202 that is only given once the message is stored."""

from __future__ import annotations

import json
import random
import time

import pytest

from service.contact.turnstile import Turnstile
from service.storage import DEAD, DONE, PENDING, open_storage

from ..fakes import Reply, echo
from ..helpers import BACKENDS, PROMPTLY
from ..servers import free_port

IP = "203.0.113.7"
GOOD = {"name": "Ada Lovelace", "email": "ada@example.com", "subject": "Engines", "message": "Hello there.\nBye."}
SITEVERIFY = "/turnstile/v0/siteverify"


def post(client, body=None, ip=IP, **kwargs):
    """POST as an API client (JSON ``Accept``); a browser's plain form post is in test_contact_form_pages.py."""
    kwargs["headers"] = {"Accept": "application/json", **kwargs.get("headers", {})}
    if body is not None:
        kwargs["json"] = body
    return client.post("/api/contact", environ_base={"REMOTE_ADDR": ip}, **kwargs)


def stored(app):
    """The outbox as a fresh connection to the app's store sees it (not the app's own connection)."""
    storage = open_storage(app.config["STORAGE_URL"])
    try:
        return {state: storage.items("outbox", state) for state in (PENDING, DONE, DEAD)}
    finally:
        storage.close()


def assert_invalid(response, fields):
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid" and body["message"]
    assert body["fields"].keys() == fields.keys(), body["fields"]
    for name, fragment in fields.items():
        assert fragment in body["fields"][name], (name, body["fields"][name])


# -- acceptance ------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_accepted_message_is_stored_before_the_answer(make_app, clock, backend):
    app = make_app(backend)
    response = post(app.test_client(), {**GOOD, "name": "  Ada Lovelace \t", "extra": {"ignored": True},
                                         "page": "/blog/12?x=1"})
    assert response.status_code == 202
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "accepted" and body.keys() == {"status", "id"}
    [item] = stored(app)[PENDING]
    assert item.id == body["id"]
    assert item.created_at == clock.now
    assert item.payload == {"name": "Ada Lovelace", "email": "ada@example.com", "subject": "Engines",
                            "message": "Hello there.\nBye.", "page": "/blog/12", "number": 1,
                            "received_at": clock.now, "channel": "telegram"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_202_when_the_store_cannot_take_the_message(make_app, backend):
    # the store is unreachable: the visitor is told to retry, never told "accepted"
    down = {"sqlite": "sqlite:////proc/no-such-dir/vitae.db", "redis": f"redis://127.0.0.1:{free_port()}/0",
            "dynamodb": f"dynamodb://t?region=us-east-1&endpoint_url=http://127.0.0.1:{free_port()}"}[backend]
    app = make_app(backend, STORAGE_URL=down)
    response = post(app.test_client(), GOOD)
    assert response.status_code == 503
    assert response.get_json()["error"] == "storage_unavailable"


def test_form_encoded_and_multipart_bodies_are_accepted(make_app):
    app = make_app()
    client = app.test_client()
    assert post(client, data={**GOOD, "message": "line one\r\nline two"}).status_code == 202
    assert post(client, data=GOOD, content_type="multipart/form-data").status_code == 202
    messages = [item.payload["message"] for item in stored(app)[PENDING]]
    assert sorted(messages) == ["Hello there.\nBye.", "line one\nline two"]


# -- validation table ------------------------------------------------------------------------------

LOCAL_64 = "l" * 64
DOMAIN_189 = ".".join(["d" * 62, "d" * 62, "d" * 59, "com"])  # 64 + 1 + 189 = 254 characters
CASES = [
    # (case id, changes to GOOD (None deletes the field), expected field problems or None when accepted)
    ("name-1-char", {"name": "A"}, None),
    ("name-100", {"name": "n" * 100}, None),
    ("name-101", {"name": "n" * 101}, {"name": "at most 100"}),
    ("name-empty", {"name": ""}, {"name": "required"}),
    ("name-blank", {"name": " \u3000 "}, {"name": "required"}),
    ("name-missing", {"name": None}, {"name": "required"}),
    ("name-null", {"name": "__null__"}, {"name": "required"}),
    ("name-newline", {"name": "Ada\nLovelace"}, {"name": "one line"}),
    ("name-nul", {"name": "Ada\x00"}, {"name": "control"}),
    ("name-tab", {"name": "Ada\tL"}, {"name": "control"}),
    ("name-escape", {"name": "Ada\x1b[31m"}, {"name": "control"}),
    ("name-nfc-100", {"name": "e\u0301" * 100}, None),  # 200 code points, 100 after NFC
    ("name-rtl-override", {"name": "Ada \u202egnp.exe"}, {"name": "bidirectional"}),
    ("name-embedding", {"name": "Ada \u202aL"}, {"name": "bidirectional"}),
    ("name-isolate", {"name": "Ada \u2066x\u2069"}, {"name": "bidirectional"}),
    ("name-line-separator", {"name": "Ada\u2028Lovelace"}, {"name": "one line"}),
    ("name-arabic", {"name": "\u0622\u062f\u0627"}, None),  # right-to-left letters are fine, only controls are not
    ("subject-override", {"subject": "Invoice \u202dfdp.exe"}, {"subject": "bidirectional"}),
    ("subject-paragraph-separator", {"subject": "one\u2029two"}, {"subject": "one line"}),
    ("email-override", {"email": "ada\u202e@example.com"}, {"email": "bidirectional"}),
    ("message-line-separator", {"message": "one\u2028two"}, None),  # the message may have lines
    ("name-number", {"name": 42}, {"name": "text"}),
    ("name-array", {"name": ["Ada"]}, {"name": "text"}),
    ("name-object", {"name": {"first": "Ada"}}, {"name": "text"}),
    ("name-bool", {"name": True}, {"name": "text"}),
    ("email-254", {"email": f"{LOCAL_64}@{DOMAIN_189}"}, None),
    ("email-255", {"email": f"{LOCAL_64}@d{DOMAIN_189}"}, {"email": "at most 254"}),
    ("email-local-65", {"email": f"l{LOCAL_64}@example.com"}, {"email": "valid"}),
    ("email-plus-tag", {"email": "ada+site@mail.example.co.uk"}, None),
    ("email-idn", {"email": "jörg@exämple.de"}, None),
    ("email-no-at", {"email": "ada.example.com"}, {"email": "valid"}),
    ("email-two-at", {"email": "ada@@example.com"}, {"email": "valid"}),
    ("email-no-dot", {"email": "ada@localhost"}, {"email": "valid"}),
    ("email-space", {"email": "ada lovelace@example.com"}, {"email": "valid"}),
    ("email-no-break-space", {"email": "ada\u00a0l@example.com"}, {"email": "valid"}),
    ("email-double-dot", {"email": "ada@example..com"}, {"email": "valid"}),
    ("email-leading-dot", {"email": ".ada@example.com"}, {"email": "valid"}),
    ("email-hyphen-label", {"email": "ada@-example.com"}, {"email": "valid"}),
    ("email-numeric-tld", {"email": "ada@10.0.0.1"}, {"email": "valid"}),
    ("email-angle", {"email": "<ada@example.com>"}, {"email": "valid"}),
    ("email-header-injection", {"email": "ada@example.com\nBcc: x@y.z"}, {"email": "one line"}),
    ("email-missing", {"email": None}, {"email": "required"}),
    ("message-4000", {"message": "m" * 4000}, None),
    ("message-4001", {"message": "m" * 4001}, {"message": "at most 4000"}),
    ("message-empty", {"message": ""}, {"message": "required"}),
    ("message-only-newlines", {"message": "\n\r\n \n"}, {"message": "required"}),
    ("message-bell", {"message": "ding\x07"}, {"message": "control"}),
    ("message-nel", {"message": "next\x85line"}, {"message": "control"}),
    ("message-del", {"message": "rub\x7fout"}, {"message": "control"}),
    ("message-lone-surrogate", {"message": "__surrogate__"}, {"message": "invalid characters"}),
    ("message-list", {"message": ["a", "b"]}, {"message": "text"}),
    ("message-float", {"message": 1.5}, {"message": "text"}),
    ("subject-missing", {"subject": None}, None),
    ("subject-null", {"subject": "__null__"}, None),
    ("subject-150", {"subject": "s" * 150}, None),
    ("subject-151", {"subject": "s" * 151}, {"subject": "at most 150"}),
    ("subject-number", {"subject": 7}, {"subject": "text"}),
    ("everything-wrong", {"name": [], "email": {}, "message": 12, "subject": False},
     {"name": "text", "email": "text", "message": "text", "subject": "text"}),
]


def _body(changes) -> str:
    data = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    text = json.dumps(data)
    # JSON that Python would not produce itself: null and an unpaired surrogate escape
    return text.replace('"__null__"', "null").replace('"__surrogate__"', '"bad \\ud800 char"')


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_table(make_app, backend):
    app = make_app(backend, CONTACT_RATE_LIMIT="off", CONTACT_GLOBAL_RATE_LIMIT="off")
    client = app.test_client()
    accepted = 0
    for case, changes, problems in CASES:
        response = post(client, data=_body(changes), content_type="application/json")
        if problems is None:
            assert response.status_code == 202, (case, response.get_json())
            accepted += 1
        else:
            assert_invalid(response, problems)
    assert len(stored(app)[PENDING]) == accepted


def test_stored_text_is_normalised(make_app):
    app = make_app()
    post(app.test_client(), {**GOOD, "name": " e\u0301clair ", "message": "\r\n  caf\u0065\u0301\r\nline\r  "})
    [item] = stored(app)[PENDING]
    assert item.payload["name"] == "\u00e9clair"
    assert item.payload["message"] == "caf\u00e9\nline"


@pytest.mark.parametrize("kwargs, status, code", [
    ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": b"\xff\xfe\x00garbage", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": "", "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": "[" * 20_000 + "]" * 20_000, "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": "1" * 5000, "content_type": "application/json"}, 400, "invalid_json"),
    ({"data": '["a list"]', "content_type": "application/json"}, 400, "invalid_body"),
    ({"data": '"a string"', "content_type": "application/json"}, 400, "invalid_body"),
    ({"data": json.dumps(GOOD), "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ({"data": json.dumps(GOOD)}, 415, "unsupported_media_type"),
    ({"data": "<xml/>", "content_type": "application/xml"}, 415, "unsupported_media_type"),
    ({"data": "name=a&name=b&email=ada%40example.com&message=hi",
      "content_type": "application/x-www-form-urlencoded"}, 400, "invalid"),
], ids=["broken", "not-utf8", "empty", "deeply-nested", "huge-int", "array", "string", "text-plain",
        "no-type", "xml", "repeated-form-field"])
def test_bad_bodies_get_clear_errors(make_app, kwargs, status, code):
    app = make_app()
    response = post(app.test_client(), **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"] == code
    assert not stored(app)[PENDING]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bodies_over_the_cap_get_413(make_app, backend):
    app = make_app(backend, MAX_BODY_BYTES="2048")
    client = app.test_client()
    big = {**GOOD, "message": "m" * 3000}
    assert post(client, big).status_code == 413
    assert post(client, data={**big}).status_code == 413
    assert post(client, data={**big}, content_type="multipart/form-data").status_code == 413
    assert post(client, {**GOOD, "message": "m" * 1500}).status_code == 202
    assert len(stored(app)[PENDING]) == 1


def test_no_garbled_body_or_odd_field_value_gives_a_server_error(make_app):
    app = make_app(CONTACT_RATE_LIMIT="off", CONTACT_GLOBAL_RATE_LIMIT="off")
    client = app.test_client()
    rng = random.Random(4)
    alphabet = ['"', "{", "}", "[", "]", ":", ",", "\\", "u", "d", "8", "0", "a", "\x00", "é", "😀", "\n", " ", "1",
                "null", "true", "name", "email", "message", "@", "."]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for content_type in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = post(client, data=text.encode("utf-8", "surrogatepass"), content_type=content_type)
            assert response.status_code < 500, (text, content_type, response.get_data(as_text=True))
            if response.status_code >= 400:  # refused in our JSON error shape
                assert set(response.get_json()) >= {"error", "message"}, (text, content_type)
    for value in (None, 0, -1, 1e308, [], {}, [[]], "", "x" * 5000, {"a": [1, {"b": None}]}):
        for field in ("name", "email", "message", "subject", "website", "page", "cf-turnstile-response"):
            response = post(client, {**GOOD, field: value})
            assert response.status_code in (202, 400), (field, value, response.get_json())
            assert response.status_code == 202 or set(response.get_json()) >= {"error", "message"}


# -- honeypot ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_filled_honeypot_gets_the_same_202_and_is_dropped(make_app, upstream, backend):
    app = make_app(backend, TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_CHAT_ID="1", TELEGRAM_API_URL=upstream.url)
    client = app.test_client()
    dropped = post(client, {**GOOD, "website": "https://spam.example"})
    assert dropped.status_code == 202
    assert dropped.get_json().keys() == {"status", "id"} and dropped.get_json()["status"] == "accepted"
    assert len(dropped.get_json()["id"]) == len(post(client, GOOD).get_json()["id"])  # looks like a real id
    # a bot filling everything, junk included, is dropped the same way
    assert post(client, data="website=x&name=", content_type="application/x-www-form-urlencoded").status_code == 202
    assert [item.payload["name"] for item in stored(app)[PENDING] + stored(app)[DONE]] == ["Ada Lovelace"]
    assert post(client, {**GOOD, "website": "  "}).status_code == 202  # blank is not filled


# -- rate limits ------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_per_address_limit_with_retry_after(make_app, clock, backend):
    app = make_app(backend)  # defaults: 5/hour per address, 100/day overall
    client = app.test_client()
    clock.now = 1_800_000_000.0 + 600  # ten minutes into an hour window
    for _ in range(5):
        assert post(client, GOOD).status_code == 202
    refused = post(client, GOOD)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3000"
    assert refused.get_json()["error"] == "rate_limited" and refused.get_json()["retry_after"] == 3000
    # invalid submissions are answered 400 without spending the allowance, and a refusal stores nothing
    assert post(client, {**GOOD, "email": "nope"}).status_code == 400
    assert len(stored(app)[PENDING]) == 5
    # another address has its own allowance
    assert post(client, GOOD, ip="198.51.100.20").status_code == 202
    clock.advance(2999)
    assert post(client, GOOD).headers["Retry-After"] == "1"
    clock.advance(1)
    assert post(client, GOOD).status_code == 202


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_limit_across_addresses(make_app, clock, backend):
    app = make_app(backend, CONTACT_RATE_LIMIT="off", CONTACT_GLOBAL_RATE_LIMIT="3/day")
    client = app.test_client()
    clock.now = 1_800_000_000.0  # 08:00 UTC
    for n in range(3):
        assert post(client, GOOD, ip=f"198.51.100.{n}").status_code == 202
    refused = post(client, GOOD, ip="198.51.100.99")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(16 * 3600)
    clock.advance(16 * 3600)
    assert post(client, GOOD, ip="198.51.100.99").status_code == 202


@pytest.mark.server
def test_limits_hold_across_app_instances(make_app, clock):
    # two workers (or Lambda instances) share the limit through the store
    first = make_app("redis", CONTACT_RATE_LIMIT="2/hour")
    second = make_app("redis", STORAGE_URL=first.config["STORAGE_URL"], CONTACT_RATE_LIMIT="2/hour")
    assert post(first.test_client(), GOOD).status_code == 202
    assert post(second.test_client(), GOOD).status_code == 202
    assert post(first.test_client(), GOOD).status_code == 429
    assert post(second.test_client(), GOOD).status_code == 429


# -- origin ------------------------------------------------------------------------------------------

def test_without_allowed_origins_only_the_site_itself_may_post_from_a_browser(make_app):
    # the origin guard runs before any storage call: one backend shows it
    app = make_app("sqlite", SITE_URL="https://me.example")
    client = app.test_client()
    for origin in ("https://evil.example", "null", "https://me.example.evil.example", "http://me.example"):
        refused = post(client, GOOD, headers={"Origin": origin})
        assert refused.status_code == 403 and refused.get_json()["error"] == "origin_not_allowed", origin
    assert not stored(app)[PENDING]
    assert post(client, GOOD, headers={"Origin": "https://me.example"}).status_code == 202
    assert post(client, GOOD, headers={"Origin": "http://localhost"}).status_code == 202  # the host it was sent to
    assert post(client, GOOD).status_code == 202  # no Origin (curl, a server): as before
    assert client.post("/api/visitors", json={"path": "/"}, headers={"Origin": "https://evil.example"}).status_code \
        == 403


# -- Turnstile ---------------------------------------------------------------------------------------

def _turnstile_app(make_app, upstream, backend="sqlite"):
    return make_app(backend, TURNSTILE_SITE_KEY="0x4AAAAAAAtestsitekey", TURNSTILE_SECRET="0x-test-secret",
                    TURNSTILE_VERIFY_URL=upstream.url + SITEVERIFY)


@pytest.mark.parametrize("backend", BACKENDS)
def test_turnstile_pass_and_fail(make_app, upstream, backend):
    app = _turnstile_app(make_app, upstream, backend)
    client = app.test_client()
    upstream.script("POST", SITEVERIFY,
                    Reply(200, json={"success": True, "error-codes": [], "hostname": "me.example"}),
                    Reply(200, json={"success": False, "error-codes": ["invalid-input-response"]}))
    assert post(client, {**GOOD, "cf-turnstile-response": "token-ok"}).status_code == 202
    [check] = upstream.calls("POST", SITEVERIFY)
    assert check.form() == {"secret": ["0x-test-secret"], "response": ["token-ok"], "remoteip": [IP]}
    failed = post(client, {**GOOD, "cf-turnstile-response": "token-bad"})
    assert failed.status_code == 400
    assert failed.get_json()["error"] == "turnstile_failed"
    assert failed.get_json()["codes"] == ["invalid-input-response"]
    [item] = stored(app)[PENDING]
    assert item.payload["turnstile"] == "passed"

    def rebuild(settings):
        raise AssertionError("the app's Turnstile client was built again")

    turnstile = app.extensions["vitae.deps"].client("turnstile", rebuild)  # one client per app, both checks
    assert isinstance(turnstile, Turnstile) and turnstile.base_url == upstream.url + SITEVERIFY


def test_turnstile_answers_pass_on_only_documented_codes(make_app, upstream):
    # a siteverify that echoes the request would otherwise hand the secret to the visitor
    client = _turnstile_app(make_app, upstream).test_client()
    upstream.script("POST", SITEVERIFY, echo(200, success=False),
                    Reply(200, json={"success": False, "error-codes": [
                        "timeout-or-duplicate", "secret=0x-test-secret", "timeout-or-duplicate", 7, None,
                        "internal-error"]}))
    echoed = post(client, {**GOOD, "cf-turnstile-response": "t"})
    assert echoed.status_code == 400 and echoed.get_json()["codes"] == []
    mixed = post(client, {**GOOD, "cf-turnstile-response": "t"})
    assert mixed.get_json()["codes"] == ["timeout-or-duplicate", "internal-error"]
    for answer in (echoed, mixed):
        assert "0x-test-secret" not in answer.get_data(as_text=True)


def test_turnstile_without_a_token_is_refused_without_asking(make_app, upstream):
    app = _turnstile_app(make_app, upstream)
    client = app.test_client()
    for body in (GOOD, {**GOOD, "cf-turnstile-response": ""}, {**GOOD, "cf-turnstile-response": " \t"}):
        response = post(client, body)
        assert response.status_code == 400
        answer = response.get_json()
        assert answer["error"] == "turnstile_missing"
        assert "needs Cloudflare's anti-spam check, which runs with JavaScript" in answer["message"]
    assert upstream.count() == 0 and stored(app)[PENDING] == []


def test_turnstile_unusable_token_fails_without_asking(make_app, upstream):
    client = _turnstile_app(make_app, upstream).test_client()
    for body in ({**GOOD, "cf-turnstile-response": ["x"]}, {**GOOD, "cf-turnstile-response": "x" * 3000},
                 {**GOOD, "cf-turnstile-response": "\ud800"}, {**GOOD, "cf-turnstile-response": "t\u00f6ken"}):
        response = post(client, body)
        assert response.status_code == 400 and response.get_json()["error"] == "turnstile_failed"
    assert upstream.count() == 0


def test_turnstile_unreachable_keeps_the_message_flagged(make_app, upstream):
    app = _turnstile_app(make_app, upstream)
    upstream.script("POST", SITEVERIFY, Reply(503, body="down"))
    assert post(app.test_client(), {**GOOD, "cf-turnstile-response": "t"}).status_code == 202
    [item] = stored(app)[PENDING]
    assert item.payload["turnstile"] == "unchecked"


# -- delivery right after accepting ------------------------------------------------------------------

TOKEN = "42:inline-token"


def test_delivered_right_after_accepting_when_telegram_answers(make_app, upstream):
    upstream.script("POST", f"/bot{TOKEN}/sendMessage", Reply(200, json={"ok": True, "result": {"message_id": 9}}))
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="77", TELEGRAM_API_URL=upstream.url)
    response = post(app.test_client(), GOOD)
    assert response.status_code == 202
    [item] = stored(app)[DONE]
    assert item.id == response.get_json()["id"]
    assert upstream.calls()[0].json()["chat_id"] == "77"


def test_a_hanging_telegram_does_not_hold_the_answer(make_app, upstream):
    upstream.script("POST", f"/bot{TOKEN}/sendMessage", Reply(200, json={"ok": True}, delay=10))
    app = make_app(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="77", TELEGRAM_API_URL=upstream.url,
                   OUTBOX_INLINE_SECONDS="0.6")
    started = time.monotonic()
    response = post(app.test_client(), GOOD)
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert elapsed < PROMPTLY, elapsed  # Telegram answers after 10 s
    [item] = stored(app)[PENDING]  # still there for the worker
    assert item.attempts == 1 and "timed out" in item.last_error


def test_failed_turnstile_checks_do_not_use_up_the_global_limit(make_app, upstream):
    app = make_app(TURNSTILE_SECRET="0x-test-secret", TURNSTILE_VERIFY_URL=upstream.url + SITEVERIFY,
                   CONTACT_GLOBAL_RATE_LIMIT="2/day", CONTACT_RATE_LIMIT="off")
    upstream.script("POST", SITEVERIFY, *[Reply(200, json={"success": False, "error-codes": ["bad"]})] * 5,
                    Reply(200, json={"success": True, "error-codes": []}))
    client = app.test_client()
    for n in range(5):
        assert post(client, {**GOOD, "cf-turnstile-response": "bot"}, ip=f"192.0.2.{n}").status_code == 400
    assert post(client, {**GOOD, "cf-turnstile-response": "human"}).status_code == 202


@pytest.mark.parametrize("referer", ["http://[", "http://[::1", "::::", "http://a b/c"])
def test_a_malformed_referer_is_ignored(client, referer):
    response = post(client, GOOD, headers={"Referer": referer})
    assert response.status_code == 202
