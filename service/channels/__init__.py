"""The channels a message to the owner can take: Telegram, e-mail (SMTP) and webhooks.

Shared machinery, not a feature: no routes, no card. Each channel is a
class with a ``name``, ``missing(settings)`` (the unset settings it needs;
empty means configured), ``from_settings(settings)`` and
``send(message)``, which returns once the channel took the `Message` or
raises `UpstreamError`, ``transient`` (retry later) or not (dead-letter);
`base` says which failures are which. `settings.SETTINGS` declares the
e-mail and webhook settings (Telegram's stay with the outbox), the app
factory registers them beside the core's, and `settings.missing` says what
a channel still needs without loading it; importing this package loads no client (no ``smtplib``, ``ssl``,
``email`` or ``requests``): `available` imports the ones it builds.

    base       Message, the Channel interface, header and host guards
    settings   the settings, their parsers, missing, secret_parts for redaction
    telegram   TelegramChannel: today's Bot API client behind the interface
    mail       Mail: SMTP with STARTTLS or implicit TLS, one e-mail a message
    webhook    Webhook: signed JSON, Slack or Discord bodies over https
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import KINDS, Channel, Message, configured
from .settings import SETTINGS, secret_parts

__all__ = ["CHANNELS", "KINDS", "SETTINGS", "Channel", "Message", "available", "configured", "secret_parts"]


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

