"""The e-mail channel against a real SMTP server (aiosmtpd) on loopback, read back as a mail client reads."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from service.channels import Message
from service.channels.mail import Mail
from service.channels.settings import mailbox, mailboxes, parse_url
from service.core.config import ConfigError, load
from service.core.upstream import UpstreamError

from .conftest import PASSWORD, USER

# aiosmtpd counts only STARTTLS as TLS: its implicit-TLS server, already encrypted, warns that AUTH is not
# restricted to TLS sessions.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SENDER, OWNER = "Vitae <site@example.com>", "owner@example.org"


def contact(**overrides) -> Message:
    values = dict(kind="contact", title="Contact: Hello there", id="m-1", created_at=1_800_000_000.0,
                  fields=(("Name", "Ann Lee"), ("E-mail", "ann@example.net")), text="Hi!\nA line.\n",
                  reply_to="ann@example.net", reply_name="Ann Lee")
    values.update(overrides)
    return Message(**values)


def mail(server, authority, **kwargs) -> Mail:
    url = kwargs.pop("url", None) or server.url()
    return Mail(parse_url(url), kwargs.pop("sender", SENDER), kwargs.pop("to", OWNER),
                ssl_context=kwargs.pop("context", authority.client_context()), timeout=kwargs.pop("timeout", 5),
                **kwargs)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_a_contact_message_arrives_as_a_mail_client_reads_it(smtp_server, authority, mode):
    server = smtp_server(mode)
    mail(server, authority).send(contact(text="Grüße, <b>not bold</b> & \"quoted\"\n.\nlast line"))

    assert server.inbox.logins == [(USER, PASSWORD)]
    [received] = server.inbox.received
    assert received.mail_from == "site@example.com" and received.rcpt_tos == [OWNER]
    email = received.message()
    assert email["From"] == SENDER and email["To"] == OWNER
    assert email["Subject"] == "Contact: Hello there"
    assert email["Reply-To"] == "Ann Lee <ann@example.net>"
    assert email["Date"].datetime.timestamp() == 1_800_000_000.0
    assert email["Message-ID"].startswith("<vitae.m-1.") and email["Message-ID"].endswith("@example.com>")
    assert email["Auto-Submitted"] == "auto-generated"
    plain = email.get_body(("plain",))
    assert plain.get_content_charset() == "utf-8"
    # a lone "." line went through the SMTP conversation as text, not as the end of the message
    assert plain.get_content() == ("Name: Ann Lee\nE-mail: ann@example.net\n\n"
                                   "Grüße, <b>not bold</b> & \"quoted\"\n.\nlast line\n")
    html = email.get_body(("html",)).get_content()
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; &quot;quoted&quot;" in html and "<b>" not in html


def test_a_loopback_relay_without_credentials_gets_plain_smtp(smtp_server, authority):
    server = smtp_server("plain")
    mail(server, authority, url=server.url(user=None)).send(contact())
    assert [r.rcpt_tos for r in server.inbox.received] == [[OWNER]] and server.inbox.logins == []


HOSTILE = [
    pytest.param("Ann\r\nBcc: victim@example.com", id="crlf"),
    pytest.param("Ann\nBcc: victim@example.com", id="lf"),
    pytest.param("=?utf-8?q?Ann=0D=0ABcc:_victim@example.com?=", id="encoded-word-crlf"),
    pytest.param("=?utf-8?b?Ym9zc0BiYW5rLmNvbQ==?=", id="encoded-word-spoof"),
    pytest.param("Ann\u202egnp.exe\u2066x\u200f", id="bidi"),
    pytest.param('Ann" <victim@example.com>, "Bob', id="quotes-and-address"),
    pytest.param("Ann\u2028Bcc: victim@example.com\x00\x1b", id="separators-and-controls"),
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_no_field_can_add_a_header_or_an_address(smtp_server, authority, hostile):
    server = smtp_server("starttls")
    message = contact(title=f"Contact: {hostile}", reply_name=hostile, fields=(("Name", hostile),),
                      text=f"{hostile}\r\n.\r\nMAIL FROM:<x@example.com>\r\n")
    mail(server, authority).send(message)

    [received] = server.inbox.received
    assert received.rcpt_tos == [OWNER]
    email = received.message()
    assert sorted(email.keys()) == sorted(["From", "To", "Subject", "Date", "Message-ID", "Reply-To",
                                           "Auto-Submitted", "Content-Type", "MIME-Version"])
    assert [a.addr_spec for a in email["Reply-To"].addresses] == ["ann@example.net"]
    assert [a.addr_spec for a in email["To"].addresses] == [OWNER]
    for header in ("Subject", "Reply-To"):
        shown = str(email[header])
        assert not any(c in shown for c in "\r\n\u2028\u202e\u2066\u200f\x00\x1b"), shown
        assert "victim@example.com>" not in str(email["Reply-To"].addresses[0].addr_spec)
        assert "bank.com" not in shown  # an encoded word the visitor wrote is never decoded
    # the body keeps what the visitor wrote, as text
    assert "MAIL FROM:<x@example.com>" in email.get_body(("plain",)).get_content()


@pytest.mark.parametrize("reply_to", ["not an address", "ann@example.net\r\nBcc: victim@example.com",
                                      "ann@localhost", "ann@[127.0.0.1]", "jos\u00e9@example.net",
                                      "a\u202e@example.net", "ann@exa mple.net"])
def test_reply_to_is_only_a_valid_address(smtp_server, authority, reply_to):
    server = smtp_server("starttls")
    mail(server, authority).send(contact(reply_to=reply_to))
    assert server.inbox.received[0].message()["Reply-To"] is None


def test_an_internationalised_domain_is_sent_in_its_ascii_form(smtp_server, authority):
    server = smtp_server("starttls")
    mail(server, authority).send(contact(reply_to="ann@bücher.example", reply_name=None))
    assert str(server.inbox.received[0].message()["Reply-To"]) == "ann@xn--bcher-kva.example"


def test_message_id_is_stable_for_a_message_and_differs_between_messages(smtp_server, authority):
    channel = mail(smtp_server("starttls"), authority)
    assert channel.build(contact())["Message-ID"] == channel.build(contact(text="other"))["Message-ID"]
    assert channel.build(contact())["Message-ID"] != channel.build(contact(id="m-2"))["Message-ID"]


# -- failures --------------------------------------------------------------------------------

def test_a_refused_login_is_transient_and_never_shows_the_password(smtp_server, authority, caplog):
    caplog.set_level(logging.DEBUG)
    server = smtp_server("starttls", echo_secrets=True)
    wrong = "wr0ng-Pa55word-echoed"
    with pytest.raises(UpstreamError) as caught:
        mail(server, authority, url=server.url(password=wrong)).send(contact())
    assert caught.value.transient
    assert "535" in str(caught.value) and "SMTP_URL" in str(caught.value)
    assert server.inbox.logins and set(server.inbox.logins) == {(USER, wrong)}  # and the server echoed it
    assert wrong not in str(caught.value) and wrong not in caplog.text
    assert server.inbox.received == []


def test_credentials_never_go_out_without_starttls(smtp_server, authority):
    server = smtp_server("plain")  # offers no STARTTLS
    with pytest.raises(UpstreamError, match="STARTTLS") as caught:
        mail(server, authority).send(contact())
    assert caught.value.transient and server.inbox.logins == [] and server.inbox.received == []


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_an_untrusted_certificate_stops_before_the_login(smtp_server, authority, stranger, mode):
    server = smtp_server(mode)
    with pytest.raises(UpstreamError, match="TLS") as caught:
        mail(server, authority, context=stranger.client_context()).send(contact())
    assert caught.value.transient and server.inbox.logins == []


def test_a_host_name_the_certificate_does_not_name_is_refused(smtp_server, authority):
    server = smtp_server("starttls", host="127.0.0.2")  # loopback too, but not in the certificate
    with pytest.raises(UpstreamError, match="TLS"):
        mail(server, authority).send(contact())
    assert server.inbox.logins == []


def test_a_server_that_never_answers_times_out(authority):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never greets
    try:
        port = listener.getsockname()[1]
        channel = Mail(parse_url(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}"), SENDER, OWNER,
                       ssl_context=authority.client_context(), timeout=1)
        with pytest.raises(UpstreamError, match="timed out") as caught:
            channel.send(contact())
        assert caught.value.transient
    finally:
        listener.close()


def test_a_closed_port_is_transient(authority):
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamError) as caught:
        Mail(parse_url(f"smtps://{USER}:{PASSWORD}@127.0.0.1:{port}"), SENDER, OWNER,
             ssl_context=authority.client_context()).send(contact())
    assert caught.value.transient


@pytest.mark.parametrize(("reply", "transient"), [("451 4.3.0 try later", True), ("452 4.3.1 full", True),
                                                  ("554 5.6.0 rejected content", False),
                                                  ("552 5.3.4 too big", False)])
def test_data_replies_4xx_retry_5xx_dead_letter(smtp_server, authority, reply, transient):
    server = smtp_server("starttls")
    server.inbox.reply = reply
    with pytest.raises(UpstreamError) as caught:
        mail(server, authority).send(contact())
    assert caught.value.transient is transient and reply[:3] in str(caught.value)


@pytest.mark.parametrize(("reply", "transient"), [("450 4.2.1 busy", True), ("550 5.1.1 no such user", False)])
def test_every_recipient_refused(smtp_server, authority, reply, transient):
    server = smtp_server("starttls")
    server.inbox.refuse[OWNER] = reply
    with pytest.raises(UpstreamError) as caught:
        mail(server, authority).send(contact())
    assert caught.value.transient is transient


def test_some_recipients_refused_counts_as_sent(smtp_server, authority, caplog):
    server = smtp_server("starttls")
    server.inbox.refuse["gone@example.org"] = "550 5.1.1 no such user"
    mail(server, authority, to=f"{OWNER}, gone@example.org").send(contact())
    assert [r.rcpt_tos for r in server.inbox.received] == [[OWNER]]
    assert "gone@example.org" in caplog.text


def test_an_odd_goodbye_after_the_message_was_taken_still_counts_as_sent(smtp_server, authority):
    server = smtp_server("starttls")
    server.inbox.quit_reply = "421 4.4.2 closing anyway"  # a retry would send the message twice
    mail(server, authority).send(contact())
    assert len(server.inbox.received) == 1


def test_sends_from_threads_do_not_mix(smtp_server, authority):
    server = smtp_server("starttls")
    channel = mail(server, authority)
    threads = [threading.Thread(target=channel.send, args=(contact(id=f"m-{n}", text=f"text {n}"),))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    bodies = sorted(r.message().get_body(("plain",)).get_content().rsplit("\n", 2)[-2] for r in
                    server.inbox.received)
    assert bodies == [f"text {n}" for n in range(4)]


# -- settings --------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://u:p%40ss@mail.example.com", ("starttls", "mail.example.com", 587, "u", "p@ss")),
    ("smtp://u:p@mail.example.com:2525", ("starttls", "mail.example.com", 2525, "u", "p")),
    ("smtps://u:p@mail.example.com", ("implicit", "mail.example.com", 465, "u", "p")),
    ("smtp://127.0.0.1:1025", ("none", "127.0.0.1", 1025, None, None)),
    ("smtp://localhost", ("none", "localhost", 25, None, None)),
    ("smtp://u:p@127.0.0.1:1025", ("starttls", "127.0.0.1", 1025, "u", "p")),
])
def test_smtp_url(url, expected):
    assert tuple(parse_url(url)) == expected


@pytest.mark.parametrize("url", ["smtp://mail.example.com:587", "http://u:p@mail.example.com", "smtp://u@host.com",
                                 "smtp://u:p@host.com/path", "smtp://u:p@host.com:99999", "smtp://:p@",
                                 "mail.example.com"])
def test_a_bad_smtp_url_stops_start_up_without_showing_it(url):
    from service.channels import SETTINGS
    with pytest.raises(ConfigError) as caught:
        load(SETTINGS, {"SMTP_URL": url})
    assert "(hidden)" in str(caught.value) and url not in str(caught.value)


def test_addresses():
    assert mailbox("Vitae <site@example.com>") == "Vitae <site@example.com>"
    assert mailboxes("a@example.com, B <b@example.org>") == "a@example.com, B <b@example.org>"
    for bad in ("site", "a@b@c.com", "a@example.com, b@example.org", "x\r\nBcc: y@example.com"):
        with pytest.raises(ValueError):
            mailbox(bad)
    for bad in ("a@example.com, nope", "x@example.com\nBcc: y@example.com"):
        with pytest.raises(ValueError):
            mailboxes(bad)
