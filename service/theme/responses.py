"""Cached answers of rendered pages and built files: gzip, weak ETags and a per-process memo, once.

`Memo` is a thread-safe least-recently-used memo bounded by entries or by
bytes: the blog keeps its rendered post pages in one (per app), the static
file server the gzip of each file (per process). `negotiate_gzip` swaps a
response's body for its gzip when the client accepts it, marks every
answer ``Vary: Accept-Encoding`` and makes the ETag weak on the gzipped
answer and on the 304 that revalidates it (the bytes differ from the
uncompressed ones, the meaning does not). `Rendered` is a rendered body
with its ETag and, once asked for, its gzip.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask import Response, request

#: Bodies smaller than this are sent as they are: gzip saves nothing worth a header.
MIN_GZIP_BYTES = 512

class Memo:
    """``make()`` results kept under their key, the most recently used first out last.

    At most ``max_items`` entries and, when ``max_bytes`` is given, at most that many bytes in all
    (``size`` of each value; one entry is always kept). ``make`` runs outside the lock: two threads may
    make the same value once each, and the later one is kept.
    """

    def __init__(self, max_items: int | None = None, max_bytes: int | None = None,
                 size: Callable[[Any], int] = len):
        self.max_items, self.max_bytes, self.size = max_items, max_bytes, size
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            if key in self._values:
                self._bytes -= self.size(self._values.pop(key))
            self._values[key] = value
            self._bytes += self.size(value)
            while len(self._values) > 1 and (
                    (self.max_items is not None and len(self._values) > self.max_items)
                    or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                self._bytes -= self.size(self._values.popitem(last=False)[1])
        return value


def accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def negotiate_gzip(response: Response, size: int, gzipped: Callable[[], bytes],
                   statuses: tuple[int, ...] = (200,)) -> Response:
    """``response`` varying on Accept-Encoding, its body swapped for ``gzipped()`` when the client accepts
    gzip, its status is one of ``statuses`` and the plain body (``size`` bytes) is at least
    `MIN_GZIP_BYTES`; the ETag is weak then, and on a 304 to a client that accepts gzip."""
    response.vary.add("Accept-Encoding")
    if not accepts_gzip():
        return response
    etag, _ = response.get_etag()
    if response.status_code == 304:
        if etag:
            response.set_etag(etag, weak=True)
        return response
    if response.status_code not in statuses or size < MIN_GZIP_BYTES:
        return response
    original = response.response
    response.direct_passthrough = False
    response.set_data(gzipped())
    if hasattr(original, "close"):
        original.close()
    response.headers["Content-Encoding"] = "gzip"
    if etag:
        response.set_etag(etag, weak=True)
    return response


@dataclasses.dataclass
class Rendered:
    """A rendered body with its ETag, its ``Last-Modified`` time (ISO) and, once asked for, its gzip."""

    data: bytes
    etag: str
    modified: str | None = None
    zipped: bytes | None = None

    @classmethod
    def of(cls, body: str | bytes, modified: str | None = None) -> Rendered:
        data = body.encode() if isinstance(body, str) else body
        return cls(data, hashlib.sha1(data).hexdigest(), modified)  # noqa: S324 - an ETag, not a secret

    def gzipped(self) -> bytes:
        if self.zipped is None:
            self.zipped = gzip.compress(self.data, compresslevel=6, mtime=0)
        return self.zipped
