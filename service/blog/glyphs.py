"""Text set in pre-rasterised glyphs on an 8-bit canvas, in pure Python (no imaging library in the package).

The glyphs come from ``card_glyphs.bin`` beside this module (built by
``tools/card_glyphs.py`` from the DejaVu fonts; licence in
``card_glyphs.LICENSE``), read once per process on first use. A `Face` is
one font at one size: it measures text (`Face.width`), wraps it
(`Face.wrap`) and draws it (`Face.draw`) onto a `Canvas` whose bytes are
palette indices, where a glyph's coverage becomes one of a colour ramp's
`LEVELS` indices. Characters the file lacks are not drawn (`Face.drawable`
keeps only the ones it has).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zlib
from pathlib import Path

GLYPHS_FILE = Path(__file__).with_name("card_glyphs.bin")
#: Indices a colour ramp spans: coverage 0..255 becomes ``base + 0 .. base + LEVELS - 1``.
LEVELS = 64
ELLIPSIS = "…"

_loaded: dict[str, Face] = {}
_lock = threading.Lock()


@dataclasses.dataclass
class Canvas:
    """``width`` x ``height`` palette indices, row by row, all 0 (the background) at first."""

    width: int
    height: int
    pixels: bytearray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.pixels = bytearray(self.width * self.height)

    def fill(self, left: int, top: int, right: int, bottom: int, index: int) -> None:
        """Paint the rectangle [left, right) x [top, bottom) (clipped to the canvas) with ``index``."""
        left, right = max(0, left), min(self.width, right)
        for y in range(max(0, top), min(self.height, bottom)):
            start = y * self.width
            self.pixels[start + left:start + right] = bytes([index]) * max(0, right - left)


class Face:
    """One font at one size from the glyph file."""

    def __init__(self, header: dict, data: memoryview):
        self.size: int = header["size"]
        self.ascent: int = header["ascent"]
        self.descent: int = header["descent"]
        self._glyphs: dict[str, tuple[float, int, int, int, int, int]] = {
            chr(int(code)): tuple(values) for code, values in header["glyphs"].items()}
        self._data = data

    def drawable(self, text: str) -> str:
        """``text`` without the characters this face cannot draw."""
        return "".join(char for char in text if char in self._glyphs)

    def width(self, text: str) -> float:
        """The advance of ``text`` in pixels (characters it cannot draw count 0)."""
        glyphs = self._glyphs
        return sum(glyphs[char][0] for char in text if char in glyphs)

    def fit(self, text: str, width: float) -> str:
        """The longest start of ``text`` no wider than ``width``."""
        total, glyphs = 0.0, self._glyphs
        for index, char in enumerate(text):
            total += glyphs[char][0] if char in glyphs else 0
            if total > width:
                return text[:index]
        return text

    def wrap(self, text: str, width: float, max_lines: int) -> tuple[list[str], bool]:
        """``text`` broken at spaces into lines at most ``width`` wide (a longer word is broken where it must),
        at most ``max_lines`` of them, and whether text was left out (the last line then ends in "…")."""
        lines: list[str] = []
        words = text.split()
        line = ""
        while words and len(lines) < max_lines:
            word = words[0]
            candidate = f"{line} {word}" if line else word
            if self.width(candidate) <= width:
                line = candidate
                words.pop(0)
                continue
            if line:
                lines.append(line)
                line = ""
                continue
            head = self.fit(word, width) or word[0]
            lines.append(head)
            words[0] = word[len(head):]
        if line and len(lines) < max_lines:
            lines.append(line)
            line = ""
        cut = bool(words) or bool(line)
        if cut and lines:
            room = width - self.width(ELLIPSIS)
            lines[-1] = self.fit(lines[-1], room).rstrip(" ,;:.-–—") + ELLIPSIS
        return lines, cut

    def draw(self, canvas: Canvas, x: float, baseline: int, text: str, ramp: int) -> None:
        """Draw ``text`` with its pen starting at ``x`` on ``baseline``, in the ramp starting at index ``ramp``
        (`LEVELS` indices, its first the background's colour). Pixels off the canvas are clipped; where glyphs
        overlap the stronger coverage wins."""
        # coverage 0 stays index 0 (the background): a glyph's empty corners never paint over a neighbour
        table = bytes([0, *(ramp + (coverage * (LEVELS - 1) + 127) // 255 for coverage in range(1, 256))])
        pixels, data = canvas.pixels, self._data
        for char in text:
            if char not in self._glyphs:
                continue
            advance, left, top, width, height, offset = self._glyphs[char]
            gx, gy = round(x) + left, baseline + top
            x += advance
            skip_left, skip_right = max(0, -gx), max(0, gx + width - canvas.width)
            if width - skip_left - skip_right <= 0:
                continue
            for row in range(max(0, -gy), min(height, canvas.height - gy)):
                source = bytes(data[offset + row * width + skip_left:offset + (row + 1) * width - skip_right])
                start = (gy + row) * canvas.width + gx + skip_left
                end = start + len(source)
                mapped = source.translate(table)
                pixels[start:end] = bytes(map(max, pixels[start:end], mapped))


def face(name: str) -> Face:
    """The face ``name`` of the glyph file (``title``, ``title_small`` or ``meta``); the file is read once."""
    with _lock:
        if not _loaded:
            raw = zlib.decompress(GLYPHS_FILE.read_bytes())
            header, _, data = raw.partition(b"\0")
            view = memoryview(data)
            for key, value in json.loads(header)["faces"].items():
                _loaded[key] = Face(value, view)
    return _loaded[name]
