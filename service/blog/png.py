"""PNG (ISO/IEC 15948) writing for palette images, in pure Python: what the share cards are sent as."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def palette_png(width: int, height: int, pixels: bytes | bytearray, palette: list[tuple[int, int, int]]) -> bytes:
    """An 8-bit palette PNG of ``pixels`` (``width`` x ``height`` indices into ``palette``, row by row).

    Raises ValueError when the sizes disagree or the palette is empty or longer than 256 colours.
    """
    if len(pixels) != width * height or not 0 < len(palette) <= 256 or width <= 0 or height <= 0:
        raise ValueError("pixels must be width x height indices into a palette of 1 to 256 colours")
    rows = b"".join(b"\0" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))  # filter: none
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit, palette, deflate, adaptive, none
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"PLTE", b"".join(bytes(rgb) for rgb in palette))
            + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))
