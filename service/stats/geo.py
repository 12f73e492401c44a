"""A view's country: from the CDN in front, or from a GeoIP database file the owner provides.

In this order, the first that gives two capital letters wins:

1. behind a proxy the app trusts (``TRUSTED_PROXIES`` > 0, or ``ORIGIN_SECRET``
   set, so every request came through the CDN): CloudFront's
   ``CloudFront-Viewer-Country``, then Cloudflare's ``CF-IPCountry``
   (CloudFront's first: on AWS a visitor's own ``CF-IPCountry`` passes
   through CloudFront untouched). Without a trusted proxy neither header is
   read, as anyone can send them; Cloudflare's ``XX`` (unknown) is unknown;
2. ``GEOIP_DATABASE``: a MaxMind or DB-IP country (or city) ``.mmdb`` file,
   opened once per process on first use and read into memory (the
   ``maxminddb`` package's pure-Python reader, installed with the
   self-hosted server's requirements, not in the Lambda package), looked up with the client
   address the counter uses; the record's ``country``, else its
   ``registered_country``;
3. `UNKNOWN`.

Only the two letters leave this module: the address is looked up in memory and never stored or logged.
A database file that cannot be read is logged once and every country is `UNKNOWN` until a restart
(which is also how a refreshed file is picked up).
"""

from __future__ import annotations

import functools
import importlib.util
import ipaddress
import logging
import os
import re
from collections.abc import Mapping

log = logging.getLogger(__name__)

UNKNOWN = "(unknown)"
#: The CDN headers read behind a trusted proxy, in order.
HEADERS = ("CloudFront-Viewer-Country", "CF-IPCountry")
_COUNTRY = re.compile(r"[A-Z]{2}")
_NOT_A_COUNTRY = frozenset({"XX"})  # Cloudflare's "no country known"


def code(value: object) -> str | None:
    """``value`` if it is a country code (exactly two capital letters, not ``XX``), else None."""
    if isinstance(value, str) and _COUNTRY.fullmatch(value) and value not in _NOT_A_COUNTRY:
        return value
    return None


def database_file(text: str) -> str | None:
    """Parse ``GEOIP_DATABASE``: empty for none, else a readable file (a ValueError names what is wrong)."""
    path = text.strip()
    if not path:
        return None
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ValueError("no readable file there (a MaxMind or DB-IP country .mmdb)")
    if importlib.util.find_spec("maxminddb") is None:
        raise ValueError("the maxminddb package is not installed (it comes with requirements-server.txt)")
    return path


def client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client address as an address object (an IPv4 client on a dual-stack socket, ``::ffff:a.b.c.d``,
    as IPv4; an IPv6 zone dropped), or None for anything that is not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.cache  # once per process: the whole file in memory, shared by every request
def _reader(path: str):
    import maxminddb  # only where a database is configured
    try:
        return maxminddb.open_database(path, maxminddb.MODE_MEMORY)
    # InvalidDatabaseError (a RuntimeError) for most damage, but a damaged metadata section fails as the
    # reader builds it (TypeError, KeyError...): whatever it is, caught here, or every counted view would
    # read the whole file again and answer 500
    except Exception as exc:
        log.error("GEOIP_DATABASE cannot be read, countries stay unknown until a restart: %s",
                  type(exc).__name__)
        return None


@functools.lru_cache(maxsize=1024)  # on every counted view; a visitor's views come from one address
def _lookup(path: str, address: str) -> str | None:
    reader = _reader(path)
    if reader is None or not address:
        return None
    ip = client_ip(address)
    if ip is None:
        return None
    try:
        record = reader.get(ip)
    except (ValueError, RuntimeError):  # not an address, IPv6 in an IPv4-only database, a damaged file
        return None
    if not isinstance(record, dict):
        return None
    for field in ("country", "registered_country"):
        entry = record.get(field)
        found = code(entry.get("iso_code")) if isinstance(entry, dict) else None
        if found:
            return found
    return None


def behind_trusted_proxy(settings: Mapping) -> bool:
    """Whether the CDN's country headers can be believed: a proxy the app trusts sets them."""
    return bool(settings["TRUSTED_PROXIES"] or settings["ORIGIN_SECRET"])


def country(headers: Mapping[str, str], address: str, *, trusted: bool, database: str | None) -> str:
    """The view's country code, or `UNKNOWN` (see the module docstring for the order)."""
    if trusted:
        for name in HEADERS:
            found = code((headers.get(name) or "").strip())
            if found:
                return found
    if database:
        return _lookup(database, address) or UNKNOWN
    return UNKNOWN
