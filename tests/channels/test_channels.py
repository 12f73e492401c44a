"""The channel interface: every channel, Telegram's wrapper over today's client, and which are configured."""

from __future__ import annotations

import inspect

import pytest

from service.channels import CHANNELS, SETTINGS, Message, available, configured, secret_parts
from service.channels import _channels as every_channel
from service.channels.base import one_line
from service.channels.mail import Mail
from service.channels.telegram import TelegramChannel
from service.channels.webhook import Webhook
from service.core.config import load
from service.core.upstream import UpstreamError
from service.outbox import SETTINGS as OUTBOX_SETTINGS

from ..fakes import Reply

TOKEN = "123456:AAtelegram-token-for-channels"
SEND = f"/bot{TOKEN}/sendMessage"


def note(**overrides) -> Message:
    values = dict(kind="contact", title="Contact: <b>Hi</b>", id="m-9", created_at=1_800_000_000.0,
                  fields=(("Name", "Ann"),), text="a <i>b</i> & @everyone https://x.example")
    values.update(overrides)
    return Message(**values)


def test_every_channel_has_the_whole_interface():
    assert tuple(channel.name for channel in every_channel()) == CHANNELS
    for channel in every_channel():
        for method in ("missing", "from_settings", "send"):
            assert callable(getattr(channel, method, None)), (channel, method)
        assert list(inspect.signature(channel.send).parameters) == ["self", "message"]


def settings(**values) -> dict:
    return load(SETTINGS + OUTBOX_SETTINGS, values)


def test_only_configured_channels_are_available(receiver):
    assert available(settings()) == {}
    chosen = available(settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="42",
                                WEBHOOK_URL=f"{receiver.url}/hook", WEBHOOK_SECRET="k" * 32,
                                SMTP_URL="smtp://127.0.0.1:1025", MAIL_FROM="site@example.com"))
    assert list(chosen) == ["telegram", "webhook"]  # MAIL_TO is missing
    assert isinstance(chosen["telegram"], TelegramChannel) and isinstance(chosen["webhook"], Webhook)
    assert Mail.missing(settings(SMTP_URL="smtp://127.0.0.1:1025")) == ["MAIL_FROM", "MAIL_TO"]
    assert not configured(Webhook, settings(WEBHOOK_URL=f"{receiver.url}/hook"))  # json needs a secret
    assert configured(Webhook, settings(WEBHOOK_URL=f"{receiver.url}/hook", WEBHOOK_FORMAT="discord"))


def test_telegram_gets_escaped_html_through_todays_client(upstream):
    upstream.script("POST", SEND, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    channel = TelegramChannel.from_settings(settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="42",
                                                     TELEGRAM_API_URL=upstream.url))
    channel.send(note())
    [call] = upstream.calls("POST", SEND)
    body = call.json()
    assert body["chat_id"] == "42" and body["parse_mode"] == "HTML"
    assert body["text"] == ("<b>Contact: &lt;b&gt;Hi&lt;/b&gt;</b>\n"
                            "<pre>Name: Ann\n\na &lt;i&gt;b&lt;/i&gt; &amp; @everyone https://x.example</pre>")


def test_a_long_message_goes_to_telegram_in_parts_in_order(upstream):
    upstream.script("POST", SEND, Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    channel = TelegramChannel.from_settings(settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="42",
                                                     TELEGRAM_API_URL=upstream.url))
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(90))  # about 9,000 characters
    channel.send(note(text=text, fields=()))
    parts = [call.json()["text"] for call in upstream.calls("POST", SEND)]
    assert len(parts) == 3 and all(len(part) <= 4096 + len("<b></b>") for part in parts)
    inner = "".join(part.split("<pre>", 1)[1].removesuffix("</pre>") for part in parts)
    assert inner == text


@pytest.mark.parametrize(("status", "transient"), [(400, False), (403, False), (429, True), (500, True),
                                                   (401, True)])
def test_telegram_failures_keep_todays_classification(upstream, status, transient):
    upstream.script("POST", SEND, Reply(status, json={"ok": False, "description": "nope"}))
    channel = TelegramChannel.from_settings(settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="42",
                                                     TELEGRAM_API_URL=upstream.url))
    with pytest.raises(UpstreamError) as caught:
        channel.send(note())
    assert caught.value.transient is transient and TOKEN not in str(caught.value)


def test_message_refuses_an_unknown_kind_or_an_unsafe_id():
    with pytest.raises(ValueError):
        note(kind="spam")
    with pytest.raises(ValueError):
        note(id="a\r\nb")
    with pytest.raises(ValueError):
        note(id="")


@pytest.mark.parametrize(("raw", "expected"), [
    ("a\r\nb", "a b"), ("a\u2028b\u2029c", "a b c"), ("x\u202eevil\u2066\u200f", "xevil"),
    ("=?utf-8?q?x?=", "= ?utf-8?q?x?="), ("  lots   of\t\tspace ", "lots of space"), ("é" * 300, "é" * 200),
    ("e\u0301", "é"),
])
def test_one_line(raw, expected):
    assert one_line(raw, 200) == expected


def test_secret_parts_name_what_the_secret_flag_alone_misses():
    from service.core import redaction

    values = settings(SMTP_URL="smtp://u:pa%2Fss-word@mail.example.com", MAIL_FROM="s@example.com",
                      WEBHOOK_URL="https://hooks.example.com/services/T/B/tok3n-value?key=k3y-value")
    parts = secret_parts(values)
    assert "pa/ss-word" in parts and "/services/T/B/tok3n-value" in parts and "key=k3y-value" in parts
    redaction.register(parts)
    line = "POST /services/T/B/tok3n-value?key=k3y-value HTTP/1.1 AUTH pa/ss-word"
    assert redaction.redact(line).count(redaction.HIDDEN) >= 2
    assert "tok3n" not in redaction.redact(line) and "pa/ss-word" not in redaction.redact(line)


_LOADS = """
import json, sys
import service.core.config
before = set(sys.modules)
import service.channels
from service.core.config import load
load(service.channels.SETTINGS, {})
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_reading_the_settings_loads_no_client():
    """Start-up parses every setting: with no channel configured it must not pay for smtplib, ssl or
    requests (a Lambda cold start)."""
    import json
    import subprocess
    import sys

    from ..helpers import ROOT

    found = subprocess.run([sys.executable, "-c", _LOADS], cwd=ROOT, capture_output=True, text=True, check=True,
                           timeout=60)
    loaded = json.loads(found.stdout)
    assert not [name for name in loaded if name.split(".")[0] in ("smtplib", "ssl", "email", "requests", "hmac")]
    assert "service.channels.mail" not in loaded and "service.channels.webhook" not in loaded
