"""Counting people without tracking them: keyed hashes, bot filtering, opt-out signals.

A visitor id is an HMAC of (client IP, User-Agent, site) under a salt derived
from ``SECRET_KEY`` and the UTC date: it changes every day, cannot be linked
across days, and only the hash is stored (with a 48 h expiry). No cookie is
set and no IP address is stored anywhere, rate-limit keys included (an IPv6
address is limited by its /64: `limited_address`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
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


def limited_address(address: str) -> str:
    """What a per-address limit counts of a client address: an IPv6 address by its /64 (one subscriber's usual
    allocation, any address of which its host may take), an IPv4 one (mapped into IPv6 too) and anything else
    as it is."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def subject_hash(secret: str, date: str, address: str) -> str:
    """An anonymous, day-scoped key for a client address (rate limits), counted as `limited_address`: a
    client cannot step around a limit by taking another address of its /64."""
    value = limited_address(address)
    return hmac.digest(daily_salt(secret, date), f"subject:{value}".encode(), "sha256").hex()[:24]
