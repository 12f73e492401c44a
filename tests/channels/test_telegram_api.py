"""The Telegram client against a fake Bot API on loopback, and how a contact message reads there."""

from __future__ import annotations

import concurrent.futures
import html.parser
import logging
import traceback

import pytest

from service.channels.telegram_api import MAX_LENGTH, Telegram, split, utf16_length
from service.contact.form import render
from service.core.upstream import UpstreamError

from ..fakes import Reply, echo
from ..servers import free_port

TOKEN = "123456789:AAE-test_TOKEN-value"
PATH = f"/bot{TOKEN}/sendMessage"


def send_message(api_url, token, chat_id, text, **kwargs):
    """One sendMessage with a new client for the bot ``token`` at ``api_url``."""
    return Telegram(api_url, token).send_message(chat_id, text, **kwargs)
HOSTILE = {
    "name": '<a href="https://evil.example/">click</a> & </b><b>',
    "email": "x&y@example.com",
    "subject": "</code><i>subject</i> @durov #tag",
    "message": ('Hi </pre><a href="tg://user?id=1">me</a> &amp; &lt;b&gt; <b>bold</b>\n'
                "@durov /start@somebot #spam https://evil.example/ www.evil.example mail@evil.example"),
    "page": "/blog/12",
    "number": 7,
    "received_at": 1_800_000_000.0,
}


