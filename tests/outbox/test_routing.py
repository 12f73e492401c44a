"""The outbox routed to several channels at once: Telegram (a fake Bot API), e-mail (a real aiosmtpd server)
and a signed json webhook (a receiver on loopback). Exactly once per channel under receiver errors,
timeouts, dead letters and a worker killed mid-delivery; NOTIFY_* routing and its checks at start-up."""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time

import pytest

from service.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from service.core.config import ConfigError
from service.core.redaction import redact
from service.outbox.delivery import DEFER
from service.stats import notify
from service.storage import DEAD, DONE, PENDING

from ..fakes import Reply
from ..helpers import BACKENDS
from .test_delivery import (
    FakeTelegram,
    deliver,
    kill_worker_after_it_sent,
    store,
    submit,
    telegram_app,
    worker_env,
)

SECRET = "whsec-routing-test-signing-key-0123"
HOOK = "/hooks/T000/B000/routing-path-secret"


class Receiver:
    """The webhook receiver's POST handler: first the scripted failures, then 204; checks every signature
    and keeps the bodies answered 2xx."""

    def __init__(self, receiver, failures=()):
        self.failures = list(failures)
        self.lock = threading.Lock()
        self.delivered: list[dict] = []
        self.statuses: list[int] = []
        receiver.script("POST", HOOK, self)

    def __call__(self, recorded):
        headers = {name.lower(): value for name, value in recorded.headers.items()}
        expected = sign(SECRET, headers[TIMESTAMP_HEADER.lower()], recorded.body)
        assert headers[SIGNATURE_HEADER.lower()] == expected, "a webhook with a bad signature"
        with self.lock:
            reply = self.failures.pop(0) if self.failures else Reply(204)
            self.statuses.append(reply.status)
            if 200 <= reply.status < 300:
                self.delivered.append(json.loads(recorded.body))
        return reply

    def texts(self) -> list[str]:
        return [body["text"] for body in self.delivered]


def channel_settings(smtp, receiver, **settings) -> dict:
    return {"SMTP_URL": smtp.url(user=None), "MAIL_FROM": "Vitae <site@example.com>", "MAIL_TO": "owner@example.org",
            "SMTP_TIMEOUT": "2", "WEBHOOK_URL": f"{receiver.url}{HOOK}", "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_TIMEOUT": "0.3", **settings}


def routed_app(make_app, backend, upstream, smtp, receiver, **settings):
    return telegram_app(make_app, backend, upstream, **channel_settings(smtp, receiver, **settings))


def mails(smtp) -> list:
    return [received.message() for received in smtp.inbox.received]


def mail_texts(smtp) -> list[str]:
    return [mail.get_body(("plain",)).get_content().rsplit("\n\n", 1)[1].rstrip("\n") for mail in mails(smtp)]


def by_channel(app, state) -> collections.Counter:
    return collections.Counter(item.payload.get("channel") for item in store(app).items("outbox", state,
                                                                                          limit=1000))


