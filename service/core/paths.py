"""Page paths: the one canonical form of a page's address, and the counter key of a page.

The visitor counter counts by these paths, the blog reads its posts' counts
by them and the contact form names the page it was sent from with them.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import Invalid

MAX_PATH_LENGTH = 200
_ALLOWED = re.compile(r"[A-Za-z0-9/._~-]*")
_INDEX_FILES = ("index.html", "index.htm")


def normalise_path(raw: object) -> str:
    """A canonical page path, or an `Invalid` error.

    Query and fragment are dropped, percent-escapes decoded once, repeated and
    trailing slashes and a final ``index.html`` removed; ``.``/``..`` segments,
    characters outside ``A-Z a-z 0-9 / . _ ~ -`` and paths over 200
    characters are refused, so junk cannot grow the key space.
    """
    if not isinstance(raw, str):
        raise Invalid("path must be a string such as /blog/12", code="invalid_path")
    path = unquote(raw.strip().split("#", 1)[0].split("?", 1)[0])
    if not path.startswith("/") or not _ALLOWED.fullmatch(path):
        raise Invalid("path must start with / and use only letters, digits and / . _ ~ -", code="invalid_path")
    segments = [segment for segment in path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise Invalid("path must not contain . or .. segments", code="invalid_path")
    if segments and segments[-1] in _INDEX_FILES:
        segments.pop()
    path = "/" + "/".join(segments)
    if len(path) > MAX_PATH_LENGTH:
        raise Invalid(f"path is longer than {MAX_PATH_LENGTH} characters", code="invalid_path")
    return path


def page_key(path: str) -> str:
    return f"page:{path}"
