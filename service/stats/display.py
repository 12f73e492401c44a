"""How the owner's numbers and values are shown outside the page's HTML escaping: a change in words and
arrows (the page, the terminal, the digest), and a stored value made harmless in a terminal or a message.

A stored value is already cut down when counted (see `counting`), but tables added later may hold text a
visitor chose; `printable` is the last guard wherever a value is printed raw.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

#: Longest value printed in a terminal or a message (the rest is replaced by an ellipsis).
MAX_SHOWN = 200


def printable(value: str, limit: int = MAX_SHOWN) -> str:
    """``value`` with control, format (bidi overrides, zero-width) and other invisible characters written
    as ``\\uXXXX`` escapes, so a terminal or a chat shows what is stored and nothing can move the cursor,
    colour the screen or reorder the line; cut to ``limit`` characters."""
    shown = "".join(c if unicodedata.category(c)[0] not in "CZ" or c == " " else f"\\u{ord(c):04x}"
                    for c in value[:limit])
    return shown + ("…" if len(value) > limit else "")


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def short(change: Mapping[str, Any]) -> str:
    """A change as an arrow, the signed difference and the percentage: ``▲ +3 (+150.0 %)``, ``▼ -1 (-50.0 %)``,
    ``= 0``; ``▲ +2 (new)`` when the previous period had none."""
    delta, percent = change["delta"], change["percent"]
    if not delta:
        return "= 0"
    arrow = "▲" if delta > 0 else "▼"
    sign = "+" if delta > 0 else "-"
    share = "new" if percent is None else f"{percent:+.1f} %"
    return f"{arrow} {sign}{_number(abs(delta))} ({share})"


def spoken(change: Mapping[str, Any]) -> str:
    """The same change in words (for screen readers and plain text): ``up 3 from 2 (+150.0 %)``."""
    delta, previous, percent = change["delta"], change["previous"], change["percent"]
    if not delta:
        return f"unchanged from {_number(previous)}"
    way = "up" if delta > 0 else "down"
    share = "" if percent is None else f" ({percent:+.1f} %)"
    return f"{way} {_number(abs(delta))} from {_number(previous)}{share}"


def direction(change: Mapping[str, Any]) -> str:
    """``up``, ``down`` or ``same``: the class the page styles (besides the arrow and the words)."""
    return "up" if change["delta"] > 0 else "down" if change["delta"] < 0 else "same"