def drain(app, clock, rounds=200):
    """Worker rounds until nothing is pending, time moving on to the next retry between them."""
    storage = store(app)
    for _ in range(rounds):
        summary = deliver(app)
        pending = storage.items("outbox", PENDING, limit=1000)
        if not pending:
            return
        if not summary["delivered"]:
            clock.now = max(clock.now, min(item.ready_at for item in pending)) + 0.001
    raise AssertionError("the outbox did not drain")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_message_reaches_telegram_email_and_a_webhook_exactly_once_each(make_app, upstream, clock, backend,
                                                                         smtp_server, receiver):
    smtp = smtp_server("plain")
    fake, hook = FakeTelegram(upstream, clock), Receiver(receiver)
    app = routed_app(make_app, backend, upstream, smtp, receiver)
    response = app.test_client().post("/api/contact", json={
        "name": "Ann\u202eevil", "email": "ann@example.net", "subject": "Hi\r\nBcc: x@evil.example",
        "message": "Hello <b>there</b>\nBcc: y@evil.example"})
    # a header-injection attempt in a one-line field is refused before it reaches any channel
    assert response.status_code == 400
    submit(app.test_client(), "ann", "Hello <b>there</b> & =?utf-8?q?x?=")
    records = store(app).items("outbox", PENDING)
    assert sorted(item.payload["channel"] for item in records) == ["email", "telegram", "webhook"]
    assert deliver(app)["delivered"] == 3
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 3, DEAD: 0}
    assert deliver(app)["delivered"] == 0  # nothing twice
    assert len(fake.delivered) == 1 and fake.bodies() == ["Hello &lt;b&gt;there&lt;/b&gt; &amp; =?utf-8?q?x?="]
    [mail] = mails(smtp)
    assert mail["From"] == "Vitae <site@example.com>" and mail["To"] == "owner@example.org"
    assert mail["Reply-To"] == "Ann <ann@example.com>" and mail["Message-ID"]
    assert mail["Subject"].startswith("Contact form #1")
    plain = mail.get_body(("plain",)).get_content()
    assert "From: Ann\nEmail: ann@example.com\n" in plain and plain.endswith("Hello <b>there</b> & =?utf-8?q?x?=\n")
    assert "&lt;b&gt;there" in mail.get_body(("html",)).get_content()  # the HTML part escapes every character
    [body] = hook.delivered
    assert body["text"] == "Hello <b>there</b> & =?utf-8?q?x?=" and body["reply_to"] == "ann@example.com"
    assert SECRET not in json.dumps(body) and HOOK not in json.dumps(body)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_webhook_retries_alone_while_telegram_and_email_deliver(make_app, upstream, clock, backend,
                                                                         smtp_server, receiver):
    smtp = smtp_server("plain")
    fake = FakeTelegram(upstream, clock)
    hook = Receiver(receiver, [Reply(500), Reply(503), Reply(504, body="", delay=0.6), Reply(502)])
    app = routed_app(make_app, backend, upstream, smtp, receiver)
    texts = [f"ann #{n}" for n in range(5)]
    for text in texts:
        submit(app.test_client(), "ann", text)
        clock.advance(0.5)
    first = deliver(app)
    # the webhook failed once and paused; Telegram and e-mail delivered everything past it
    assert first["delivered"] == 10 and first["retrying"] == 1 and list(first["paused"]) == ["webhook"]
    assert fake.bodies() == texts and mail_texts(smtp) == texts and hook.texts() == []
    assert by_channel(app, PENDING) == {"webhook": 5}
    drain(app, clock)
    assert hook.texts() == texts  # each once, in the sender's order, after 4 failures
    assert hook.statuses.count(204) == 5 and len(hook.statuses) == 9
    assert fake.bodies() == texts and mail_texts(smtp) == texts  # nobody else got anything twice
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 15, DEAD: 0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_smtp_server_that_says_later_holds_back_only_email(make_app, upstream, clock, backend, smtp_server,
                                                             receiver):
    smtp = smtp_server("plain")
    smtp.inbox.reply = "451 4.3.0 try again later"
    fake, hook = FakeTelegram(upstream, clock), Receiver(receiver)
    app = routed_app(make_app, backend, upstream, smtp, receiver)
    for n in range(3):
        submit(app.test_client(), f"s{n}", f"s{n} #0")
    summary = deliver(app)
    assert summary["delivered"] == 6 and list(summary["paused"]) == ["email"]
    assert len(fake.delivered) == 3 and len(hook.delivered) == 3 and mails(smtp) == []
    [failed] = [item for item in store(app).items("outbox", PENDING) if item.last_error]
    assert failed.payload["channel"] == "email" and "451" in failed.last_error
    smtp.inbox.reply = None
    drain(app, clock)
    assert sorted(mail_texts(smtp)) == ["s0 #0", "s1 #0", "s2 #0"]
    assert len(fake.delivered) == 3 and len(hook.delivered) == 3
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 9, DEAD: 0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_permanent_4xx_dead_letters_only_that_channel_s_record_and_alerts_once(make_app, upstream, clock,
                                                                                backend, smtp_server, receiver):
    smtp = smtp_server("plain")
    fake = FakeTelegram(upstream, clock)
    receiver.script("POST", HOOK, Reply(404))  # every webhook is refused, the alert's as well
    app = routed_app(make_app, backend, upstream, smtp, receiver, STATS_ALERTS="true")
    submit(app.test_client(), "bob", "bob #0")
    summary = deliver(app)
    assert summary["dead"] >= 1 and not summary["paused"]
    drain(app, clock)
    [dead_contact] = [item for item in store(app).items("outbox", DEAD) if item.payload.get("kind") != "notice"]
    assert dead_contact.payload["channel"] == "webhook" and "404" in dead_contact.last_error
    # the contact message reached the others once; the dead letter's alert went to every channel once, and
    # its own dead letter on the webhook raised no further alert
    assert len(fake.delivered) == 2 and "<pre>bob #0</pre>" in fake.delivered[0]
    assert fake.delivered[1].startswith("<b>Alert</b>: contact message") and "(webhook)" in fake.delivered[1]
    assert [mail["Subject"] for mail in mails(smtp)][1] == "Alert: dead letter"
    assert len(mails(smtp)) == 2
    assert by_channel(app, DEAD) == {"webhook": 2} and by_channel(app, DONE) == {"telegram": 2, "email": 2}
    assert receiver.count("POST", HOOK) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_killed_mid_delivery_loses_and_duplicates_nothing_per_channel(make_app, upstream, clock, backend,
                                                                              smtp_server, receiver, tmp_path):
    smtp = smtp_server("plain")
    fake = FakeTelegram(upstream, clock)
    hanging = threading.Event()
    receiver.script("POST", HOOK, lambda recorded: (hanging.wait(20), Reply(500))[1])
    app = routed_app(make_app, backend, upstream, smtp, receiver)
    clock.now = time.time()  # the worker runs on real time
    texts = [f"kim #{n}" for n in range(3)]
    for text in texts:
        submit(app.test_client(), "kim", text)
        clock.advance(0.01)
    channels = channel_settings(smtp, receiver, WEBHOOK_TIMEOUT="20")
    env = worker_env(app, OUTBOX_LEASE_SECONDS="40", TELEGRAM_TIMEOUT="5", **channels)
    kill_worker_after_it_sent(tmp_path, env, lambda: receiver.count("POST", HOOK) == 1, "the worker's first webhook",
                              hanging)
    delivered_before = collections.Counter(item.payload["channel"] for item in store(app).items("outbox", DONE))
    leased = store(app).items("outbox", PENDING)
    assert leased and all(item.ready_at > time.time() for item in leased)  # still held by the dead worker's lease
    hook = Receiver(receiver)
    clock.now = time.time()
    assert deliver(app)["delivered"] == 0  # another worker while the lease holds: nothing to take
    clock.now = max(item.ready_at for item in leased) + 0.001
    drain(app, clock)
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 9, DEAD: 0}
    assert fake.bodies() == texts and mail_texts(smtp) == texts and hook.texts() == texts
    assert sum(delivered_before.values()) + len(leased) == 9


