"""What every channel shares: the `Message` it sends, the `Channel` interface, and the guards on what
reaches a header or a network.

A delivery loop holds one `Channel` per configured channel and calls
``channel.send(message)``: it returns once the channel's server accepted
the message, or raises `UpstreamError` (`service.core.upstream`) whose
``transient`` flag decides what the loop does: retry later with backoff
(timeouts, refused connections, 5xx, 429, 4xx SMTP replies, refused
credentials or TLS: the settings are wrong, not the message) or
dead-letter at once (an HTTP 4xx, an SMTP 5xx about the message). The
error's message names the channel and the status, never a secret nor a
receiver's answer body; it passes `redaction.redact` as every
`UpstreamError` does.

A channel's secrets (the SMTP password, the webhook URL and its signing
key) are registered with `redaction.register` when it is built from the
settings, so no log line or error carries them even before the app's
settings registry lists the channel settings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from ..core import redaction

# A channel's secrets are hidden from every log record from the first one, even without an app.
redaction.install()

#: Message kinds the owner routes (``NOTIFY_CONTACT``, ``NOTIFY_DIGEST``, ``NOTIFY_ALERTS``).
KINDS = ("contact", "digest", "alert")

#: Bidirectional controls and marks: they make a header read differently from what it says.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclasses.dataclass(frozen=True)
class Message:
    """One thing to tell the owner, the same for every channel.

    ``title`` is one line the owner's side wrote (a subject); ``text`` the
    plain-text body, in which a visitor's words appear verbatim (channels
    escape it for their format, never interpret it); ``fields`` labelled
    values shown before the text (``("Name", "Ann")``); ``reply_to`` the
    visitor's address, set only after the contact form validated it;
    ``reply_name`` the visitor's name for that address; ``id`` a stable
    identifier (the outbox item's): the e-mail's ``Message-ID`` and the
    webhook's ``X-Vitae-Delivery`` derive from it, so a retried delivery
    is recognisable as the same message; ``created_at`` Unix time.
    """

    kind: str
    title: str
    text: str
    id: str
    created_at: float
    fields: tuple[tuple[str, str], ...] = ()
    reply_to: str | None = None
    reply_name: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", self.id):
            raise ValueError("id must be 1 to 100 letters, digits, '.', '_' or '-'")

    def plain(self) -> str:
        """The whole message as plain text: the fields, one per line, then a blank line and the text."""
        lines = [f"{label}: {value}" for label, value in self.fields]
        return "\n".join([*lines, "", self.text]) if lines else self.text


class Channel(Protocol):
    """What a delivery loop needs from a channel (see the module docstring)."""

    #: The channel's name in ``NOTIFY_*`` settings and delivery records.
    name: ClassVar[str]

    @staticmethod
    def missing(settings: Mapping[str, Any]) -> list[str]:
        """The settings still unset for this channel to deliver (empty: configured)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Channel:
        """The channel the ``settings`` describe (its secrets registered for redaction)."""

    def send(self, message: Message) -> None:
        """Deliver ``message`` once; raises `UpstreamError` (``transient`` or permanent)."""


def configured(channel: type[Channel], settings: Mapping[str, Any]) -> bool:
    """Whether ``settings`` set ``channel`` up."""
    return not channel.missing(settings)


def one_line(value: str, limit: int) -> str:
    """``value`` fit for a header or a title: control characters and line or paragraph separators become
    spaces, bidirectional controls and marks are removed, runs of white space collapse to one, ``=?``
    (how an RFC 2047 encoded word starts, which mail libraries and clients decode) becomes ``= ?``, and
    the result is cut to ``limit`` characters."""
    chars = []
    for char in unicodedata.normalize("NFC", value):
        if char in _BIDI:
            continue
        chars.append(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char)
    text = " ".join("".join(chars).split()).replace("=?", "= ?")
    return text[:limit].rstrip()


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's hostname) names this machine: ``localhost`` or a loopback IP literal."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
