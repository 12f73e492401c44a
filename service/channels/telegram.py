"""Telegram as a channel: `TelegramChannel` sends a `Message` through today's Bot API client.

The client (`service.channels.telegram_api.Telegram`: escaping, splitting, error
classification, token redaction) stays where the contact form's outbox
uses it; this wraps it in the channel interface. The message becomes
Telegram HTML: the title in bold, the fields and text escaped inside
``<pre>`` (inert: no tag, link or mention), split into parts within
Telegram's 4,096-character limit and sent in order.

Failures are the client's `UpstreamError`s as they come. A failure after
some parts went out leaves those sent: a retry of the whole message sends
them again (resuming at a part is the outbox's job, which records each
part sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .base import Message, one_line
from .settings import missing
from .telegram_api import MAX_LENGTH, Telegram, escape, split, utf16_length


class TelegramChannel:
    """Messages to ``TELEGRAM_CHAT_ID`` through the bot ``TELEGRAM_BOT_TOKEN``."""

    name: ClassVar[str] = "telegram"

    def __init__(self, client: Telegram, chat_id: str):
        self.client = client
        self.chat_id = chat_id

    @staticmethod
    def missing(settings: Mapping[str, Any]) -> list[str]:
        return missing("telegram", settings)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TelegramChannel:
        return cls(Telegram.from_settings(settings), settings["TELEGRAM_CHAT_ID"])

    def parts(self, message: Message) -> list[str]:
        """``message`` as the Telegram HTML messages `send` sends, in order."""
        head = f"<b>{escape(one_line(message.title, 200))}</b>\n"
        pre = len("<pre></pre>")
        pieces = split(message.plain(), MAX_LENGTH - utf16_length(one_line(message.title, 200)) - 1 - pre,
                       MAX_LENGTH - pre)
        if not pieces:
            return [head.rstrip("\n")]
        return [f"{head if index == 0 else ''}<pre>{escape(piece)}</pre>" for index, piece in enumerate(pieces)]

    def send(self, message: Message) -> None:
        """Send every part of ``message``; raises the client's `UpstreamError`."""
        for part in self.parts(message):
            self.client.send_message(self.chat_id, part)
