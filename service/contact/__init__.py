"""The contact form and its delivery to Telegram: ``POST /api/contact`` and ``flask outbox``.

`form` validates and lays out a message, `routes` accepts it (Turnstile, limits, outbox),
`pages` answers a form sent without JavaScript, `outbox` delivers (leases, retries, dead letters),
`cli` runs and inspects it, `telegram` and `turnstile` are the upstream clients.
"""

from __future__ import annotations

from ..core.config import Setting, http_url, integer, number, rate, text
from ..core.feature import Feature
from . import cli, routes

SETTINGS = (
    Setting("TELEGRAM_BOT_TOKEN", "", text, "Bot token from @BotFather; with TELEGRAM_CHAT_ID set, contact "
            "messages go to Telegram (unset: they wait in the outbox, see `flask outbox list`).", secret=True),
    Setting("TELEGRAM_CHAT_ID", "", text, "Chat the bot writes to: your numeric user id, a group's id "
            "(-100...) or @channelname."),
    Setting("TELEGRAM_API_URL", "https://api.telegram.org", http_url, "Telegram Bot API base URL."),
    Setting("TELEGRAM_TIMEOUT", "5", number(0.1, 30), "Seconds to wait for Telegram's answer to one message."),
    Setting("TURNSTILE_SECRET", "", text, "Cloudflare Turnstile secret key: when set, the contact form needs a "
            "passed Turnstile check.", secret=True),
    Setting("TURNSTILE_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify", http_url,
            "Turnstile's siteverify endpoint."),
    Setting("CONTACT_RATE_LIMIT", "5/hour", rate, "Contact messages per sender address (N/second|minute|hour|day, "
            "or off)."),
    Setting("CONTACT_GLOBAL_RATE_LIMIT", "100/day", rate, "Contact messages accepted from everyone together "
            "(N/second|minute|hour|day, or off)."),
    Setting("OUTBOX_MAX_AGE", "172800", integer(60, 90 * 86400), "Seconds an undelivered message is retried "
            "before it is dead-lettered (172800 = 48 h)."),
    Setting("OUTBOX_LEASE_SECONDS", "60", integer(10, 3600), "Seconds a worker holds a message it is sending; "
            "after that another worker may take it."),
    Setting("OUTBOX_POLL_SECONDS", "5", number(0.05, 3600), "Seconds `flask outbox deliver --loop` waits "
            "between looks when idle."),
    Setting("OUTBOX_INLINE_SECONDS", "2", number(0, 10), "Longest the contact API spends delivering right after "
            "accepting (0: leave it all to the worker)."),
)

FEATURE = Feature("contact", blueprints=((routes.bp, "/api"),), settings=SETTINGS, cli=cli.outbox_cli,
                  card="contact")
