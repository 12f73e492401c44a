"""The channels a message to the owner can take: Telegram, e-mail (SMTP) and webhooks.

Shared machinery, not a feature: no routes, no card. Each channel is a
class with a ``name``, ``missing(settings)`` (the unset settings it needs;
empty means configured), ``from_settings(settings)`` and
``send(message)``, which returns once the channel took the `Message` or
raises `UpstreamError`, ``transient`` (retry later) or not (dead-letter);
`base` says which failures are which. `SETTINGS` declares the e-mail and
webhook settings (Telegram's stay with the contact feature for now).

    base       Message, the Channel interface, header and host guards
    telegram   TelegramChannel: today's Bot API client behind the interface
    mail       Mail: SMTP with STARTTLS or implicit TLS, one e-mail a message
    webhook    Webhook: signed JSON, Slack or Discord bodies over https
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.config import Setting, number
from .base import KINDS, Channel, Message, configured
from .mail import mailbox, mailboxes, smtp_url
from .webhook import webhook_format, webhook_url

__all__ = ["CHANNELS", "KINDS", "SETTINGS", "Channel", "Message", "available", "configured"]

SETTINGS: tuple[Setting, ...] = (
    Setting("SMTP_URL", "", smtp_url, "Mail server: smtp://user:password@host:587 (STARTTLS, required) or "
            "smtps://user:password@host:465 (TLS from the start); certificates verified. smtp://host:port "
            "without credentials only to a loopback host (a local relay, no TLS).", secret=True),
    Setting("MAIL_FROM", "", mailbox, "Sender of the e-mails, an address your mail server may send from: "
            "site@example.com or 'Vitae <site@example.com>'."),
    Setting("MAIL_TO", "", mailboxes, "Where e-mails go: comma-separated addresses."),
    Setting("SMTP_TIMEOUT", "10", number(1, 60), "Seconds each step of an SMTP conversation may take."),
    Setting("WEBHOOK_URL", "", webhook_url, "Where webhooks are POSTed: https:// only (http:// to loopback). "
            "A Slack or Discord webhook URL is itself a secret.", secret=True),
    Setting("WEBHOOK_FORMAT", "json", webhook_format, "json (signed with WEBHOOK_SECRET), slack or discord."),
    Setting("WEBHOOK_SECRET", "", str.strip, "Key of the json webhook's HMAC-SHA256 signature "
            "(X-Vitae-Signature); needed with WEBHOOK_FORMAT=json.", secret=True),
    Setting("WEBHOOK_TIMEOUT", "5", number(0.1, 30), "Seconds to wait for the webhook receiver's answer."),
)


def _channels() -> tuple[type[Channel], ...]:
    from .mail import Mail
    from .telegram import TelegramChannel
    from .webhook import Webhook
    return (TelegramChannel, Mail, Webhook)


#: Every channel's name, in the order they are tried.
CHANNELS: tuple[str, ...] = ("telegram", "email", "webhook")


def available(settings: Mapping[str, Any]) -> dict[str, Channel]:
    """A channel object for each channel the ``settings`` configure, by name, in `CHANNELS` order."""
    return {channel.name: channel.from_settings(settings) for channel in _channels()
            if configured(channel, settings)}
