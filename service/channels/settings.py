"""The e-mail and webhook settings: their declarations (`SETTINGS`) and parsers.

Kept apart from the clients and light on imports: start-up parses every
setting, and a Lambda cold start should not load ``smtplib``, ``ssl`` or
``email`` to learn that no channel is configured. The parsers raise
ValueError (the settings loader turns it into a `ConfigError` that hides a
secret setting's value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from ..core.config import Setting, number, text
from .base import is_loopback

FORMATS = ("json", "slack", "discord")
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class Server(NamedTuple):
    """``SMTP_URL`` taken apart: ``tls`` is ``starttls``, ``implicit`` or ``none``."""

    tls: str
    host: str
    port: int
    user: str | None
    password: str | None


def parse_url(url: str) -> Server:
    """``SMTP_URL`` as a `Server`; ValueError (naming no secret) when it breaks `service.channels.mail`'s
    rules: smtp:// (STARTTLS with credentials), smtps:// (implicit TLS), no credentials only to loopback."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("expected smtp://user:password@host:port or smtps://...") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("expected smtp://user:password@host:port or smtps://...")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("expected no path or query after host:port")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (user is None) != (password is None):
        raise ValueError("expected both a user and a password, or neither")
    if user is None and not is_loopback(parts.hostname):
        raise ValueError("a user and password are needed for any host but loopback")
    tls = "implicit" if parts.scheme == "smtps" else "starttls" if user is not None else "none"
    return Server(tls, parts.hostname, port or (465 if tls == "implicit" else 587 if user else 25), user, password)


def smtp_url(value: str) -> str:
    """The ``SMTP_URL`` parser: the URL as written once `parse_url` accepts it (empty: off)."""
    value = value.strip()
    if value:
        parse_url(value)
    return value


def ascii_domain(domain: str) -> str | None:
    """``domain`` in its ASCII (IDNA) form, lowercase, when it is a valid name of two labels or more
    with a non-numeric top label, else None."""
    try:
        encoded = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = encoded.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return None
    return encoded.lower()


def split_address(value: Any) -> tuple[str, str] | None:
    """``local@domain`` as ``(local, ASCII domain)`` when header-safe (an ASCII dot-atom local part of at
    most 64 characters, a valid domain), else None."""
    if not isinstance(value, str) or value.count("@") != 1 or len(value) > 254:
        return None
    local, domain = value.split("@")
    encoded = ascii_domain(domain)
    if not _ASCII_LOCAL.fullmatch(local) or len(local) > 64 or encoded is None:
        return None
    return local, encoded


def mailbox(value: str) -> str:
    """The ``MAIL_FROM`` parser: ``site@example.com`` or ``Name <site@example.com>``; empty: unset."""
    value = value.strip()
    if not value:
        return ""
    from email.utils import parseaddr

    _, addr = parseaddr(value)
    if not addr or split_address(addr) is None or any(c in value for c in "\r\n,"):
        raise ValueError("expected one address like site@example.com or 'Vitae <site@example.com>'")
    return value


def mailboxes(value: str) -> str:
    """The ``MAIL_TO`` parser: comma-separated addresses (``Name <a@b>`` allowed); empty: unset."""
    value = value.strip()
    if not value:
        return ""
    from email.utils import getaddresses

    found = getaddresses([value])
    if not found or any(split_address(addr) is None for _, addr in found) or any(c in value for c in "\r\n"):
        raise ValueError("expected comma-separated addresses like you@example.com")
    return value


def webhook_url(value: str) -> str:
    """The ``WEBHOOK_URL`` parser: an https URL, or http to loopback; empty: off."""
    value = value.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("expected an https:// URL") from None
    if not parts.hostname or parts.scheme not in ("https", "http") or (
            parts.scheme == "http" and not is_loopback(parts.hostname)):
        raise ValueError("expected an https:// URL (http:// only to a loopback address)")
    return value


def webhook_format(value: str) -> str:
    """The ``WEBHOOK_FORMAT`` parser: json, slack or discord."""
    value = value.strip().lower()
    if value not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}")
    return value


def url_secrets(url: str) -> list[str]:
    """What of a webhook URL must never be shown: the whole URL, its password, and the path and query
    urllib3 logs (``POST /services/T/B/secret HTTP/1.1``)."""
    parts = urlsplit(url)
    found = [url, parts.password, parts.path if len(parts.path) > 1 else None, parts.query,
             f"{parts.path}?{parts.query}" if parts.query else None]
    return [value for value in found if value]


def missing(channel: str, settings: Mapping[str, Any]) -> list[str]:
    """The settings still unset for ``channel`` (``telegram``, ``email``, ``webhook``) to deliver (empty:
    configured); each channel's ``missing`` is this, and start-up reads it without loading a client."""
    if channel == "telegram":
        names = ["TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"]
    elif channel == "email":
        names = ["SMTP_URL", "MAIL_FROM", "MAIL_TO"]
    elif channel == "webhook":
        names = ["WEBHOOK_URL"] + (["WEBHOOK_SECRET"] if settings.get("WEBHOOK_FORMAT") == "json" else [])
    else:
        raise ValueError(f"unknown channel {channel!r}")
    return [name for name in names if not settings.get(name)]


def secret_parts(settings: Mapping[str, Any]) -> list[str]:
    """The secrets inside the channel settings that the registry's ``secret`` flag does not name alone:
    the password in ``SMTP_URL``, the path and query of ``WEBHOOK_URL`` (for `redaction.register` at
    start-up; each channel also registers its own when it is built)."""
    found: list[str] = []
    if settings.get("SMTP_URL"):
        found.append(parse_url(settings["SMTP_URL"]).password or "")
    if settings.get("WEBHOOK_URL"):
        found.extend(url_secrets(settings["WEBHOOK_URL"]))
    return [value for value in found if value]


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
    Setting("WEBHOOK_SECRET", "", text, "Key of the json webhook's HMAC-SHA256 signature "
            "(X-Vitae-Signature); needed with WEBHOOK_FORMAT=json.", secret=True),
    Setting("WEBHOOK_TIMEOUT", "5", number(0.1, 30), "Seconds to wait for the webhook receiver's answer."),
)
