"""A post's share card: the 1200 x 630 PNG its page names as ``og:image`` and ``twitter:image``.

The card shows the site's name, the post's title (wrapped: three lines in
the large size, else four in the smaller one, then cut with "…") and its
date, in the site's dark colours. It is drawn in pure Python from
pre-rasterised glyphs (`service.blog.glyphs`) and written as a palette PNG
(`service.blog.png`): no imaging library in the Lambda package.

Only a published post's own title is ever drawn, cleaned first (`clean`):
at most `MAX_TITLE` characters are considered, control, formatting (bidi
overrides included), private-use and unassigned characters are removed, and
characters the glyphs lack (emoji, CJK, Arabic and Hebrew among them) are left
out; a title left with no letter or digit reads "Post <number>". So the work per card is
bounded whatever the title holds.

`version` names a card by what it shows (and `DESIGN`): it is the ETag, the
``?v=`` of the page's image address and the key of the card kept in
storage, so a card is drawn once per change of the post (or of the site's
name), whichever process or Lambda instance is asked first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from ..core import cache

if TYPE_CHECKING:
    from ..core.deps import Deps

WIDTH, HEIGHT = 1200, 630
#: Raised when the card's look changes: every card then gets a new version (so a new ETag and storage key).
DESIGN = 1
#: Characters of a title (GitHub allows 256) and of the site's name considered at most.
MAX_TITLE = 300
MAX_NAME = 100
MARGIN = 88
BAR = 20
#: The site's dark theme (site/assets/site.css): background, title, accent (name and rule), muted (date).
BACKGROUND, TEXT, ACCENT, MUTED = (0x10, 0x14, 0x18), (0xE6, 0xEB, 0xF0), (0x5E, 0xC8, 0xBE), (0xA2, 0xAD, 0xB8)
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_SPACE = re.compile(r"\s+")


def clean(text: str, limit: int) -> str:
    """``text`` in NFC, its first ``limit`` characters only, without control, formatting, surrogate,
    private-use and unassigned characters, whitespace runs made one space."""
    text = unicodedata.normalize("NFC", text[:limit * 2])[:limit]
    kept = "".join(" " if char.isspace() else char for char in text
                   if char.isspace() or unicodedata.category(char) not in _DROPPED)
    return _SPACE.sub(" ", kept).strip()


def version(title: str, site_name: str, date: str) -> str:
    """The card's name: a digest of what it shows and of `DESIGN` (20 hex digits)."""
    text = json.dumps([DESIGN, title, site_name, date], ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _palette() -> list[tuple[int, int, int]]:
    from .glyphs import LEVELS

    def ramp(colour: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        return [tuple(round(b + (c - b) * i / (LEVELS - 1)) for b, c in zip(BACKGROUND, colour, strict=True))
                for i in range(LEVELS)]
    return [*ramp(TEXT), *ramp(ACCENT), *ramp(MUTED), ACCENT]


def render(title: str, site_name: str, date: str, fallback: str) -> bytes:
    """The card's PNG: ``title`` (or ``fallback`` when no letter or digit of it can be drawn), ``site_name``
    and ``date`` (any of them may be empty), each cleaned by `clean`."""
    from . import glyphs, png

    title_ramp, name_ramp, date_ramp, accent = 0, glyphs.LEVELS, 2 * glyphs.LEVELS, 3 * glyphs.LEVELS
    canvas = glyphs.Canvas(WIDTH, HEIGHT)
    canvas.fill(0, 0, BAR, HEIGHT, accent)
    width = WIDTH - 2 * MARGIN
    meta = glyphs.face("meta")
    name = meta.drawable(clean(site_name, MAX_NAME)).strip()
    if name:
        (line,), _ = meta.wrap(name, width, 1)
        meta.draw(canvas, MARGIN, 112, line, name_ramp)
    canvas.fill(MARGIN, 140, MARGIN + 72, 146, accent)
    date_text = meta.drawable(clean(date, MAX_NAME)).strip()
    if date_text:
        meta.draw(canvas, MARGIN, HEIGHT - 72, meta.wrap(date_text, width, 1)[0][0], date_ramp)

    large, small = glyphs.face("title"), glyphs.face("title_small")
    text = " ".join(large.drawable(clean(title, MAX_TITLE)).split())
    if not any(char.isalnum() for char in text):  # a lone dash or quote left of a title in another script
        text = fallback
    lines, cut = large.wrap(text, width, 3)
    face = large
    if cut:
        lines, _ = small.wrap(text, width, 4)
        face = small
    leading = round(face.size * 1.2)
    top, bottom = 176, HEIGHT - 130  # between the rule and the date
    first = top + (bottom - top - leading * len(lines)) // 2 + face.ascent
    for index, line in enumerate(lines):
        face.draw(canvas, MARGIN, first + index * leading, line, title_ramp)
    return png.palette_png(WIDTH, HEIGHT, canvas.pixels, _palette())


def card(deps: Deps, post: dict[str, Any], site_name: str, date: str) -> tuple[str, bytes]:
    """(version, PNG) of ``post``'s card: read from storage when a process drew it before, else drawn and
    kept there (`cache.KEEP`). Raises `StorageError`."""
    name = version(post["title"], site_name, date)
    key = f"blog:card:{name}"
    stored = deps.storage.get(key)
    if stored is not None:
        try:
            return name, base64.b64decode(stored, validate=True)
        except (binascii.Error, ValueError):
            pass  # unreadable: drawn again and stored over
    data = render(post["title"], site_name, date, f"Post {post['number']}")
    deps.storage.set(key, base64.b64encode(data).decode("ascii"), ttl=cache.KEEP)
    return name, data
