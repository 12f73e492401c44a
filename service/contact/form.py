"""A contact message: what a visitor may send, how it is cleaned, and how it reads in Telegram.

`validate` turns a submitted mapping into a clean message or raises a 400
`ServiceError` ``{"error": "invalid", "fields": {name: problem}}`` listing every
bad field at once. Strings are Unicode-normalised (NFC) and trimmed; line
breaks are normalised to ``\\n`` and allowed only in ``message``; every
other control character is refused, as are lone surrogates; one-line fields
also refuse the line and paragraph separators (U+2028/U+2029) and the
bidirectional embeddings, overrides and isolates (U+202A-U+202E,
U+2066-U+2069), which could make a name or subject read differently from
what it says. Lengths count characters (code points) after cleaning.
Unknown fields are ignored.

`render` lays a stored message out as Telegram HTML parts in order, each
within Telegram's limit, every character the visitor wrote escaped and
inside ``<code>``/``<pre>`` (see `upstream.telegram`); `describe` makes it
the channel-neutral message e-mail and webhooks send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ..core.errors import Invalid

#: The honeypot: a field people never see and bots fill in.
HONEYPOT = "website"
#: The field a Turnstile widget puts its token in.
TURNSTILE_FIELD = "cf-turnstile-response"


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    max: int
    required: bool = True
    multiline: bool = False


FIELDS = (
    Field("name", 100),
    Field("email", 254),
    Field("subject", 150, required=False),
    Field("message", 4000, multiline=True),
)

# RFC 5322 dot-atom characters, plus any non-ASCII character (RFC 6531 addresses).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
                    r"\u0080-\U0010FFFF]+)*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: Characters a one-line field refuses besides control characters (see the module docstring).
_SEPARATORS = frozenset("\u2028\u2029")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(value: str, *, multiline: bool) -> str:
    """NFC, ``\\r\\n``/``\\r`` -> ``\\n``, trimmed. Raises ValueError naming the problem."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain invalid characters") from None
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    for char in value:
        if char == "\n" or (char in _SEPARATORS and not multiline):
            if not multiline:
                raise ValueError("must be one line")
        elif unicodedata.category(char) == "Cc":
            raise ValueError("must not contain control characters")
        elif char in _BIDI_CONTROLS and not multiline:
            raise ValueError("must not contain bidirectional control characters")
    return value


def is_email(address: str) -> bool:
    """Practical address syntax: ``local@domain``, a dot-atom local part of at most 64 characters, a
    domain of at least two labels (internationalised names allowed) with a non-numeric top label."""
    local, at, domain = address.rpartition("@")
    if not at or not local or len(local) > 64 or len(address) > 254 or any(c.isspace() for c in address):
        return False
    if not _LOCAL.fullmatch(local):
        return False
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_domain.split(".")
    return (len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


def honeypot_filled(data: Mapping[str, Any]) -> bool:
    value = data.get(HONEYPOT)
    return bool(value.strip()) if isinstance(value, str) else value not in (None, "", [], {})


def validate(data: Mapping[str, Any]) -> dict[str, str]:
    """The clean ``name``, ``email``, ``subject`` (maybe empty) and ``message``; `Invalid` otherwise."""
    clean_fields: dict[str, str] = {}
    problems: dict[str, str] = {}
    for field in FIELDS:
        raw = data.get(field.name)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            problems[field.name] = "must be text"
            continue
        try:
            value = clean(raw, multiline=field.multiline)
        except ValueError as exc:
            problems[field.name] = str(exc)
            continue
        if not value and field.required:
            problems[field.name] = "is required"
        elif len(value) > field.max:
            problems[field.name] = f"must be at most {field.max} characters"
        elif field.name == "email" and not is_email(value):
            problems[field.name] = "is not a valid email address"
        else:
            clean_fields[field.name] = value
    if problems:
        raise Invalid("some fields need attention", fields=problems)
    return clean_fields


def _title_and_lines(item_id: str, payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str, bool]]]:
    """A stored message's title and its labelled lines ``(label, value, written by the visitor)``, the empty
    ones left out. Raises KeyError/TypeError/ValueError for a payload that is not a stored contact message."""
    number = payload.get("number")
    title = f"Contact form #{number}" if isinstance(number, int) else "Contact form"
    received = dt.datetime.fromtimestamp(float(payload["received_at"]), dt.UTC)
    lines: list[tuple[str, str, bool]] = [
        ("From", payload["name"], True),
        ("Email", payload["email"], True),
        ("Subject", payload.get("subject") or "", True),
        ("Page", payload.get("page") or "", True),
        ("Received", received.strftime("%Y-%m-%d %H:%M:%S UTC"), False),
        ("Id", item_id, True),
    ]
    if payload.get("turnstile") == "unchecked":
        lines.append(("Note", "Turnstile could not be asked; the message was accepted unchecked", False))
    return title, [line for line in lines if line[1]]


def describe(item_id: str, payload: Mapping[str, Any]):
    """A stored message as the channel-neutral `service.channels.Message` e-mail and webhooks send: the
    title (with the subject), the labelled fields, the visitor's text verbatim (each channel escapes it),
    and ``reply_to`` the visitor's address when it passes `is_email` (it did when it was accepted).

    Raises KeyError/TypeError/ValueError for a payload that is not a stored contact message.
    """
    from ..channels import Message

    title, lines = _title_and_lines(item_id, payload)
    subject = payload.get("subject") or ""
    email = payload["email"]
    valid = isinstance(email, str) and is_email(email)
    return Message(kind="contact", title=f"{title}: {subject}" if subject else title, text=str(payload["message"]),
                   id=item_id, created_at=float(payload["received_at"]),
                   fields=tuple((label, str(value)) for label, value, _ in lines),
                   reply_to=email if valid else None, reply_name=str(payload["name"]) if valid else None)


def render(item_id: str, payload: Mapping[str, Any], limit: int | None = None) -> list[str]:
    """The Telegram HTML parts of a stored message, in order; each fits ``limit`` (Telegram's).

    Raises KeyError/TypeError/ValueError for a payload that is not a stored contact message.
    """
    from ..channels.telegram_api import MAX_LENGTH, escape, split, utf16_length

    limit = limit or MAX_LENGTH
    title, lines = _title_and_lines(item_id, payload)
    header_html = "\n".join(f"<b>{label}:</b> " + (f"<code>{escape(value)}</code>" if visitor else escape(value))
                            for label, value, visitor in lines)
    header_plain = "\n".join(f"{label}: {value}" for label, value, _ in lines)
    marker_room = utf16_length(" (99/99, continued)")
    title_room = utf16_length(title) + marker_room
    # visible text: title+marker, "\n", header, "\n\n", piece (first part); title+marker, "\n", piece (others)
    pieces = split(str(payload["message"]), limit - title_room - 1 - utf16_length(header_plain) - 2,
                   limit - title_room - 1)
    parts = []
    for index, piece in enumerate(pieces, 1):
        marker = "" if len(pieces) == 1 else f" ({index}/{len(pieces)}{', continued' if index > 1 else ''})"
        head = f"<b>{escape(title + marker)}</b>\n" + (header_html + "\n\n" if index == 1 else "")
        parts.append(f"{head}<pre>{escape(piece)}</pre>")
    return parts
