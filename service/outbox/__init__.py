"""The outbox: messages for the owner, kept in storage until a channel has them; shared machinery below the
features.

`delivery` queues (`accept`, `notify`) and delivers (leases, retries, dead letters, per-sender order) and
runs the worker loop, whose every round is also the periodic tick (``Deps.emit("periodic")``: the weekly
digest); `cli` is ``flask outbox``. The contact form queues visitors' messages, the owner's stats queue
digests and alerts; each kind's layout is registered at start-up (`Deps.lays_out`). `routing` decides
which channels (``NOTIFY_*``) get a message, one delivery record each. The channel clients live in
`service.channels`.
"""

from __future__ import annotations

from flask import Flask

from ..core.config import Setting, http_url, integer, number, text
from ..core.feature import Feature
from . import cli, routing

SETTINGS = (
    Setting("TELEGRAM_BOT_TOKEN", "", text, "Bot token from @BotFather; with TELEGRAM_CHAT_ID set, messages go "
            "to Telegram (no channel set up at all: they wait in the outbox, see `flask outbox list`).", secret=True),
    Setting("TELEGRAM_CHAT_ID", "", text, "Chat the bot writes to: your numeric user id, a group's id "
            "(-100...) or @channelname."),
    Setting("TELEGRAM_API_URL", "https://api.telegram.org", http_url, "Telegram Bot API base URL."),
    Setting("TELEGRAM_TIMEOUT", "5", number(0.1, 30), "Seconds to wait for Telegram's answer to one message."),
    Setting("OUTBOX_MAX_AGE", "172800", integer(60, 90 * 86400), "Seconds an undelivered message is retried "
            "before it is dead-lettered (172800 = 48 h)."),
    Setting("OUTBOX_LEASE_SECONDS", "60", integer(10, 3600), "Seconds a worker holds a message it is sending; "
            "after that another worker may take it."),
    Setting("OUTBOX_POLL_SECONDS", "5", number(0.05, 3600), "Seconds `flask outbox deliver --loop` waits "
            "between looks when idle."),
    Setting("OUTBOX_INLINE_SECONDS", "2", number(0, 10), "Longest the contact API spends delivering right after "
            "accepting (0: leave it all to the worker)."),
    Setting("NOTIFY_CONTACT", "", routing.channel_names, "Channels contact messages go to, comma-separated among "
            "telegram, email, webhook (empty: every configured channel)."),
    Setting("NOTIFY_DIGEST", "", routing.channel_names, "Channels the weekly stats digest goes to (empty: every "
            "configured channel)."),
    Setting("NOTIFY_ALERTS", "", routing.channel_names, "Channels alerts go to (empty: every configured "
            "channel)."),
)


def _setup(app: Flask) -> None:
    routing.check(app.config)  # a NOTIFY_* name whose channel is not set up stops start-up

FEATURE = Feature("outbox", settings=SETTINGS, cli=cli.outbox_cli, setup=_setup)
