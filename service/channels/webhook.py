"""Webhooks: `Webhook` POSTs each message to ``WEBHOOK_URL`` as JSON, in one of three formats.

``WEBHOOK_FORMAT``:

* ``json`` (the generic one) sends `payload` and signs it:
  ``X-Vitae-Timestamp`` is the Unix time of the call in seconds and
  ``X-Vitae-Signature`` is ``sha256=`` followed by the lowercase hex
  HMAC-SHA256, keyed with ``WEBHOOK_SECRET`` (UTF-8), of the timestamp, a
  dot and the exact body bytes. ``X-Vitae-Delivery`` is the message's id
  (the same on every retry: receivers deduplicate on it, delivery being
  at least once). A receiver recomputes the signature over the raw body,
  compares in constant time and refuses timestamps more than five minutes
  off: the snippet in docs/channels.md (tests/channels run it as written).
* ``slack``: a Slack incoming webhook's ``{"text": ...}`` with
  formatting off and ``&``, ``<``, ``>`` escaped, so no visitor text
  makes a link, a mention or ``<!channel>``.
* ``discord``: a Discord webhook's message with one embed whose text sits
  in a code block (Markdown, links and mentions inert; ``allowed_mentions``
  empty too); Discord caps an embed at 4,096 characters, so a longer
  message is cut there, saying how much was cut.

Slack's and Discord's webhook URLs are themselves the secret (whoever has
one may post): ``WEBHOOK_URL`` is a secret setting, redacted as a whole
and by its path (what urllib3 logs).

Only ``https://`` URLs, or ``http://`` to a loopback host (tests, a local
relay). Calls time out (``WEBHOOK_TIMEOUT``), redirects are not followed
(a 3xx is permanent: the URL is wrong), the receiver's answer is never
read into a log or an error: only its status is. A 2xx is delivered;
408, 425, 429 (with ``Retry-After``) and 5xx are transient; any other 4xx
is permanent. The body holds the message and nothing else: no setting,
no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..core import redaction
from ..core.upstream import TIMEOUT, Client, UpstreamError, header_seconds
from .base import Message, one_line
from .settings import missing, url_secrets, webhook_url

SIGNATURE_HEADER = "X-Vitae-Signature"
TIMESTAMP_HEADER = "X-Vitae-Timestamp"
DELIVERY_HEADER = "X-Vitae-Delivery"
#: Discord's limits: an embed's title and description.
_DISCORD_TITLE, _DISCORD_TEXT = 256, 4096
_TRANSIENT_4XX = (408, 425, 429)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Vitae-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(message: Message) -> dict[str, Any]:
    """The generic JSON body: the message's own fields, nothing from the settings."""
    return {"id": message.id, "kind": message.kind, "title": message.title, "text": message.text,
            "fields": [{"label": label, "value": value} for label, value in message.fields],
            "reply_to": message.reply_to,
            "created_at": datetime.fromtimestamp(message.created_at, UTC).isoformat().replace("+00:00", "Z")}


def slack_escape(text: str) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    """A Slack incoming webhook's body (see the module docstring)."""
    return {"text": slack_escape(f"{one_line(message.title, 150)}\n\n{message.plain()}"), "mrkdwn": False}


def discord(message: Message) -> dict[str, Any]:
    """A Discord webhook's body (see the module docstring)."""
    # A zero-width space after each backtick: the visitor's text can never close the code block.
    text = message.plain().replace("`", "`\u200b")
    room = _DISCORD_TEXT - len("```\n\n```")
    if len(text) > room:
        cut = len(text) - (room - 40)
        text = f"{text[:room - 40]}\n[{cut} more characters cut]"
    embed = {"title": one_line(message.title, _DISCORD_TITLE), "description": f"```\n{text}\n```",
             "timestamp": payload(message)["created_at"]}
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


_BODIES: dict[str, Callable[[Message], dict[str, Any]]] = {"json": payload, "slack": slack, "discord": discord}


class Webhook(Client):
    """POSTs each message to one URL in one format (see the module docstring)."""

    name: ClassVar[str] = "webhook"

    def __init__(self, url: str, *, format: str = "json", secret: str = "", read_timeout: float = TIMEOUT[1],
                 verify: str | bool = True, clock: Callable[[], float] = time.time):
        """``verify``: the CA bundle (a path) that checks the receiver's certificate, or True for the
        default one; ``clock`` gives the signature's timestamp."""
        webhook_url(url)
        if format == "json" and not secret:
            raise ValueError("a json webhook needs WEBHOOK_SECRET")
        super().__init__(url, read_timeout=read_timeout, headers={"Content-Type": "application/json"})
        self.base_url = url  # exactly as configured: a receiver may need its trailing slash
        self.format = format
        self._secret = secret
        self._verify = verify
        self._clock = clock
        redaction.register([secret, *url_secrets(url)])

    @staticmethod
    def missing(settings: Mapping[str, Any]) -> list[str]:
        return missing("webhook", settings)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Webhook:
        return cls(settings["WEBHOOK_URL"], format=settings["WEBHOOK_FORMAT"],
                   secret=settings.get("WEBHOOK_SECRET") or "", read_timeout=settings["WEBHOOK_TIMEOUT"])

    def body(self, message: Message) -> bytes:
        """The exact bytes `send` posts for ``message``."""
        return json.dumps(_BODIES[self.format](message), ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, message: Message) -> None:
        """POST ``message``; raises `UpstreamError` (see the module docstring)."""
        body = self.body(message)
        headers = {DELIVERY_HEADER: message.id}
        if self.format == "json":
            timestamp = str(int(self._clock()))
            headers.update({TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(self._secret, timestamp, body)})
        response = self.request("POST", "", data=body, headers=headers, verify=self._verify, stream=True)
        status = response.status_code
        response.close()  # the answer's body is never read
        if 200 <= status < 300:
            return
        message_text = f"webhook answered {status}"
        if 300 <= status < 400:
            raise UpstreamError(f"{message_text} (a redirect, not followed: set WEBHOOK_URL to the final "
                                "address)", status=status, transient=False)
        if status in _TRANSIENT_4XX or status >= 500:
            raise UpstreamError(message_text, status=status, transient=True,
                                retry_after=header_seconds(response.headers.get("Retry-After")))
        raise UpstreamError(message_text, status=status, transient=False)