class TelegramHTML(html.parser.HTMLParser):
    """Reads Telegram HTML as Telegram would: tags, and the visible text each span of it is inside."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.spans: list[tuple[tuple[str, ...], str]] = []
        self.feed(text)
        self.close()
        assert not self.open, f"unclosed tags {self.open}"

    def handle_starttag(self, tag, attrs):
        assert not attrs, f"<{tag}> with attributes {attrs}"
        self.open.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
        self.open.pop()

    def handle_data(self, data):
        self.spans.append((tuple(self.open), data))

    @property
    def text(self) -> str:
        return "".join(data for _, data in self.spans)

    def inside(self, *tags: str) -> str:
        """The visible text inside any of ``tags``."""
        return "".join(data for open_tags, data in self.spans if set(open_tags) & set(tags))


# -- sendMessage ---------------------------------------------------------------------------------

def test_send_message_posts_html_without_preview(upstream):
    upstream.script("POST", PATH, Reply(200, json={"ok": True, "result": {"message_id": 42}}))
    assert send_message(upstream.url, TOKEN, "-1001234", "<b>hi</b>") == 42
    [call] = upstream.calls("POST", PATH)
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"].startswith("vitae/")
    assert call.json() == {"chat_id": "-1001234", "text": "<b>hi</b>", "parse_mode": "HTML",
                           "link_preview_options": {"is_disabled": True}}


def test_one_client_serves_many_threads_at_once(upstream):
    """The app keeps one client (one session) for every thread: concurrent sends each get their own answer."""
    upstream.script("POST", PATH, lambda recorded: Reply(200, json={"ok": True, "result": {
        "message_id": int(recorded.json()["text"])}}, delay=0.02))
    client = Telegram(upstream.url, TOKEN)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: client.send_message("1", str(n)), range(48)))
    assert answers == list(range(48))
    assert sorted(int(call.json()["text"]) for call in upstream.calls("POST", PATH)) == list(range(48))


def test_from_settings_takes_url_token_and_timeout(upstream):
    upstream.script("POST", PATH, Reply(200, json={"ok": True, "result": {"message_id": 7}}, delay=0.5))
    client = Telegram.from_settings({"TELEGRAM_API_URL": upstream.url + "/", "TELEGRAM_BOT_TOKEN": TOKEN,
                                     "TELEGRAM_TIMEOUT": 0.2})
    with pytest.raises(UpstreamError) as caught:  # TELEGRAM_TIMEOUT is the read timeout
        client.send_message("1", "x")
    assert caught.value.transient and "timed out" in str(caught.value)
    assert client.send_message("1", "x", timeout=(0.5, 2.0)) == 7


def _error(upstream, reply) -> UpstreamError:
    upstream.script("POST", PATH, reply)
    with pytest.raises(UpstreamError) as caught:
        send_message(upstream.url, TOKEN, "1", "x", timeout=(0.5, 0.3))
    exc = caught.value
    assert TOKEN not in str(exc) and TOKEN not in "".join(traceback.format_exception(exc))
    return exc


@pytest.mark.parametrize("reply, transient, status", [
    (Reply(400, json={"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}), False, 400),
    (Reply(403, json={"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
     False, 403),
    (Reply(400, json={"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities"}),
     False, 400),
    (Reply(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"}), True, 401),
    (Reply(404, json={"ok": False, "error_code": 404, "description": "Not Found"}), True, 404),
    (Reply(500, json={"ok": False, "error_code": 500, "description": "Internal Server Error"}), True, 500),
    (Reply(502, body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}), True, 502),
], ids=["chat-not-found", "bot-blocked", "bad-entities", "bad-token-401", "bad-token-404", "500", "502-html"])
def test_statuses_are_classified(upstream, reply, transient, status):
    exc = _error(upstream, reply)
    assert (exc.transient, exc.status, exc.retry_after) == (transient, status, None)
    if status in (400, 403):
        assert reply.json["description"] in str(exc)


def test_429_carries_retry_after_from_parameters_or_header(upstream):
    exc = _error(upstream, Reply(429, json={"ok": False, "error_code": 429, "description": "Too Many Requests: "
                                            "retry after 17", "parameters": {"retry_after": 17}}))
    assert exc.transient and exc.status == 429 and exc.retry_after == 17
    exc = _error(upstream, Reply(429, body="slow down", headers={"Retry-After": "9"}))
    assert exc.transient and exc.retry_after == 9


def test_timeouts_and_refused_connections_are_transient_and_keep_the_token_out(upstream):
    exc = _error(upstream, Reply(200, json={"ok": True, "result": {}}, delay=1.5))
    assert exc.transient and exc.status is None and "timed out" in str(exc)
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UpstreamError) as caught:
        send_message(closed, TOKEN, "1", "x", timeout=0.5)
    assert caught.value.transient and "connection failed" in str(caught.value)
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("reply", [echo(400), echo(502, as_json=False), echo(401)], ids=["description", "reason",
                                                                                  "credentials"])
def test_an_answer_that_repeats_the_path_keeps_the_token_out(upstream, reply):
    # Telegram's description (or the status line's reason) may quote the request path, the token's place
    exc = _error(upstream, reply)
    assert "/bot<hidden>/sendMessage" in str(exc)


def test_the_token_never_reaches_a_log_line(upstream, caplog):
    upstream.script("POST", PATH, Reply(500), Reply(200, json={"ok": True, "result": {"message_id": 1}}))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(UpstreamError):
            send_message(upstream.url, TOKEN, "1", "x")
        send_message(upstream.url, TOKEN, "1", "x")
    lines = [record.getMessage() for record in caplog.records]
    assert any("/bot<hidden>/sendMessage" in line for line in lines), lines  # urllib3 did log the path
    assert not any(TOKEN in line or TOKEN.split(":")[1] in line for line in lines)


# -- splitting -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, first, rest", [
    ("a" * 10_000, 4096, 4096),
    ("word " * 3000, 100, 333),
    ("line\n" * 2000 + "tail", 500, 500),
    ("😀" * 5000, 4096, 4096),
    ("a😀" * 50, 3, 2),
    ("short", 4096, 4096),
], ids=["plain", "words", "lines", "emoji", "tight", "short"])
def test_split_keeps_order_and_limits(text, first, rest):
    pieces = split(text, first, rest)
    assert "".join(pieces) == text
    assert utf16_length(pieces[0]) <= first and all(utf16_length(piece) <= rest for piece in pieces[1:])
    assert all(pieces)
    assert not any(0xD800 <= ord(char) <= 0xDFFF for piece in pieces for char in piece)


def test_split_prefers_line_then_word_boundaries():
    assert split("aaaaaaa\nbbbb cccc dddd", 12, 12) == ["aaaaaaa\n", "bbbb cccc ", "dddd"]
    assert split("a\nbbbbbbbbbbbbbbbb", 12, 12) == ["a\nbbbbbbbbbb", "bbbbbb"]  # a newline too early is not used
    with pytest.raises(ValueError):
        split("abc", 1, 10)


# -- a contact message as Telegram shows it ------------------------------------------------------------

def test_hostile_input_cannot_format_link_or_mention():
    [part] = render("0190abc", HOSTILE)
    page = TelegramHTML(part)
    assert set(page.tags) <= {"b", "code", "pre"}
    assert page.tags.count("pre") == 1
    # every character the visitor wrote is there verbatim, and only inside code/pre (no entity detection)
    protected = page.inside("code", "pre")
    for field in ("name", "email", "subject", "message", "page"):
        assert HOSTILE[field] in protected, field
    outside = "".join(data for tags, data in page.spans if not set(tags) & {"code", "pre"})
    assert "@" not in outside and "evil" not in outside and "#" not in outside.replace("Contact form #7", "")
    assert "Received: 2027-01-15 08:00:00 UTC" in page.text
    assert "Id: 0190abc" in page.text


@pytest.mark.parametrize(("fields", "limit", "at_least"), [
    pytest.param({"name": "N" * 100, "subject": "S" * 150, "email": "e" * 60 + "@" + "d" * 60 + ".example",
                  "message": ("<&>" * 600 + "😀" * 700 + "\n") * 2}, MAX_LENGTH, 2, id="telegram-limit"),
    pytest.param({"message": " ".join(f"w{i}" for i in range(800))}, 500, 6, id="small-limit"),
])
def test_a_long_message_is_split_in_order_within_the_limit(fields, limit, at_least):
    payload = {**HOSTILE, **fields}
    parts = render("0190abc", payload, limit=limit)
    assert len(parts) >= at_least
    pages = [TelegramHTML(part) for part in parts]
    assert all(utf16_length(page.text) <= limit for page in pages)
    assert "".join(page.inside("pre") for page in pages) == payload["message"]
    assert pages[0].text.startswith(f"Contact form #7 (1/{len(parts)})")
    for index, page in enumerate(pages[1:], 2):
        assert page.text.startswith(f"Contact form #7 ({index}/{len(parts)}, continued)")
        assert "From:" not in page.text
