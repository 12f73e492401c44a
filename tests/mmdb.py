"""A tiny MaxMind DB (``.mmdb``) writer for tests: an IPv6 tree (IPv4 under ``::/96``, as in MaxMind's and
DB-IP's files) with 24-bit records, the data section and the metadata, per the MaxMind DB format 2.0.

Only what the tests need: maps, UTF-8 strings, unsigned integers and arrays, networks that do not nest.
"""

from __future__ import annotations

import ipaddress
import struct

_MARKER = b"\xab\xcd\xefMaxMind.com"


def _control(kind: int, size: int) -> bytes:
    """The control byte(s) of a field of type ``kind`` (1-15) holding ``size`` (bytes, pairs or items)."""
    if size < 29:
        head, extra = size, b""
    elif size < 285:
        head, extra = 29, bytes([size - 29])
    elif size < 65821:
        head, extra = 30, struct.pack(">H", size - 285)
    else:
        head, extra = 31, struct.pack(">I", size - 65821)[1:]
    if kind <= 7:
        return bytes([(kind << 5) | head]) + extra
    return bytes([head, kind - 7]) + extra  # extended type


def encode(value) -> bytes:
    """One value in the data section's encoding."""
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, int):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        kind = 5 if value < 2**16 else 6 if value < 2**32 else 9
        return _control(kind, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(type(value).__name__)


def write(path, networks: dict[str, dict]) -> None:
    """Write an ``.mmdb`` at ``path`` answering each network (``"198.51.100.0/24"``, ``"2001:db8::/32"``)
    with its record (e.g. ``{"country": {"iso_code": "DE"}}``)."""
    data, tree = b"", [[None, None]]  # a node's two records: None (no data), ("node", n) or ("data", offset)
    for text, record in networks.items():
        network = ipaddress.ip_network(text)
        bits = int(network.network_address)  # an IPv4 address as 128 bits is ::a.b.c.d: under ::/96
        prefix = network.prefixlen + (96 if network.version == 4 else 0)
        node = 0
        for depth in range(prefix):
            bit = (bits >> (127 - depth)) & 1
            if depth == prefix - 1:
                tree[node][bit] = ("data", len(data))
            else:
                child = tree[node][bit]
                if child is None:
                    tree.append([None, None])
                    tree[node][bit] = child = ("node", len(tree) - 1)
                node = child[1]
        data += encode(record)
    count = len(tree)

    def value(entry) -> int:
        if entry is None:
            return count
        return entry[1] if entry[0] == "node" else count + 16 + entry[1]
    nodes = b"".join(value(left).to_bytes(3, "big") + value(right).to_bytes(3, "big") for left, right in tree)
    metadata = {"node_count": count, "record_size": 24, "ip_version": 6, "database_type": "Test-Country",
                "languages": ["en"], "binary_format_major_version": 2, "binary_format_minor_version": 0,
                "build_epoch": 1_800_000_000, "description": {"en": "test database"}}
    with open(path, "wb") as handle:
        handle.write(nodes + b"\0" * 16 + data + _MARKER + encode(metadata))