def test_notify_routes_the_digest_to_email_and_alerts_to_the_webhook(make_app, upstream, clock, smtp_server,
                                                                      receiver):
    smtp = smtp_server("plain")
    fake, hook = FakeTelegram(upstream, clock), Receiver(receiver)
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver, STATS_DIGEST="true", STATS_ALERTS="true",
                     NOTIFY_DIGEST="email", NOTIFY_ALERTS="webhook", NOTIFY_CONTACT="telegram")
    deps = app.extensions["vitae.deps"]
    clock.advance(-6 * 86400)  # 2027-01-09: in the week the digest covers
    submit(app.test_client(), "cy", "cy #0")
    clock.advance(6 * 86400)
    assert notify.send_digest(deps, force=True) is True
    assert notify.alert(deps, "github_rate_limit", "GitHub's rate limit is spent <until 10:00>") is True
    assert sorted(by_channel(app, PENDING).elements()) == ["email", "telegram", "webhook"]
    assert deliver(app)["delivered"] == 3
    assert fake.bodies() == ["cy #0"]  # Telegram has the contact message only
    [digest] = mails(smtp)
    title, html, text = notify.digest(store(app), notify.digest_moment(clock.now, "mon", 8))
    assert digest["Subject"] == title and digest.get_body(("plain",)).get_content().rstrip("\n") == text
    # the e-mail has the numbers the Telegram digest has, in the same order
    numbers = re.compile(r"[+-]?\d[\d,]*%?")
    assert numbers.findall(title + "\n" + text) == numbers.findall(re.sub(r"<[^>]+>", "", html))
    assert "Contact messages received: 1" in text
    [alert] = hook.delivered
    assert alert["kind"] == "alert"
    assert alert["text"] == "GitHub's rate limit is spent <until 10:00>\nraised 2027-01-15 08:00 (UTC)"


