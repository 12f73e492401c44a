"""The webhook channel against real receivers on loopback (HTTP, and HTTPS with a throwaway CA)."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from service.channels import SETTINGS, Message
from service.channels.settings import webhook_url
from service.channels.webhook import Webhook
from service.core.config import ConfigError, load
from service.core.upstream import UpstreamError

from ..fakes import Reply, echo
from ..helpers import ROOT

SECRET = "whsec-0123456789abcdef-signing-key"


def readme_verifier():
    """``verify_vitae`` from the documentation's snippet (docs/channels.md), run as written."""
    readme = (ROOT / "docs" / "channels.md").read_text()
    [code] = re.findall(r"```python\n(# Verify a Vitae webhook.*?)```", readme, re.S)
    namespace: dict = {}
    exec(compile(code, "docs/channels.md", "exec"), namespace)  # noqa: S102 - the project's own documentation
    return namespace["verify_vitae"]


def note(**overrides) -> Message:
    values = dict(kind="contact", title="Contact: Hello", id="m-7", created_at=1_800_000_000.0,
                  fields=(("Name", "Ann"), ("E-mail", "ann@example.net")), text="Hi <b>there</b> & bye",
                  reply_to="ann@example.net", reply_name="Ann")
    values.update(overrides)
    return Message(**values)


def headers_as_sent(recorded) -> dict[str, str]:
    """The request's headers keyed as a client sent them (the fake keeps them lowercase)."""
    return {name.title(): value for name, value in recorded.headers.items()}


def test_a_json_webhook_is_signed_as_the_readme_says(receiver):
    receiver.script("POST", "/hook", Reply(204))
    Webhook(f"{receiver.url}/hook", secret=SECRET).send(note())

    [call] = receiver.calls("POST", "/hook")
    verify = readme_verifier()
    assert verify(SECRET, headers_as_sent(call), call.body)
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-vitae-delivery"] == "m-7"
    assert call.json() == {"id": "m-7", "kind": "contact", "title": "Contact: Hello", "text": "Hi <b>there</b> & bye",
                           "fields": [{"label": "Name", "value": "Ann"}, {"label": "E-mail",
                                                                          "value": "ann@example.net"}],
                           "reply_to": "ann@example.net", "created_at": "2027-01-15T08:00:00Z"}
    # what the snippet refuses: another key, a changed body, another timestamp, an old or missing one
    sent = headers_as_sent(call)
    assert not verify("another-secret", sent, call.body)
    assert not verify(SECRET, sent, call.body.replace(b"Hello", b"Hellp"))
    assert not verify(SECRET, {**sent, "X-Vitae-Timestamp": str(int(sent["X-Vitae-Timestamp"]) + 1)}, call.body)
    assert not verify(SECRET, {**sent, "X-Vitae-Signature": ""}, call.body)
    assert not verify(SECRET, {}, call.body)


def test_an_old_signature_is_refused_by_the_snippet(receiver):
    receiver.script("POST", "/hook", Reply(200))
    Webhook(f"{receiver.url}/hook", secret=SECRET, clock=lambda: time.time() - 301).send(note())
    [call] = receiver.calls()
    assert not readme_verifier()(SECRET, headers_as_sent(call), call.body)


def test_slack_text_is_escaped_and_unformatted(receiver):
    receiver.script("POST", "/services/T1/B2/xyz", Reply(200, body="ok"))
    Webhook(f"{receiver.url}/services/T1/B2/xyz", format="slack").send(
        note(title="Contact: <!channel> *hi*", text="<!here> <https://evil.example|bank> & <@U123>"))
    [call] = receiver.calls()
    body = call.json()
    assert body["mrkdwn"] is False
    assert "<" not in body["text"] and ">" not in body["text"]
    assert "&lt;!channel&gt;" in body["text"] and "&lt;@U123&gt;" in body["text"] and "&amp;" in body["text"]
    assert "x-vitae-signature" not in call.headers  # Slack checks nothing: the URL is the secret


def test_discord_text_sits_in_a_code_block_it_cannot_leave(receiver):
    receiver.script("POST", "/api/webhooks/1/tok", Reply(204))
    hostile = "```\n@everyone [bank](https://evil.example) ``` **bold**"
    Webhook(f"{receiver.url}/api/webhooks/1/tok", format="discord").send(note(text=hostile))
    body = receiver.calls()[0].json()
    assert body["allowed_mentions"] == {"parse": []}
    [embed] = body["embeds"]
    description = embed["description"]
    assert description.startswith("```\n") and description.endswith("\n```")
    assert description[3:-3].count("```") == 0  # the visitor's fences are broken
    assert embed["timestamp"] == "2027-01-15T08:00:00Z"


def test_a_long_discord_message_is_cut_within_the_limit(receiver):
    receiver.script("POST", "/d", Reply(204))
    Webhook(f"{receiver.url}/d", format="discord").send(note(text="`" * 4000))
    description = receiver.calls()[0].json()["embeds"][0]["description"]
    assert len(description) <= 4096 and "more characters cut]" in description


