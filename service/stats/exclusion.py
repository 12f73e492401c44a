"""Views the owner's stats leave out: the owner's own browser and ``STATS_IGNORE``'s paths and networks.

* The owner's browser carries the first-party cookie ``vitae_ignore=1``
  (path ``/``, ``SameSite=Strict``, ``Secure``, 400 days, no other value): it
  is set by signing in on ``/stats`` and by the switch there ("Don't count
  this browser"), and cleared by the switch ("Count this browser again"),
  which works without signing in again. The site's script reads it and sends
  no view from that browser (``countsThisBrowser`` in ``site.js``); the
  server checks it too (`excluded`), so a view sent without the script is
  left out as well. A cookie set by the server, not script storage: it
  reaches the server on both targets (self-hosted, and AWS where CloudFront
  forwards viewer cookies to ``/api``), and browsers that expire
  script-written storage after a week (Safari) keep it. Visitors get no
  cookie: only the owner's own browser, by the owner's own action.
* ``STATS_IGNORE`` lists path patterns (``/drafts/*``: ``*`` matches any
  characters, ``/`` included; ``?`` one; ``[...]`` a set) and client networks
  (``203.0.113.0/24``, ``2001:db8::/32``, or one address). A network is
  matched in memory against the client address the counter uses (the socket
  address, or ``X-Forwarded-For`` behind ``TRUSTED_PROXIES``); the address is
  never stored.

A left-out view is answered like a bot's: 200 with the counts as they are
and ``"counted": false``, nothing recorded.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Mapping

from flask import Response

from . import geo

#: The owner's first-party flag: only its presence with this value matters.
COOKIE = "vitae_ignore"
COOKIE_VALUE = "1"
#: Chrome keeps no cookie longer than 400 days; signing in or the switch renews it.
COOKIE_SECONDS = 400 * 86400
#: Most patterns and networks ``STATS_IGNORE`` takes (each network is one comparison per counted view).
MAX_RULES = 100

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class Ignore:
    """The parsed ``STATS_IGNORE``: path patterns as one regex (or None) and networks."""

    paths: re.Pattern[str] | None = None
    networks: tuple[Network, ...] = ()

    def path(self, path: str) -> bool:
        return self.paths is not None and self.paths.fullmatch(path) is not None

    def address(self, address: str) -> bool:
        return bool(self.networks) and bool(address) and _in_networks(self.networks, address)


@functools.lru_cache(maxsize=1024)  # on every counted view with networks set; parsing an address costs ~10 us
def _in_networks(networks: tuple[Network, ...], address: str) -> bool:
    ip = geo.client_ip(address)
    return ip is not None and any(ip.version == network.version and ip in network for network in networks)


def ignore_rules(text: str) -> Ignore:
    """Parse ``STATS_IGNORE``: comma- or space-separated path patterns (starting with ``/``) and networks
    (CIDR or one address); a ValueError naming the first entry that is neither."""
    entries = [entry for entry in re.split(r"[\s,]+", text.strip()) if entry]
    if len(entries) > MAX_RULES:
        raise ValueError(f"at most {MAX_RULES} paths and networks")
    patterns, networks = [], []
    for entry in entries:
        if entry.startswith("/"):
            if any(ord(c) < 33 or ord(c) == 127 for c in entry) or len(entry) > 200:
                raise ValueError(f"{entry[:50]!r} is not a path pattern like /drafts/*")
            patterns.append(fnmatch.translate(entry))
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry[:50]!r} is neither a path pattern like /drafts/* nor a network like "
                             "203.0.113.0/24 or 2001:db8::/32") from None
    return Ignore(re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None, tuple(networks))


def owner_flag(cookies: Mapping[str, str]) -> bool:
    """Whether the request comes from a browser the owner left out."""
    return cookies.get(COOKIE) == COOKIE_VALUE


def excluded(rules: Ignore | None, path: str, address: str, cookies: Mapping[str, str]) -> bool:
    """Whether a view of ``path`` from ``address`` is left out of every count (see the module docstring)."""
    return owner_flag(cookies) or (rules is not None and (rules.path(path) or rules.address(address)))


def set_flag(response: Response, excluded_now: bool) -> None:
    """Leave this browser out (``excluded_now``) or count it again (the cookie is removed)."""
    if excluded_now:
        response.set_cookie(COOKIE, COOKIE_VALUE, max_age=COOKIE_SECONDS, path="/", secure=True, samesite="Strict")
    else:
        response.delete_cookie(COOKIE, path="/", secure=True, samesite="Strict")