def test_the_digest_is_not_queued_when_no_channel_is_routed(make_app, clock):
    app = make_app(STATS_DIGEST="true")
    assert notify.send_digest(app.extensions["vitae.deps"], force=True) is False
    assert store(app).queue_counts("outbox")[PENDING] == 0


@pytest.mark.parametrize(("settings", "names"), [
    ({"NOTIFY_CONTACT": "telegram,fax"}, ["NOTIFY_CONTACT", "'fax'"]),
    ({"NOTIFY_ALERTS": "email;webhook"}, ["NOTIFY_ALERTS", "'email;webhook'"]),
    ({"NOTIFY_DIGEST": "email"}, ["NOTIFY_DIGEST", "'email'", "SMTP_URL", "MAIL_FROM", "MAIL_TO"]),
    ({"NOTIFY_CONTACT": "webhook", "WEBHOOK_URL": "https://hooks.example.com/x"}, ["NOTIFY_CONTACT", "WEBHOOK_SECRET"]),
])
def test_an_unknown_or_unconfigured_channel_stops_start_up(make_app, settings, names):
    with pytest.raises(ConfigError) as failure:
        make_app(**settings)
    for name in names:
        assert name in str(failure.value)
    assert "hooks.example.com/x" not in str(failure.value)


def test_routes_default_to_every_configured_channel_and_may_name_several(make_app, upstream, smtp_server,
                                                                         receiver):
    smtp = smtp_server("plain")
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver, NOTIFY_CONTACT=" Email , telegram,email")
    assert app.config["NOTIFY_CONTACT"] == ("email", "telegram")
    submit(app.test_client(), "dee", "dee #0")
    assert by_channel(app, PENDING) == {"email": 1, "telegram": 1}
    plain = make_app(TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_CHAT_ID="5")  # only Telegram is configured
    submit(plain.test_client(), "dee", "dee #1")
    assert by_channel(plain, PENDING) == {"telegram": 1}


def test_the_smtp_password_and_the_webhook_path_are_redacted_from_start_up(make_app, caplog, monkeypatch):
    password, path = "smtp-Pa55word-routing", "/services/T1/B2/hook-path-secret"
    make_app(SMTP_URL=f"smtp://owner%40example.com:{password}@mail.example.com:587",
             WEBHOOK_URL=f"https://hooks.example.com{path}", WEBHOOK_FORMAT="slack")
    with caplog.at_level(logging.INFO):
        logging.getLogger("service.test").warning("posting to %s with %s", path, password)
    assert password not in caplog.text and path not in caplog.text
    assert redact(f"POST {path} HTTP/1.1") == "POST <hidden> HTTP/1.1"