# -- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "transient"), [(400, False), (401, False), (403, False), (404, False),
                                                   (410, False), (413, False), (408, True), (429, True),
                                                   (500, True), (502, True), (503, True)])
def test_4xx_is_permanent_5xx_is_retried(receiver, status, transient):
    receiver.script("POST", "/hook", Reply(status, headers={"Retry-After": "7"}))
    with pytest.raises(UpstreamError) as caught:
        Webhook(f"{receiver.url}/hook", secret=SECRET).send(note())
    assert caught.value.transient is transient and caught.value.status == status
    assert caught.value.retry_after == (7 if transient else None)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(receiver, status):
    receiver.script("POST", "/hook", Reply(status, headers={"Location": f"{receiver.url}/elsewhere"}))
    with pytest.raises(UpstreamError, match="redirect") as caught:
        Webhook(f"{receiver.url}/hook", secret=SECRET).send(note())
    assert not caught.value.transient
    assert receiver.count() == 1 and receiver.count(path="/elsewhere") == 0


def test_a_receiver_that_never_answers_times_out(receiver):
    receiver.script("POST", "/hook", Reply(200, delay=3))
    with pytest.raises(UpstreamError, match="timed out") as caught:
        Webhook(f"{receiver.url}/hook", secret=SECRET, read_timeout=0.3).send(note())
    assert caught.value.transient


def test_an_unreachable_receiver_is_retried(receiver):
    url = f"{receiver.url}/hook"
    receiver.stop()
    with pytest.raises(UpstreamError) as caught:
        Webhook(url, secret=SECRET).send(note())
    assert caught.value.transient


def test_secrets_stay_out_of_logs_errors_and_bodies_even_when_echoed(receiver, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs each request line, path included, at DEBUG
    token = "XyZ-slack-webhook-token-123456"
    path = f"/services/T0001/B0002/{token}"
    receiver.script("POST", path, echo(400))
    with pytest.raises(UpstreamError) as caught:
        Webhook(f"{receiver.url}{path}", format="slack").send(note())
    assert "400" in str(caught.value)
    assert token not in str(caught.value) and token not in caplog.text
    assert "XyZ" not in caplog.text  # nothing of the receiver's answer either
    assert token not in receiver.calls()[0].body.decode()

    receiver.script("POST", "/json", echo(500))
    with pytest.raises(UpstreamError) as caught:
        Webhook(f"{receiver.url}/json", secret=SECRET).send(note(text=f"see {receiver.url}/json"))
    assert SECRET not in str(caught.value) and SECRET not in caplog.text
    body = receiver.calls("POST", "/json")[0].body.decode()
    assert SECRET not in body and "Ann" in body
    assert "whsec" not in json.dumps(receiver.calls("POST", "/json")[0].headers)


# -- HTTPS -------------------------------------------------------------------------------------

def test_https_receiver_with_a_verified_certificate(tls_receiver, authority):
    tls_receiver.script("POST", "/hook", Reply(200))
    url = tls_receiver.url.replace("http://", "https://") + "/hook"
    Webhook(url, secret=SECRET, verify=str(authority.ca_file)).send(note())
    [call] = tls_receiver.calls()
    assert readme_verifier()(SECRET, headers_as_sent(call), call.body)


def test_https_receiver_with_an_untrusted_certificate_gets_nothing(tls_receiver, stranger):
    tls_receiver.script("POST", "/hook", Reply(200))
    url = tls_receiver.url.replace("http://", "https://") + "/hook"
    with pytest.raises(UpstreamError) as caught:
        Webhook(url, secret=SECRET, verify=str(stranger.ca_file)).send(note())
    assert caught.value.transient and tls_receiver.count() == 0


# -- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9/hook",
                                 "http://localhost:8080/", "http://[::1]:9/x"])
def test_webhook_urls_accepted(url):
    assert webhook_url(url) == url


@pytest.mark.parametrize("url", ["http://hooks.example.com/x", "http://10.0.0.1/x", "ftp://example.com/x",
                                 "https:///x", "https://example.com:99999/x", "javascript:alert(1)"])
def test_webhook_urls_refused_without_being_shown(url):
    with pytest.raises(ConfigError) as caught:
        load(SETTINGS, {"WEBHOOK_URL": url})
    assert "(hidden)" in str(caught.value)


def test_settings_defaults_and_what_is_missing():
    settings = load(SETTINGS, {})
    assert settings["WEBHOOK_FORMAT"] == "json" and settings["WEBHOOK_TIMEOUT"] == 5
    assert Webhook.missing(settings) == ["WEBHOOK_URL", "WEBHOOK_SECRET"]
    assert Webhook.missing({**settings, "WEBHOOK_URL": "https://x.example", "WEBHOOK_FORMAT": "slack"}) == []
    with pytest.raises(ConfigError):
        load(SETTINGS, {"WEBHOOK_FORMAT": "teams"})
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        Webhook("https://x.example/hook")
