"""Settings from environment variables, parsed and validated once at start-up.

Every setting the service reads is declared in `SETTINGS` (name, default,
parser, one line of help); `.env.example` lists the same names (a test keeps
them in step), and the documentation's configuration reference is generated
from this registry. A bad value raises `ConfigError` naming the
variable, which stops start-up.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import NotConfigured


class ConfigError(Exception):
    """A setting with a value the service cannot run with."""


@dataclasses.dataclass(frozen=True)
class Rate:
    """``count`` events per ``period`` seconds, written like ``5/hour``."""

    count: int
    period: int

    def __str__(self) -> str:
        return f"{self.count}/{self.period}s"


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
            "d": 86400, "day": 86400}


def rate(text: str) -> Rate | None:
    """``N/second|minute|hour|day`` (also ``N/30s``-style multiples); ``off`` disables."""
    if text.strip().lower() in ("off", "none", "0"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", text.lower())
    if not match or match[3] not in _PERIODS or int(match[1]) < 1 or int(match[2] or 1) < 1:
        raise ValueError("expected N/second, N/minute, N/hour or N/day (or 'off')")
    return Rate(int(match[1]), int(match[2] or 1) * _PERIODS[match[3]])


def _bounded(convert: Callable[[str], Any], kind: str, low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise ValueError(f"expected {kind}") from None
        if not low <= value <= high:
            raise ValueError(f"expected {low}..{high}")
        return value
    return parse


def integer(low: int, high: int) -> Callable[[str], int]:
    return _bounded(int, "a whole number", low, high)


def number(low: float, high: float) -> Callable[[str], float]:
    return _bounded(float, "a number", low, high)


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def origins(text: str) -> tuple[str, ...]:
    """Comma-separated origins like ``https://example.com``."""
    result = []
    for item in filter(None, (part.strip().rstrip("/") for part in text.split(","))):
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"{item!r} is not an origin like https://example.com")
        result.append(item)
    return tuple(result)


def http_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http(s) URL")
    return text.strip().rstrip("/")


def text(value: str) -> str:
    return value.strip()


def matching(regex: str, expected: str) -> Callable[[str], str | None]:
    """A value matching ``regex`` in full (empty: None), else ValueError naming ``expected``."""
    def parse(value: str) -> str | None:
        value = value.strip()
        if not value:
            return None
        if not re.fullmatch(regex, value):
            raise ValueError(f"expected {expected}")
        return value
    return parse


def one_of(*values: str) -> Callable[[str], str]:
    """A parser accepting one of ``values`` (any case, returned in lower case), else ValueError listing them."""
    def parse(value: str) -> str:
        value = value.strip().lower()
        if value not in values:
            raise ValueError(f"expected {', '.join(values[:-1])} or {values[-1]}")
        return value
    return parse


def timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Berlin`` (or ``UTC``), checked against the zone data
    (the system's, else the ``tzdata`` package's); ValueError for any other."""
    value = value.strip()
    if value == "UTC":  # the default imports and reads no zone data (nothing to load at a Lambda cold start)
        return value
    import zoneinfo

    try:
        if not value or len(value) > 64:
            raise ValueError
        zoneinfo.ZoneInfo(value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Berlin") from None
    return value


def log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def project_root() -> str:
    """The checkout's (or the package's) top folder: the one holding ``service/`` and ``site/``."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_path(path: str) -> str:
    """``path`` as is when absolute, else under `project_root` (how ``SITE_DIR`` and ``SITE_RESUME`` are read)."""
    return path if os.path.isabs(path) else os.path.join(project_root(), path)


def api_base(value: str) -> str:
    """A path such as ``/api`` or an http(s) URL, without the trailing slash."""
    value = value.strip().rstrip("/")
    if value.startswith("/") and not value.startswith("//") and re.fullmatch(r"[A-Za-z0-9/._~-]+", value):
        return value
    return http_url(value)



@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


#: The settings every part of the service reads; each feature declares its own (`core.feature.Feature`).
CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("SECRET_KEY", None, text, "Key for the visitor hash (HMAC). Unset: a random key is kept in the "
            "instance folder (fine self-hosted; set it on Lambda).", secret=True),
    Setting("STORAGE_URL", None, text, "sqlite:///path.db, redis://[:password@]host:port/db, rediss://..., "
            "dynamodb://table?region=... Unset: SQLite in the instance folder.", secret=True),
    Setting("DYNAMODB_COUNTER_SHARDS", "4", integer(1, 100), "Items each site-wide DynamoDB counter is spread "
            "over (about 1,000 writes/s each)."),
    Setting("DYNAMODB_LOG_SETTLE", "5", number(0, 60), "Seconds a recorded view waits on DynamoDB before it is "
            "folded (no write can still land behind it; 0 only for a single writer, as in tests)."),
    Setting("SITE_URL", "http://127.0.0.1:8000", http_url, "The site's public URL (feeds, sitemap, visitor hash)."),
    Setting("TRUSTED_PROXIES", "0", integer(0, 10), "Proxies in front of the app whose X-Forwarded-For is "
            "trusted (0: the socket address is the client)."),
    Setting("ALLOWED_ORIGINS", "", origins, "Comma-separated origins allowed to call the API from a browser "
            "(CORS) besides the site's own (SITE_URL's); browser POSTs from any other origin get 403 (empty: "
            "only the site's own)."),
    Setting("ORIGIN_SECRET", "", text, "When set, every request (the API, /api/health, pages, feeds, sitemap, "
            "/stats, the site) must carry it in X-Origin-Verify, else 403: only the CDN can reach the app.",
            secret=True),
    Setting("ORIGIN_SECRET_PREVIOUS", "", text, "During a rotation, the origin secret being replaced: accepted "
            "as well as ORIGIN_SECRET until CloudFront sends the new one everywhere (then unset it).", secret=True),
    Setting("MAX_BODY_BYTES", "65536", integer(1024, 10 * 1024 * 1024), "Largest request body accepted (413 "
            "past it)."),
    Setting("LOG_LEVEL", "INFO", log_level, "DEBUG, INFO, WARNING or ERROR."),
    Setting("UPSTREAM_TIMEOUT", "5", number(0.05, 10), "Seconds to wait for an upstream's answer (Spotify, "
            "GitHub) before serving the cached value."),
)


def load(settings: Iterable[Setting], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse ``settings`` from ``environ`` (default ``os.environ``); raise ConfigError on a bad one."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in settings:
        raw = environ.get(setting.name)
        if raw is None or (raw == "" and setting.default is not None):
            raw = setting.default
        if raw is None:
            config[setting.name] = None
            continue
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise ConfigError(f"invalid {setting.name}={shown}: {exc}") from None
    return config


def require(settings: Mapping[str, Any], *names: str) -> list[Any]:
    """The values of ``settings`` ``names``; a `NotConfigured` error naming the unset ones."""
    values = [settings.get(name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise NotConfigured(f"this widget is off: set {', '.join(missing)}", missing=missing)
    return values


def instance_secret(instance_path: str) -> str:
    """The instance folder's random secret key, created (mode 0600) on first use."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as handle:
            key = handle.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(instance_path, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temp = f"{path}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    try:  # link, not rename: when two workers race, the first key wins and both read it
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()