def test_commands_show_and_requeue_per_channel(make_app, upstream, clock, smtp_server, receiver):
    smtp = smtp_server("plain")
    fake = FakeTelegram(upstream, clock)
    receiver.script("POST", HOOK, Reply(410), Reply(204))
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver)
    runner = app.test_cli_runner()
    submit(app.test_client(), "eve", "eve #0")
    assert "delivered 2, retrying 0, dead-lettered 1" in runner.invoke(args=["outbox", "deliver"]).output
    status = json.loads(runner.invoke(args=["outbox", "status", "--json"]).output)
    assert status["channels"]["webhook"] == {"configured": True, "pending": 0, "dead": 1, "paused_until": None}
    assert status["channels"]["email"]["configured"] and status["dead"][0]["channel"] == "webhook"
    text = runner.invoke(args=["outbox", "status"]).output
    assert "webhook: configured, pending 0, dead-lettered 1" in text and "410" in text
    listing = [json.loads(line) for line in runner.invoke(args=["outbox", "list", "--json"]).output.splitlines()]
    assert sorted(row["channel"] for row in listing) == ["email", "telegram", "webhook"]
    only = runner.invoke(args=["outbox", "list", "--channel", "webhook"]).output
    assert "webhook" in only and "telegram" not in only
    dead_id = status["dead"][0]["id"]
    # the e-mail channel has no dead letter: requeueing it there is refused, on the webhook it is sent again
    assert runner.invoke(args=["outbox", "requeue", "--channel", "email", dead_id]).exit_code != 0
    assert "requeued 0" in runner.invoke(args=["outbox", "requeue", "--channel", "email", "--all-dead"]).output
    result = runner.invoke(args=["outbox", "requeue", "--channel", "webhook", "--all-dead"])
    assert "(webhook)" in result.output
    assert "delivered 1" in runner.invoke(args=["outbox", "deliver"]).output
    assert len(fake.delivered) == 1 and len(mails(smtp)) == 1 and receiver.count("POST", HOOK) == 2


def test_a_record_stored_before_routing_is_telegram_s(make_app, upstream, clock, smtp_server, receiver):
    smtp = smtp_server("plain")
    fake, hook = FakeTelegram(upstream, clock), Receiver(receiver)
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver)
    # as the previous version stored it: no channel in the payload
    store(app).enqueue("outbox", {"name": "Old", "email": "old@example.com", "message": "old #0", "number": 1,
                                  "received_at": clock.now}, now=clock.now)
    assert deliver(app)["delivered"] == 1
    assert fake.bodies() == ["old #0"] and mails(smtp) == [] and hook.delivered == []


def test_the_inline_delivery_leaves_a_slower_channel_to_the_worker_untried(make_app, upstream, clock, smtp_server,
                                                                           receiver):
    smtp = smtp_server("plain")
    fake, hook = FakeTelegram(upstream, clock), Receiver(receiver)
    # an e-mail may take 2 x SMTP_TIMEOUT = 20 s, more than the 2 s the API may spend after accepting
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver, OUTBOX_INLINE_SECONDS="2", SMTP_TIMEOUT="10")
    submit(app.test_client(), "fay", "fay #0")
    assert len(fake.delivered) == 1 and len(hook.delivered) == 1 and mails(smtp) == []
    [waiting] = store(app).items("outbox", PENDING)
    assert waiting.payload["channel"] == "email" and not waiting.last_error
    assert waiting.attempts == 1  # handed back once, not claimed again and again by the same run
    clock.advance(DEFER)
    assert deliver(app)["delivered"] == 1
    assert mail_texts(smtp) == ["fay #0"] and len(fake.delivered) == 1 and len(hook.delivered) == 1


def test_an_encoded_word_in_the_subject_stays_literal_in_the_email(make_app, upstream, clock, smtp_server,
                                                                   receiver):
    smtp = smtp_server("plain")
    app = routed_app(make_app, "sqlite", upstream, smtp, receiver, NOTIFY_CONTACT="email")
    response = app.test_client().post("/api/contact", json={
        "name": "=?utf-8?q?Boss?= <boss@example.com>", "email": "gus@example.com",
        "subject": "=?utf-8?b?QmNjOiB4QGV2aWwuZXhhbXBsZQ==?=", "message": "<script>alert(1)</script>"})
    assert response.status_code == 202
    deliver(app)
    [mail] = mails(smtp)
    assert mail["Bcc"] is None and "Bcc" not in str(mail["Subject"])  # the encoded word was not decoded
    assert str(mail["Subject"]).startswith("Contact form #1: = ?utf-8?b?")
    assert mail["Reply-To"].addresses[0].addr_spec == "gus@example.com"
    assert "<script>" not in mail.get_body(("html",)).get_content()
    assert mail.get_body(("plain",)).get_content().rstrip("\n").endswith("<script>alert(1)</script>")
