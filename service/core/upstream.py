"""The base of the upstream clients (Spotify, GitHub, Telegram, Turnstile), and their one exception.

A client is a small object (`Client`) holding its base URL, its
``(connect, read)`` timeouts and one `requests.Session`, created on first
use and reused across calls: no upstream call without a timeout. Features
keep one client per app (`deps.Deps.client`). `UpstreamError` is the one
exception a client raises; its
``transient`` flag says whether trying again later can succeed (timeouts,
connection errors, 5xx, 429, malformed answers) and ``retry_after`` carries
an upstream's requested wait in seconds.

Every JSON answer is read with `json_body`: JSON may escape half of a UTF-16
surrogate pair (``"\\ud800"``, GitHub passes such text on from its users),
which decoding turns into a lone surrogate that no UTF-8 encoder takes (a
page, a feed, Redis); it enters as U+FFFD instead, so text from an upstream
is always valid UTF-8 past this point.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from .redaction import redact
from .version import __version__

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

#: (connect, read) seconds for every upstream call.
TIMEOUT = (3.05, 5.0)
USER_AGENT = f"vitae/{__version__} (self-hosted resume site)"


class UpstreamError(Exception):
    """An upstream call that did not give a usable answer.

    ``status`` is the HTTP status (None when there was no answer), ``transient``
    whether a later retry may succeed, ``retry_after`` the upstream's requested
    wait in seconds (or None). The message never contains tokens or the
    upstream's body, and whatever upstream text it quotes passes `redaction.redact`
    here, so no configured secret survives in it.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = True,
                 retry_after: float | None = None):
        super().__init__(redact(message))
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


def header_seconds(value: str | None) -> float | None:
    """A header holding a number of seconds or a count (``Retry-After``, rate-limit headers) as a
    finite, non-negative float; None when absent or unreadable (an HTTP date, ``nan``, ``-1``)."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def web_url(value: Any) -> str | None:
    """``value`` if it is an absolute http(s) URL (safe for an href or img src), else None."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def valid_text(value: Any) -> Any:
    """``value`` (decoded JSON) with every lone surrogate in its strings, keys included, replaced by U+FFFD.

    Walking costs about four times the parse (1.8 ms for 100 GitHub issues, 240 kB), once per refresh."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [valid_text(item) for item in value]
    if isinstance(value, dict):
        return {valid_text(key): valid_text(item) for key, item in value.items()}
    return value


def json_body(response: requests.Response) -> Any:
    """The answer's JSON with only valid text in it (see the module); raises ``ValueError`` when it is not
    JSON (nesting too deep for Python's parser included)."""
    try:
        return valid_text(response.json())
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def session() -> requests.Session:
    """A new session with the product's User-Agent (one per upstream, reused across calls)."""
    import requests
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    return s


def classify(exc: requests.RequestException) -> UpstreamError:
    """Turn a requests failure (timeout, refused connection, ...) into a transient `UpstreamError`."""
    import requests
    kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
    return UpstreamError(f"upstream {kind}: {type(exc).__name__}", transient=True)


class Client:
    """An upstream's base URL, ``(connect, read)`` timeouts and session (made on first use, then reused).

    `request` makes one call with the timeouts and turns a failure to get any answer into a transient
    `UpstreamError`; reading the answer is the subclass's business.
    """

    def __init__(self, base_url: str, *, read_timeout: float = TIMEOUT[1], headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = (TIMEOUT[0], read_timeout)
        self._headers = headers or {}
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = session()
            self._session.headers.update(self._headers)
        return self._session

    def request(self, method: str, path: str, *, timeout: tuple[float, float] | None = None,
                **kwargs: Any) -> requests.Response:
        """``method`` on ``base_url + path`` (redirects not followed); raises a transient `UpstreamError` when
        no answer came (timeout, refused or dropped connection)."""
        import requests

        try:
            return self.session.request(method, self.base_url + path, timeout=timeout or self.timeout,
                                        allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise classify(exc) from None

