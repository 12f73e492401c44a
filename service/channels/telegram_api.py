"""Telegram Bot API client: ``sendMessage`` in HTML parse mode, escaping and splitting.

Telegram detects mentions, links, hashtags and bot commands in plain text
by itself, whatever the parse mode; it detects none inside a ``code`` or
``pre`` entity (entities of those kinds cannot contain others). So text a
visitor wrote is escaped with `escape` *and* placed inside ``<code>`` or
``<pre>`` by the caller: it cannot open a tag, close ours, make a link or
notify anyone.

`Telegram` is the Bot API client, one per app (``deps.client("telegram",
Telegram.from_settings)``): its one `requests.Session` is shared by every
thread of the app (a gunicorn worker's threads, the loop worker): it keeps
no cookies or per-request state here, and urllib3's connection pool it
wraps is thread-safe.

The bot token is part of the URL path (``/bot<token>/sendMessage``). It never
reaches an exception message (errors are rebuilt from the status and
Telegram's description, without the request's exception chain, and
`UpstreamError` redacts that description, which may quote the path) nor a
log line (`service.core.redaction` rewrites every record, urllib3's debug lines
that print the path included).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from ..core import redaction
from ..core.upstream import TIMEOUT, Client, UpstreamError, header_seconds, json_body

#: Telegram's limit for one message: characters after entity parsing, counted in UTF-16 code units.
MAX_LENGTH = 4096

#: Statuses that say the bot's credentials are wrong, not the message: keep it and try later.
_CREDENTIALS = (401, 404)


# urllib3 logs the request path ("POST /bot<token>/sendMessage") at DEBUG: make sure records are redacted
# even when this client is used without an app.
redaction.install()


def escape(text: str) -> str:
    """``text`` with ``&``, ``<`` and ``>`` replaced by entities (all Telegram's HTML mode needs)."""
    return html.escape(text, quote=False)


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def split(text: str, first: int, rest: int) -> list[str]:
    """Cut plain ``text`` into pieces, in order, that fit ``first`` then ``rest`` UTF-16 units each.

    A piece ends after the last newline in its window when there is one in
    its second half, else after the last space there, else at the window's
    end; a character is never cut in two. Joining the pieces gives ``text``
    back exactly. Raises ValueError if a room is smaller than 2.
    """
    if first < 2 or rest < 2:
        raise ValueError("room for at least one character is needed")
    pieces: list[str] = []
    start, room = 0, first
    while start < len(text):
        end, used = start, 0
        while end < len(text):
            width = 2 if ord(text[end]) > 0xFFFF else 1
            if used + width > room:
                break
            used += width
            end += 1
        if end < len(text):
            half = start + (end - start) // 2
            cut = text.rfind("\n", half, end)
            if cut < 0:
                cut = text.rfind(" ", half, end)
            if cut >= 0:
                end = cut + 1
        pieces.append(text[start:end])
        start, room = end, rest
    return pieces


class Telegram(Client):
    """The Bot API at ``TELEGRAM_API_URL`` for the bot ``TELEGRAM_BOT_TOKEN``; calls time out after
    ``TELEGRAM_TIMEOUT`` s of reading unless a call says otherwise."""

    def __init__(self, api_url: str, token: str, *, read_timeout: float = TIMEOUT[1]):
        super().__init__(api_url, read_timeout=read_timeout)
        self._path = f"/bot{token}/sendMessage"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Telegram:
        return cls(settings["TELEGRAM_API_URL"], settings["TELEGRAM_BOT_TOKEN"] or "",
                   read_timeout=settings["TELEGRAM_TIMEOUT"])

    def send_message(self, chat_id: str, text: str, *,
                     timeout: float | tuple[float, float] | None = None) -> int | None:
        """Send one HTML-mode message to ``chat_id`` without a link preview; return Telegram's message id.

        ``timeout`` is ``(connect, read)`` seconds for this call (default: the client's). Raises
        `UpstreamError`: ``transient`` for timeouts, connection errors,
        5xx, 429 (``retry_after`` from ``parameters.retry_after``) and a refused
        token (401/404: the bot's settings are wrong, the message is not);
        permanent for every other 4xx (chat not found, bot blocked, bad text).
        A 2xx counts as sent even if its body is odd: sending again would
        duplicate the message.
        """
        body = {"chat_id": chat_id, "text": text, "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True}}
        response = self.request("POST", self._path, json=body, timeout=timeout)
        return _message_id(response)


def _message_id(response: requests.Response) -> int | None:
    """The sent message's id from a sendMessage answer, or the `UpstreamError` it means (see `send_message`)."""
    answer = _json(response)
    if 200 <= response.status_code < 300:
        result = answer.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id if isinstance(message_id, int) else None
    description = str(answer.get("description") or response.reason or "no description")[:200]
    message = f"Telegram answered {response.status_code}: {description}"
    if response.status_code == 429:
        parameters = answer.get("parameters")
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            wait = header_seconds(response.headers.get("Retry-After"))
        raise UpstreamError(message, status=429, transient=True, retry_after=wait)
    if response.status_code in _CREDENTIALS:
        raise UpstreamError(f"{message} (check TELEGRAM_BOT_TOKEN)", status=response.status_code, transient=True)
    transient = not 400 <= response.status_code < 500 or response.status_code == 408
    raise UpstreamError(message, status=response.status_code, transient=transient)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = json_body(response)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

