"""Counting people without tracking them: keyed hashes, bot filtering, opt-out signals.

A visitor id is an HMAC of (client IP, User-Agent, site) under a salt derived
from ``SECRET_KEY`` and the UTC date: it changes every day, cannot be linked
across days, and only the hash is stored (with a 48 h expiry). No cookie is
set and no IP address is stored anywhere, rate-limit keys included.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re

# Crawlers, link previewers, monitors and automated or headless browsers.
_BOTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|archiver|mediapartners|facebookexternalhit|embedly|preview|"
    r"headless|phantomjs|selenium|puppeteer|playwright|lighthouse|pagespeed|chrome-lighthouse|"
    r"uptime|pingdom|statuscake|monitor|scrapy|httrack|feedfetcher|ahrefs|semrush|bingpreview|"
    r"\bvalidator\b|\bw3c_",
)  # matched against the lowercased User-Agent: much faster than IGNORECASE on every counted view
_MEMO_LENGTH = 512  # longest User-Agent whose bot check is memoised


def is_bot(user_agent: str) -> bool:
    """True for an empty User-Agent and for known bots and headless browsers."""
    if len(user_agent) > _MEMO_LENGTH:  # not memoised: 256 of the longest headers would hold megabytes
        return _is_bot(user_agent)
    return _is_bot_memo(user_agent)


def _is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or bool(_BOTS.search(user_agent.lower()))


#: on every counted view; a handful of User-Agents make most of the traffic
_is_bot_memo = functools.lru_cache(maxsize=256)(_is_bot)


def opted_out(headers) -> bool:
    """The visitor asked not to be tracked (``DNT: 1`` or ``Sec-GPC: 1``)."""
    return headers.get("DNT", "").strip() == "1" or headers.get("Sec-GPC", "").strip() == "1"


@functools.lru_cache(maxsize=8)  # a handful of (key, day) pairs: computed once a day, not per view
def daily_salt(secret: str, date: str) -> bytes:
    return hmac.new(secret.encode(), f"visitor-salt:{date}".encode(), hashlib.sha256).digest()


def visitor_hash(secret: str, date: str, ip: str, user_agent: str, site: str) -> str:
    """The day's anonymous id of one visitor (32 hex characters)."""
    message = "\x1f".join((ip, user_agent, site)).encode()
    return hmac.digest(daily_salt(secret, date), message, "sha256").hex()[:32]


def subject_hash(secret: str, date: str, value: str) -> str:
    """An anonymous, day-scoped key for a value such as an IP (rate limits)."""
    return hmac.digest(daily_salt(secret, date), f"subject:{value}".encode(), "sha256").hex()[:24]
