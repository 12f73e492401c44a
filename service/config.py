"""Settings from environment variables, parsed and validated once at start-up.

Every setting the service reads is declared in `SETTINGS` (name, default,
parser, one line of help); `.env.example` and the README list the same names
(a test keeps them in step). A bad value raises `ConfigError` naming the
variable, which stops start-up.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit


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


def log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def api_base(value: str) -> str:
    """A path such as ``/api`` or an http(s) URL, without the trailing slash."""
    value = value.strip().rstrip("/")
    if value.startswith("/") and not value.startswith("//") and re.fullmatch(r"[A-Za-z0-9/._~-]+", value):
        return value
    return http_url(value)


def widget_names(value: str) -> tuple[str, ...] | None:
    """Comma-separated names of the site's live widgets; ``none`` for none; ``auto`` (None): decided by the build."""
    known = ("visitors", "spotify", "github", "blog", "contact")
    if value.strip().lower() == "auto":
        return None
    if value.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown widget {unknown[0]!r}; expected some of {', '.join(known)}")
    return names


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    # -- core ---------------------------------------------------------------------
    Setting("SECRET_KEY", None, text, "Key for the visitor hash (HMAC). Unset: a random key is kept in the "
            "instance folder (fine self-hosted; set it on Lambda).", secret=True),
    Setting("STORAGE_URL", None, text, "sqlite:///path.db, redis://[:password@]host:port/db, rediss://..., "
            "dynamodb://table?region=... Unset: SQLite in the instance folder.", secret=True),
    Setting("DYNAMODB_COUNTER_SHARDS", "4", integer(1, 100), "Items each site-wide DynamoDB counter is spread "
            "over (about 1,000 writes/s each)."),
    Setting("SITE_URL", "http://127.0.0.1:8000", http_url, "The site's public URL (feeds, sitemap, visitor hash)."),
    Setting("SITE_DIR", "build/site", text, "Folder of the built static site served at / (`make site`)."),
    Setting("TRUSTED_PROXIES", "0", integer(0, 10), "Proxies in front of the app whose X-Forwarded-For is "
            "trusted (0: the socket address is the client)."),
    Setting("ALLOWED_ORIGINS", "", origins, "Comma-separated origins allowed to call the API from a browser "
            "(CORS) besides the site's own (SITE_URL's); browser POSTs from any other origin get 403 (empty: "
            "only the site's own)."),
    Setting("ORIGIN_SECRET", "", text, "When set, /api requests must carry it in X-Origin-Verify (only the "
            "CDN can call the API).", secret=True),
    Setting("ORIGIN_SECRET_PREVIOUS", "", text, "During a rotation, the origin secret being replaced: accepted "
            "as well as ORIGIN_SECRET until CloudFront sends the new one everywhere (then unset it).", secret=True),
    Setting("VISITOR_RATE_LIMIT", "60/minute", rate, "Counted views per visitor IP (N/second|minute|hour|day, "
            "or off)."),
    Setting("MAX_BODY_BYTES", "65536", integer(1024, 10 * 1024 * 1024), "Largest request body accepted (413 "
            "past it)."),
    Setting("LOG_LEVEL", "INFO", log_level, "DEBUG, INFO, WARNING or ERROR."),
    # -- contact form and outbox ------------------------------------------------------
    Setting("TELEGRAM_BOT_TOKEN", "", text, "Bot token from @BotFather; with TELEGRAM_CHAT_ID set, contact "
            "messages go to Telegram (unset: they wait in the outbox, see `flask outbox list`).", secret=True),
    Setting("TELEGRAM_CHAT_ID", "", text, "Chat the bot writes to: your numeric user id, a group's id "
            "(-100...) or @channelname."),
    Setting("TELEGRAM_API_URL", "https://api.telegram.org", http_url, "Telegram Bot API base URL."),
    Setting("TELEGRAM_TIMEOUT", "5", number(0.1, 30), "Seconds to wait for Telegram's answer to one message."),
    Setting("TURNSTILE_SECRET", "", text, "Cloudflare Turnstile secret key: when set, the contact form needs a "
            "passed Turnstile check.", secret=True),
    Setting("TURNSTILE_VERIFY_URL", "https://challenges.cloudflare.com/turnstile/v0/siteverify", http_url,
            "Turnstile's siteverify endpoint."),
    Setting("CONTACT_RATE_LIMIT", "5/hour", rate, "Contact messages per sender address (N/second|minute|hour|day, "
            "or off)."),
    Setting("CONTACT_GLOBAL_RATE_LIMIT", "100/day", rate, "Contact messages accepted from everyone together "
            "(N/second|minute|hour|day, or off)."),
    Setting("OUTBOX_MAX_AGE", "172800", integer(60, 90 * 86400), "Seconds an undelivered message is retried "
            "before it is dead-lettered (172800 = 48 h)."),
    Setting("OUTBOX_LEASE_SECONDS", "60", integer(10, 3600), "Seconds a worker holds a message it is sending; "
            "after that another worker may take it."),
    Setting("OUTBOX_POLL_SECONDS", "5", number(0.05, 3600), "Seconds `flask outbox deliver --loop` waits "
            "between looks when idle."),
    Setting("OUTBOX_INLINE_SECONDS", "2", number(0, 10), "Longest the contact API spends delivering right after "
            "accepting (0: leave it all to the worker)."),
    # -- live widgets: Spotify, GitHub, blog ------------------------------------------
    Setting("UPSTREAM_TIMEOUT", "5", number(0.05, 10), "Seconds to wait for an upstream's answer (Spotify, "
            "GitHub) before serving the cached value."),
    Setting("SPOTIFY_API_URL", "https://api.spotify.com/v1", http_url, "Spotify Web API base URL."),
    Setting("SPOTIFY_ACCOUNTS_URL", "https://accounts.spotify.com", http_url, "Spotify accounts (OAuth) base URL."),
    Setting("SPOTIFY_CLIENT_ID", "", matching(r"[A-Za-z0-9]{1,64}", "a Spotify app's client id"),
            "Client id of your Spotify app (empty: no Spotify widget)."),
    Setting("SPOTIFY_CLIENT_SECRET", "", text, "Client secret of your Spotify app.", secret=True),
    Setting("SPOTIFY_REFRESH_TOKEN", "", text, "Refresh token from `flask spotify authorize`.", secret=True),
    Setting("SPOTIFY_CACHE_TTL", "30", integer(5, 86400), "Seconds /api/spotify answers from cache."),
    Setting("GITHUB_API_URL", "https://api.github.com", http_url, "GitHub REST API base URL (GitHub Enterprise: "
            "https://HOST/api/v3)."),
    Setting("GITHUB_USERNAME", "", matching(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", "a GitHub user name"),
            "Whose public activity /api/github shows (empty: no activity widget)."),
    Setting("GITHUB_TOKEN", "", text, "Optional fine-grained token (read-only public access): 5,000 requests/h "
            "instead of 60; also used for the blog.", secret=True),
    Setting("GITHUB_TOP_REPOS", "6", integer(0, 30), "How many of the user's most-starred repositories "
            "/api/github lists (0: none, one upstream call less)."),
    Setting("GITHUB_CACHE_TTL", "300", integer(30, 86400), "Seconds /api/github answers from cache."),
    Setting("BLOG_REPO", "", matching(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", "owner/name"),
            "Repository whose issues are the blog, as owner/name (empty: no blog)."),
    Setting("BLOG_LABEL", "published", text, "Label that publishes an issue as a post."),
    Setting("BLOG_AUTHOR", "", matching(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", "a GitHub user name"),
            "Only issues by this user are posts (empty: the repository's owner)."),
    Setting("BLOG_CACHE_TTL", "300", integer(30, 86400), "Seconds /api/blog answers from cache."),
    Setting("BLOG_COMMENTS", "true", boolean, "Show each post's GitHub comments under it (false: none, and "
            "no GitHub call for them)."),
    # -- the site (`flask site build`) -------------------------------------------------
    Setting("SITE_RESUME", "site/resume.json", text, "The JSON Resume file the site build renders."),
    Setting("SITE_API_BASE", "/api", api_base, "Where the site's widgets call the API: /api (same origin) or an "
            "https URL (then allow it in the Content-Security-Policy's connect-src)."),
    Setting("SITE_WIDGETS", "visitors,spotify,github,blog,contact", widget_names, "Live widgets the built site "
            "shows: comma-separated from visitors, spotify, github, blog, contact; none; or auto (visitors and "
            "contact, plus each of spotify, github and blog whose settings are set where the site is built)."),
    Setting("SITE_API_TIMEOUT", "8", number(1, 60), "Seconds a widget waits for the API before hiding itself."),
    # -- the owner's stats (/stats) and Telegram digest and alerts ------------------------------
    Setting("STATS_TOKEN", "", text, "Password of the private /stats page and Bearer token of /api/stats "
            "(empty and STATS_PUBLIC off: stats are not served).", secret=True),
    Setting("STATS_PUBLIC", "false", boolean, "true: /stats and /api/stats are public, like a shared dashboard."),
    Setting("STATS_RETENTION_DAYS", "400", integer(7, 3660), "Days the daily detail (pages, referrers, "
            "campaigns, browsers, devices, countries) is kept before it expires."),
    Setting("STATS_DAILY_VALUES", "100", integer(10, 1000), "Distinct values kept per dimension and day; later "
            "new values count as (other)."),
    Setting("STATS_LOGIN_RATE_LIMIT", "10/hour", rate, "Wrong /stats passwords or tokens per address before "
            "every attempt gets 429 (N/second|minute|hour|day, or off)."),
    Setting("STATS_SESSION_SECONDS", "3600", integer(60, 86400), "Lifetime of the owner's signed /stats cookie."),
    Setting("STATS_DIGEST", "false", boolean, "true: send the owner a weekly Telegram digest (needs the Telegram "
            "settings)."),
    Setting("STATS_DIGEST_DAY", "mon", matching(r"(?i)mon|tue|wed|thu|fri|sat|sun", "mon, tue, ... or sun"),
            "UTC weekday of the weekly digest."),
    Setting("STATS_DIGEST_HOUR", "8", integer(0, 23), "UTC hour of the weekly digest."),
    Setting("STATS_ALERTS", "false", boolean, "true: Telegram alerts to the owner (dead-lettered contact message, "
            "Spotify re-authorisation, storage errors, GitHub rate limit spent)."),
    Setting("STATS_ALERT_INTERVAL", "21600", integer(60, 30 * 86400), "Seconds between two alerts of the same "
            "kind (21600 = 6 h)."),
    Setting("STATS_ALERT_STORAGE_ERRORS", "20", integer(1, 100000), "Storage errors within 5 minutes (per "
            "process) that raise an alert."),
)


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every setting from ``environ`` (default ``os.environ``); raise ConfigError on a bad one."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for setting in SETTINGS:
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
