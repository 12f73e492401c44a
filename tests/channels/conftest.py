"""Real servers for the channels: a throwaway certificate authority, SMTP servers (aiosmtpd) and webhook
receivers (`tests.fakes.FakeUpstream`, optionally over TLS), all on loopback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import socket
import ssl
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ..fakes import FakeUpstream

USER, PASSWORD = "owner@example.com", "s3cret-smtp-Pa55word"


@dataclasses.dataclass
class Authority:
    """A certificate authority made for one test session, and a certificate it signed for 127.0.0.1 and
    localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        """What a client uses to trust this authority only (host names checked)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _make_authority(folder: Path, name: str) -> Authority:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    authority = Authority(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    authority.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    authority.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    authority.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return authority


@pytest.fixture(scope="session")
def authority(tmp_path_factory) -> Authority:
    return _make_authority(tmp_path_factory.mktemp("tls"), "trusted")


@pytest.fixture(scope="session")
def stranger(tmp_path_factory) -> Authority:
    """Another authority, which the clients in the tests do not trust."""
    return _make_authority(tmp_path_factory.mktemp("tls-stranger"), "stranger")


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    def message(self) -> EmailMessage:
        """The e-mail as a mail client reads it (lines end in ``\\n``, as a client shows them)."""
        return BytesParser(policy=policy.default).parsebytes(self.content.replace(b"\r\n", b"\n"))  # type: ignore


class Inbox:
    """aiosmtpd's handler: keeps what it receives; ``reply`` (e.g. ``"451 later"``) answers DATA instead,
    ``refuse`` maps a recipient to the reply its RCPT gets, ``quit_reply`` answers QUIT."""

    def __init__(self):
        self.received: list[Received] = []
        self.reply: str | None = None
        self.quit_reply: str | None = None
        self.refuse: dict[str, str] = {}
        self.logins: list[tuple[str, str]] = []
        self.commands: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        return self.quit_reply or "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPServer:
    """One aiosmtpd server on 127.0.0.1: ``mode`` ``starttls`` (AUTH only after STARTTLS, required),
    ``implicit`` (TLS from the first byte) or ``plain`` (no TLS, no AUTH); ``echo_secrets`` makes a failed
    login answer with everything the client sent."""

    def __init__(self, mode: str, authority: Authority | None, *, echo_secrets: bool = False,
                 host: str = "127.0.0.1"):
        self.inbox = Inbox()
        self.mode = mode
        self.echo_secrets = echo_secrets
        kwargs: dict = {}
        if mode == "starttls":
            kwargs = dict(tls_context=authority.server_context(), require_starttls=True, auth_required=True,
                          auth_require_tls=True, authenticator=self._authenticate)
        elif mode == "implicit":
            kwargs = dict(ssl_context=authority.server_context(), auth_required=True, auth_require_tls=False,
                          authenticator=self._authenticate)
        self.host = host
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname=host, port=self.port, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.inbox.logins.append((login, password))
        if (login, password) == (USER, PASSWORD):
            return AuthResult(success=True)
        if self.echo_secrets:
            return AuthResult(success=False, handled=False,
                              message=f"535 5.7.8 refused {mechanism} {login} {password}")
        return AuthResult(success=False, handled=False)

    def url(self, user: str | None = USER, password: str | None = PASSWORD) -> str:
        from urllib.parse import quote
        scheme = "smtps" if self.mode == "implicit" else "smtp"
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user is not None else ""
        return f"{scheme}://{credentials}{self.host}:{self.port}"

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server(authority):
    """A factory: ``smtp_server("starttls")`` is a started `SMTPServer`, stopped after the test."""
    servers: list[SMTPServer] = []

    def start(mode: str = "starttls", **kwargs) -> SMTPServer:
        server = SMTPServer(mode, authority, **kwargs).start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def receiver():
    """A webhook receiver over plain HTTP on loopback."""
    fake = FakeUpstream().start()
    yield fake
    fake.stop()


@pytest.fixture
def tls_receiver(authority):
    """A webhook receiver over HTTPS on 127.0.0.1, its certificate signed by `authority`."""
    fake = FakeUpstream()
    fake.server.socket = authority.server_context().wrap_socket(fake.server.socket, server_side=True)
    fake.start()
    yield fake
    fake.stop()
