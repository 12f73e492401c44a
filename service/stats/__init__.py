"""The owner's stats: top pages, referrers and campaigns per day (of the owner's ``STATS_TIMEZONE``), a
private /stats page, /api/stats (JSON, CSV), ``flask stats``, and the weekly Telegram digest and alerts.

Counting (`counting`) happens in the visitor counter's fold of recorded views;
reading (`report`) is bounded per request and compares a range with the one before it; access (`access`) is the owner's
token unless ``STATS_PUBLIC``; `notify` listens to the other features'
events (alerts, storage errors, the periodic tick) and sends the digest and
alerts through the outbox.
"""

from __future__ import annotations

from flask import Flask

from ..core import redaction
from ..core.config import Setting, boolean, integer, matching, rate, text, timezone
from ..core.feature import Feature
from . import cli, exclusion, geo, notify, routes, sharing

SETTINGS = (
    Setting("STATS_TOKEN", "", text, "Password of the private /stats page and Bearer token of /api/stats "
            "(empty and STATS_PUBLIC off: stats are not served).", secret=True),
    Setting("STATS_PUBLIC", "false", boolean, "true: /stats and /api/stats are public, like a shared dashboard."),
    Setting("STATS_RETENTION_DAYS", "400", integer(7, 3660), "Days the daily detail (pages, referrers, "
            "campaigns, browsers, devices, countries) is kept before it expires."),
    Setting("STATS_TIMEZONE", "UTC", timezone, "IANA time zone of the owner's days (Europe/Berlin, "
            "America/New_York, ...): the day a view is counted on, /stats ranges, the digest's day and hour, alert "
            "times. A change applies to views counted from then on; days already counted keep their old bounds."),
    Setting("STATS_DAILY_VALUES", "100", integer(10, 1000), "Distinct values kept per dimension and day; a new "
            "value arriving when full replaces the one with the fewest, whose count goes to (other)."),
    Setting("STATS_LOGIN_RATE_LIMIT", "10/hour", rate, "Wrong /stats passwords or tokens per address before "
            "every attempt gets 429 (N/second|minute|hour|day, or off)."),
    Setting("STATS_SESSION_SECONDS", "3600", integer(60, 86400), "Lifetime of the owner's /stats session (kept "
            "in storage) and its signed cookie."),
    Setting("STATS_IGNORE", "", exclusion.ignore_rules, "Views left out of every count (answered with counted "
            "false): path patterns such as /drafts/* (* matches any characters, / included) and client "
            "networks such as 203.0.113.0/24 or 2001:db8::/32, comma- or space-separated. Networks are matched "
            "in memory against the client address (see TRUSTED_PROXIES), which is never stored."),
    Setting("GEOIP_DATABASE", "", geo.database_file, "Path of a country (or city) .mmdb file (DB-IP IP to "
            "Country Lite, or MaxMind GeoLite2 Country) to find a view's country where no trusted CDN header "
            "(CloudFront-Viewer-Country, CF-IPCountry) gives it; read into memory once per process, restart "
            "to load a refreshed file. Empty: country from the CDN only."),
    Setting("STATS_DIGEST", "false", boolean, "true: send the owner a weekly digest on the channels NOTIFY_DIGEST "
            "names (default: every configured one)."),
    Setting("STATS_DIGEST_DAY", "mon", matching(r"(?i)mon|tue|wed|thu|fri|sat|sun", "mon, tue, ... or sun"),
            "Weekday of the weekly digest, in STATS_TIMEZONE."),
    Setting("STATS_DIGEST_HOUR", "8", integer(0, 23), "Hour of the weekly digest, in STATS_TIMEZONE."),
    Setting("STATS_ALERTS", "false", boolean, "true: alerts to the owner on the NOTIFY_ALERTS channels (dead-lettered "
            "contact message, Spotify re-authorisation, storage errors, GitHub rate limit spent)."),
    Setting("STATS_ALERT_INTERVAL", "21600", integer(60, 30 * 86400), "Seconds between two alerts of the same "
            "kind (21600 = 6 h)."),
    Setting("STATS_ALERT_STORAGE_ERRORS", "20", integer(1, 100000), "Storage errors within 5 minutes (per "
            "process) that raise an alert."),
)


def setup(app: Flask) -> None:
    """Let the owner hear about the other features' events (`notify.listen`); keep share links' secrets out
    of every log line (the access log's and the app's request paths)."""
    notify.listen(app.extensions["vitae.deps"])
    redaction.register_path(sharing.REDACTED_AFTER)


FEATURE = Feature("stats", blueprints=((routes.page, ""), (routes.api, "/api")), settings=SETTINGS,
                  cli=cli.stats_cli, setup=setup)
