"""The one place secrets are taken out of text before it leaves the process.

`redact(text)` replaces every registered secret with ``<hidden>``: as
written, URL-encoded (``quote`` and ``quote_plus``) and inside base64 (the
form a Basic ``Authorization`` value gives ``id:secret``, whatever the id),
a Telegram bot token in its URL form (``/bot<token>/``) even when it
is not registered, and the secret path segment after each prefix a feature
registers with `register_path` (a share link's ``/stats/share/<secret>``).
It is applied:

* to every log record when it is made (`install` sets the record factory),
  message, arguments and traceback, so every handler (stdout JSON, gunicorn,
  a test's capture) sees the redacted text;
* to every `upstream.UpstreamError` message, which is what outbox errors,
  dead-letter reasons and the ``flask outbox`` output are made of;
* to every JSON error answer (`errors.error_response`);
* to the request path the app's JSON log lines carry (`logs`).

`init_app` registers the values of the secret settings it is handed (the
app factory passes those marked ``secret`` in `service.features.SETTINGS`),
the password inside ``STORAGE_URL``, and the secret parts the app factory
names (the SMTP password, the webhook URL's path). Registration is process-wide
because logging is: every app made in the process adds its secrets.
Secrets shorter than `MIN_LENGTH` characters are not registered (they would
match ordinary words); base64 forms are matched from `MIN_BASE64` characters.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

HIDDEN = "<hidden>"
MIN_LENGTH = 4
MIN_BASE64 = 8
#: A bot token (``<digits>:<key>``) in a Telegram Bot API path, registered or not.
_BOT_PATH = r"(?<=/bot)\d+(?::|%3[Aa])[A-Za-z0-9_-]+"

_lock = threading.Lock()
_secrets: set[str] = set()
#: (every literal the pattern can start a match with, the pattern): a text holding none of the literals is
#: returned as is, which is what nearly every text is (substring tests cost a tenth of the pattern's scan).
_matcher: tuple[tuple[str, ...], re.Pattern[str]] = (("/bot",), re.compile(_BOT_PATH))
#: {a path prefix: the pattern of the secret segment after it}, always replaced; `register_path` adds more.
_paths: dict[str, str] = {"/bot": _BOT_PATH}


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that depend only on ``secret``, for each of the three byte alignments it
    can have inside a longer encoded value (``id:secret``)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode().rstrip("=")
        total = offset + len(secret)
        start = (0, 2, 3)[offset]  # characters mixing the preceding bytes' bits
        end = total // 3 * 4 + (0, 1, 2)[total % 3]  # characters mixing the following bytes' bits excluded
        core = encoded[start:end]
        if len(core) >= MIN_BASE64:
            cores.add(core)
    return cores


def forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` that is replaced (see the module docstring)."""
    found = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    found |= _base64_cores(secret.encode())
    return {form for form in found if len(form) >= MIN_LENGTH}


def register(values: Iterable[str | None]) -> None:
    """Add secrets to the process-wide set `redact` replaces (short or empty values are skipped)."""
    new = {value for value in values if isinstance(value, str) and len(value) >= MIN_LENGTH}
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        _rebuild()


def register_path(prefix: str) -> None:
    """Always replace the path segment (``A-Z a-z 0-9 _ -``) after ``prefix``, e.g. ``/stats/share/``."""
    with _lock:
        if prefix in _paths:
            return
        _paths[prefix] = rf"(?<={re.escape(prefix)})[A-Za-z0-9_-]+"
        _rebuild()


def _rebuild() -> None:
    """Make `_matcher` from the secrets and path prefixes registered (under `_lock`)."""
    global _matcher
    spellings = sorted({form for secret in _secrets for form in forms(secret)}, key=len, reverse=True)
    _matcher = ((*spellings, *_paths), re.compile("|".join([*map(re.escape, spellings), *_paths.values()])))


def redact(text: str) -> str:
    """``text`` with every registered secret (in every spelling) replaced by ``<hidden>``."""
    if not isinstance(text, str):
        return text
    literals, pattern = _matcher
    return pattern.sub(HIDDEN, text) if any(map(text.__contains__, literals)) else text


def redact_data(value):
    """`redact` applied to every string inside JSON-like ``value`` (dicts, lists), keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def secret_values(config, names: Iterable[str]) -> list[str]:
    """The values in ``config`` of the settings ``names`` (those marked secret), plus the password inside
    ``STORAGE_URL``."""
    values = [config.get(name) for name in names]
    with contextlib.suppress(ValueError):  # a malformed URL has no password to hide (and fails at start-up)
        values.append(urlsplit(config.get("STORAGE_URL") or "").password)
    return [value for value in values if isinstance(value, str)]


_factory_lock = threading.Lock()


def install() -> None:
    """Make every log record redacted when it is made (once per process)."""
    with _factory_lock:
        previous = logging.getLogRecordFactory()
        if getattr(previous, "_vitae_redacting", False):
            return

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            # Only a record that holds a secret is rewritten: others keep their msg and args for whoever
            # reads them (gunicorn's access log passes its atoms as args). A malformed record (arguments
            # that do not fit) is left for the handler to report.
            with contextlib.suppress(Exception):
                message = record.getMessage()
                cleaned = redact(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[0] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                cleaned = redact(text)
                if cleaned != text:
                    record.exc_text = cleaned
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
            return record
        factory._vitae_redacting = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


def init_app(app, secret_names: Iterable[str], parts: Iterable[str] = ()) -> None:
    """Register ``app``'s secrets (the values of the settings ``secret_names``, and ``parts``: secrets inside
    other values, which the layers above name) and redact every log record from now on."""
    register([*secret_values(app.config, secret_names), *parts])
    install()
