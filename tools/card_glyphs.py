"""Build ``service/blog/card_glyphs.bin``: the glyphs the blog's share cards are drawn with.

The function draws its cards in pure Python (`service.blog.glyphs`), with no
imaging library in its package: this script, run by a developer with Pillow
installed (requirements-dev.txt), rasterises each character of `CHARSET`
once per face of `FACES` from the DejaVu fonts (Debian's ``fonts-dejavu-core``;
their licence, which allows redistribution, ships beside the file as
``card_glyphs.LICENSE``) and writes them as one zlib-compressed file::

    python tools/card_glyphs.py [--fonts /usr/share/fonts/truetype/dejavu]

The file is a JSON header, a NUL byte, then every glyph's 8-bit coverage
bitmap, row by row. The header holds, per face, its pixel size, ascent and
descent, and per character ``[advance, left, top, width, height, offset]``:
the advance in pixels (a float), the bitmap's position from the pen on the
baseline, its size and where its bytes start. A character the font lacks is
left out; the card drops what it cannot draw.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "service" / "blog" / "card_glyphs.bin"
DEFAULT_FONTS = Path("/usr/share/fonts/truetype/dejavu")

#: (first, last) code points drawn: Latin (with Romanian's comma-below letters), Greek, Cyrillic, punctuation.
RANGES = ((0x20, 0x7E), (0xA0, 0x17F), (0x192, 0x192), (0x218, 0x21B), (0x2C6, 0x2C7), (0x2DA, 0x2DC),
          (0x384, 0x3CE), (0x400, 0x45F), (0x490, 0x491), (0x2013, 0x2014), (0x2018, 0x201E), (0x2020, 0x2022),
          (0x2026, 0x2026), (0x2030, 0x2030), (0x2039, 0x203A), (0x20AC, 0x20AC), (0x2116, 0x2116),
          (0x2122, 0x2122), (0x2190, 0x2193), (0x2212, 0x2212))
CHARSET = "".join(chr(code) for first, last in RANGES for code in range(first, last + 1))
#: name -> (font file, pixel size): the title's two sizes (long titles take the smaller) and the meta line's.
FACES = {"title": ("DejaVuSans-Bold.ttf", 68), "title_small": ("DejaVuSans-Bold.ttf", 54),
         "meta": ("DejaVuSans.ttf", 32)}
#: A code point no font has: what the font draws for a missing character.
MISSING = "\U000f0000"


def _glyph(font, char: str) -> tuple[float, int, int, bytes, int, int]:
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(char, anchor="ls")
    width, height = max(0, right - left), max(0, bottom - top)
    bitmap = b""
    if width and height:
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-left, -top), char, font=font, fill=255, anchor="ls")
        bitmap = image.tobytes()
    return round(font.getlength(char), 3), left, top, bitmap, width, height


def build(fonts: Path) -> bytes:
    """The file's bytes, from the font files in ``fonts``."""
    from PIL import ImageFont

    header: dict = {"format": 1, "faces": {}}
    data = bytearray()
    for name, (file, size) in FACES.items():
        font = ImageFont.truetype(str(fonts / file), size, layout_engine=ImageFont.Layout.BASIC)
        ascent, descent = font.getmetrics()
        missing = _glyph(font, MISSING)
        glyphs = {}
        for char in CHARSET:
            advance, left, top, bitmap, width, height = _glyph(font, char)
            if char != " " and (advance, left, top, bitmap) == missing[:4]:
                continue
            glyphs[str(ord(char))] = [advance, left, top, width, height, len(data)]
            data += bitmap
        header["faces"][name] = {"font": file, "size": size, "ascent": ascent, "descent": descent,
                                 "glyphs": glyphs}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    return zlib.compress(text + b"\0" + bytes(data), 9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fonts", type=Path, default=DEFAULT_FONTS, help="folder holding the DejaVu fonts")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    arguments.output.write_bytes(build(arguments.fonts))
    print(f"{arguments.output}: {arguments.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
