"""E-mail over SMTP: `Mail`, one message per `send`, built with the standard library's `email` package.

``SMTP_URL`` says where and how:

* ``smtp://user:password@host:587`` submits with STARTTLS, which is then
  required (a server that does not offer it gets no password and no
  message); ``smtps://user:password@host:465`` uses TLS from the first
  byte. User and password are URL-encoded in the URL (``%40`` for ``@``).
* Certificates are verified against the system's CA store (a custom store:
  Python's ``SSL_CERT_FILE``), host name included; there is no switch to
  turn that off.
* ``smtp://host:port`` **without credentials** is accepted only for a
  loopback host (``localhost``, 127.0.0.0/8, ``::1``): a local relay or a
  development catcher, spoken to without TLS. Any other host needs
  credentials (every provider authenticates submission; an unauthenticated
  relay across a network is what spam rides on), and credentials always
  travel inside TLS, to loopback too.

The e-mail is ``From: MAIL_FROM`` ``To: MAIL_TO``, plain text (UTF-8)
with an HTML alternative in which every character of the message is
escaped; its ``Message-ID`` derives from the message's id (a retried
delivery carries the same one), ``Date`` from its creation time,
``Auto-Submitted: auto-generated`` keeps auto-responders quiet. Every
header value made from the message passes `base.one_line` (no CR/LF, no
encoded word, no bidi control survives). ``Reply-To`` is the visitor's
address when the message carries one with an ASCII local part and a
valid domain (the form validated it; it is checked again here): a
non-ASCII local part needs SMTPUTF8, which not every server offers, so
such an address stays in the body only.

Failures (see `base`): a 4xx reply, an unreachable or silent server, a
refused login (535...), a failed TLS handshake or certificate are
transient (the settings or the server are at fault, not the message); a
5xx about the message or its recipients is permanent. Some recipients
refused while others took the message counts as sent (a retry would
duplicate it for the others) and is logged with the refused addresses.
"""

from __future__ import annotations

import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any, ClassVar

from ..core import redaction
from ..core.upstream import UpstreamError
from .base import Message, one_line
from .settings import Server, missing, parse_url, split_address

log = logging.getLogger(__name__)

#: SMTP replies that say the login is wrong or missing: the settings are at fault, keep the message.
_CREDENTIALS = (530, 534, 535, 538)
#: Longest subject kept (RFC 5322 recommends 78 characters a line; folding handles the rest).
SUBJECT_MAX = 200


def address(value: str, display_name: str = "") -> Address | None:
    """``local@domain`` as a header-safe `Address` (see `settings.split_address`), else None."""
    parts = split_address(value)
    if parts is None:
        return None
    return Address(display_name=one_line(display_name, 100), username=parts[0], domain=parts[1])


def _addresses(value: str) -> list[Address]:
    return [address(addr, name) for name, addr in getaddresses([value])]  # type: ignore[misc]


class Mail:
    """Sends each message as one e-mail through ``SMTP_URL`` (see the module docstring)."""

    name: ClassVar[str] = "email"

    def __init__(self, server: Server, sender: str, recipients: str, *, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None):
        """``ssl_context`` verifies the server (default: the system's CA store, host names checked)."""
        self.server = server
        self.sender = _addresses(sender)[0]
        self.recipients = _addresses(recipients)
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        redaction.register([server.password])

    @staticmethod
    def missing(settings: Mapping[str, Any]) -> list[str]:
        return missing("email", settings)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Mail:
        return cls(parse_url(settings["SMTP_URL"]), settings["MAIL_FROM"], settings["MAIL_TO"],
                   timeout=settings["SMTP_TIMEOUT"])

    def build(self, message: Message) -> EmailMessage:
        """``message`` as the e-mail `send` submits (see the module docstring)."""
        email = EmailMessage(policy=policy.SMTP)
        email["From"] = self.sender
        email["To"] = self.recipients
        email["Subject"] = one_line(message.title, SUBJECT_MAX) or message.kind
        email["Date"] = formatdate(message.created_at, usegmt=True)
        token = hashlib.sha256(f"{message.kind}\0{message.id}".encode()).hexdigest()[:24]
        email["Message-ID"] = f"<vitae.{message.id}.{token}@{self.sender.domain}>"
        reply_to = address(message.reply_to, message.reply_name or "") if message.reply_to else None
        if reply_to is not None:
            email["Reply-To"] = reply_to
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.plain(), charset="utf-8")
        email.add_alternative(_html(message), subtype="html", charset="utf-8")
        return email

    def send(self, message: Message) -> None:
        """Submit ``message`` as one e-mail; raises `UpstreamError` (see the module docstring)."""
        email = self.build(message)
        try:
            smtp = self._connect()
            try:
                refused = smtp.send_message(email, from_addr=self.sender.addr_spec,
                                            to_addrs=[r.addr_spec for r in self.recipients])
            finally:
                _goodbye(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise UpstreamError(f"SMTP server refused every recipient ({', '.join(map(str, codes))})",
                                transient=any(400 <= code < 500 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from None
        except ssl.SSLError as exc:
            raise UpstreamError(f"SMTP TLS failed ({type(exc).__name__}: {exc.reason or 'handshake'})",
                                transient=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            # smtplib reports a read that timed out as a disconnection that says so
            kind = "timed out" if isinstance(exc, TimeoutError) or "timed out" in str(exc) else "failed"
            raise UpstreamError(f"SMTP connection {kind}: {type(exc).__name__}", transient=True) from None
        if refused:
            log.warning("e-mail %s not accepted for %s", message.id, ", ".join(sorted(refused)))

    def _connect(self) -> smtplib.SMTP:
        """A connection ready to send: TLS as the URL says, logged in when it has credentials."""
        server = self.server
        helo = self.sender.domain  # not socket.getfqdn(): a reverse DNS lookup that may hang
        if server.tls == "implicit":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, local_hostname=helo,
                                                  timeout=self.timeout, context=self.ssl_context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, local_hostname=helo, timeout=self.timeout)
        try:
            if server.tls == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise UpstreamError("SMTP server does not offer STARTTLS: no password sent in clear "
                                        "(use smtps:// if it speaks TLS from the start)", transient=True)
                smtp.starttls(context=self.ssl_context)
            if server.user is not None:
                smtp.login(server.user, server.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT and close, whatever the server answers: once it took the message, a failure to say goodbye
    must not make the message look unsent (a retry would send it twice)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _reply_error(code: int, reply: bytes | str) -> UpstreamError:
    """The `UpstreamError` an SMTP error reply means (see the module docstring)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP server answered {code}: {one_line(text, 200)}"
    if code in _CREDENTIALS:
        return UpstreamError(f"{message} (check the user and password in SMTP_URL)", transient=True)
    return UpstreamError(message, transient=not 500 <= code < 600)


def _html(message: Message) -> str:
    """The HTML alternative: every character of ``message`` escaped, the text kept as written."""
    rows = "".join(f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in message.fields)
    table = f"<table>{rows}</table>" if rows else ""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"></head><body>"
            f"<h1 style=\"font-size:1.2em\">{html.escape(message.title)}</h1>{table}"
            f"<pre style=\"white-space:pre-wrap;font-family:inherit\">{html.escape(message.text)}</pre>"
            f"</body></html>\n")
