"""What a counted view adds to the owner's stats: bounded, coarse, per UTC day.

Each dimension is a `Tally` under ``stats:<date>:<dimension>``. Pages count
views (every counted view); the others count visitors (a visitor's first
counted view of the day, so a visitor who sends ``DNT``/``Sec-GPC`` is in
the views and pages only). Every value is reduced before it is stored:

* referrer: the host only (``www.`` dropped, lowercased, at most 100
  characters); none, the site's own host and the page's own host are
  `DIRECT`; anything that is not a host name is `UNKNOWN`;
* ``utm_source``/``utm_medium``/``utm_campaign`` from the page address:
  lowercased, characters outside ``a-z 0-9 . _ ~ + -`` and space dropped,
  at most 64 characters; absent or empty ones are not counted;
* browser family, device class and operating system from the User-Agent, in
  fixed buckets;
* screen size class from the viewport width the page sends (``width``, CSS
  pixels): ``phone`` below 576, ``tablet`` below 992, ``laptop`` below 1440,
  ``desktop`` from 1440; `UNKNOWN` when the page sent none;
* country: two capital letters from the CDN's header behind a trusted
  proxy, or from the owner's GeoIP database (`geo.country`), else
  `UNKNOWN`; the address it may be looked up with is never stored.

A day holds at most ``STATS_DAILY_VALUES`` values per dimension: a new
value arriving when they are full takes the place of the value with the
fewest (the space-saving scheme of the storage's `Tally`), whose count moves
to ``(other)``. Besides, each counted view adds its page's pairs
(page, referrer host), (page, campaign) and (page, country) to the
``page-referrers``, ``page-campaigns`` and ``page-countries`` tallies
(`breakdown`): the per-page breakdown, bounded like any tally. A view whose referrer is a known referrer-spam host
(`is_spam`: Matomo's list, vendored in ``referrer_spam.txt``) is not counted
at all.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from ..core.errors import Invalid
from ..storage import Tally
from . import breakdown

DIRECT = "(direct)"
UNKNOWN = "(unknown)"
#: Dimensions counted on every view, and those counted once per visitor and day.
VIEW_DIMENSIONS = ("pages",)
VISITOR_DIMENSIONS = ("referrers", "sources", "mediums", "campaigns", "browsers", "devices", "systems", "screens",
                      "countries")
DIMENSIONS = VIEW_DIMENSIONS + VISITOR_DIMENSIONS
UTM = {"utm_source": "sources", "utm_medium": "mediums", "utm_campaign": "campaigns"}
MAX_REFERRER = 2048  # characters of a referrer or page query looked at; the rest is ignored
MAX_HOST = 100
MAX_UTM = 64
MAX_FIELDS = 50  # fields of a page query looked at for utm_* values
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*")
_UTM_DROP = re.compile(r"[^a-z0-9._~+ -]+")
# (bucket, pattern on the lowercased User-Agent), first match wins: the order matters (Edge and Opera say Chrome).
_BROWSERS = (
    ("Edge", re.compile(r"edg(e|a|ios)?/")), ("Opera", re.compile(r"opr/|opera")),
    ("Samsung Internet", re.compile(r"samsungbrowser/")), ("Yandex", re.compile(r"yabrowser/")),
    ("UC Browser", re.compile(r"ucbrowser/")), ("Vivaldi", re.compile(r"vivaldi/")),
    ("Firefox", re.compile(r"firefox/|fxios/")), ("Chrome", re.compile(r"chrome/|crios/|chromium/")),
    ("Safari", re.compile(r"safari/|applewebkit/")), ("Internet Explorer", re.compile(r"msie |trident/")),
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|(android(?!.*mobile))")
_MOBILE = re.compile(r"mobi|iphone|ipod|android|phone")
_DESKTOP = re.compile(r"windows nt|macintosh|x11|cros|linux")
# (bucket, pattern on the lowercased User-Agent), first match wins: iOS and Android say "like Mac OS X" and "Linux".
_SYSTEMS = (
    ("iOS", re.compile(r"iphone|ipad|ipod")), ("Android", re.compile(r"android")),
    ("ChromeOS", re.compile(r"cros ")), ("Windows", re.compile(r"windows")),
    ("macOS", re.compile(r"macintosh|mac os x")), ("Linux", re.compile(r"linux|x11|bsd")),
)
#: Screen size classes: (class, widths below this many CSS pixels), first match wins; wider is `WIDEST`.
SCREENS = (("phone", 576), ("tablet", 992), ("laptop", 1440))
WIDEST = "desktop"
MAX_WIDTH = 100_000


@dataclasses.dataclass(frozen=True)
class Details:
    """One view's stats values, already reduced (see the module docstring)."""

    referrer: str
    utm: Mapping[str, str]
    browser: str
    device: str
    country: str
    system: str = UNKNOWN
    screen: str = UNKNOWN


def referrer_host(raw: object, own_hosts: frozenset[str]) -> str:
    """The referrer's host, `DIRECT` (none, or one of ``own_hosts``) or `UNKNOWN`; 400 for a non-string."""
    if raw is None:
        return DIRECT
    if not isinstance(raw, str):
        raise Invalid("referrer must be a string (the page's document.referrer)", code="invalid_referrer")
    return _referrer_host(raw.strip()[:MAX_REFERRER], own_hosts)


@functools.lru_cache(maxsize=256)  # on every counted view; most views come from a few referrers
def _referrer_host(raw: str, own_hosts: frozenset[str]) -> str:
    if not raw:
        return DIRECT
    try:
        host = (urlsplit(raw).hostname or "").rstrip(".")
    except ValueError:
        return UNKNOWN
    host = host.removeprefix("www.")
    if not host or len(host) > MAX_HOST or not _HOST.fullmatch(host):
        return UNKNOWN
    return DIRECT if host in own_hosts else host


def campaign(query: object) -> dict[str, str]:
    """``{dimension: value}`` for the utm_* parameters of a page's query string; 400 for a non-string."""
    if query is None:
        return {}
    if not isinstance(query, str):
        raise Invalid("query must be a string (the page's location.search)", code="invalid_query")
    return dict(_campaign(query[:MAX_REFERRER]))


@functools.lru_cache(maxsize=256)  # on every counted view; most views carry no query or a few campaigns' links
def _campaign(query: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    # the first MAX_FIELDS fields only (parse_qsl's own max_num_fields raises on more)
    for name, value in parse_qsl("&".join(query.lstrip("?").split("&", MAX_FIELDS)[:MAX_FIELDS])):
        if name in UTM and UTM[name] not in found:
            value = _UTM_DROP.sub("", value.lower()).strip()[:MAX_UTM].strip()
            if value:
                found[UTM[name]] = value
    return tuple(found.items())


@functools.lru_cache(maxsize=256)  # on every counted view; a handful of User-Agents make most of the traffic
def browser_and_device(user_agent_lower: str) -> tuple[str, str]:
    """The browser family and the device class of a lowercased User-Agent (about 15 pattern searches)."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent_lower)), "Other")
    if _TABLET.search(user_agent_lower):
        device = "tablet"
    elif _MOBILE.search(user_agent_lower):
        device = "mobile"
    elif _DESKTOP.search(user_agent_lower):
        device = "desktop"
    else:
        device = "other"
    return browser, device


@functools.lru_cache(maxsize=256)  # on every counted view; a handful of User-Agents make most of the traffic
def operating_system(user_agent_lower: str) -> str:
    """The operating system of a lowercased User-Agent, in fixed buckets (``Other`` when none matches)."""
    return next((name for name, pattern in _SYSTEMS if pattern.search(user_agent_lower)), "Other")


def screen_class(width: object) -> str:
    """The size class of a viewport ``width`` (CSS pixels; see `SCREENS`), `UNKNOWN` when absent; 400 for
    anything but a whole number from 1 to `MAX_WIDTH`."""
    if width is None:
        return UNKNOWN
    if isinstance(width, bool) or not isinstance(width, int) or not 0 < width <= MAX_WIDTH:
        raise Invalid(f"width must be the viewport's width in CSS pixels, 1 to {MAX_WIDTH}", code="invalid_width")
    return next((name for name, below in SCREENS if width < below), WIDEST)


#: The vendored referrer-spam list (its header says where it comes from and how to update it).
SPAM_LIST = os.path.join(os.path.dirname(__file__), "referrer_spam.txt")


@functools.cache  # read once per process, on the first counted view with a referrer
def _spam_hosts() -> frozenset[str]:
    with open(SPAM_LIST, encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip() and not line.startswith("#"))


@functools.lru_cache(maxsize=256)  # on every counted view; most views come from a few referrers
def is_spam(host: str) -> bool:
    """True for a referrer host (as `referrer_host` gives it) that is on the spam list, or a subdomain of one."""
    if host in (DIRECT, UNKNOWN):
        return False
    labels, spam = host.split("."), _spam_hosts()
    return any(".".join(labels[start:]) in spam for start in range(len(labels) - 1))


def details(body: Mapping, headers: Mapping, own_hosts: frozenset[str], *, country: str = UNKNOWN) -> Details:
    """The stats values of a counted view from its JSON body (``referrer``, ``query``) and headers, with
    its ``country`` (`geo.country`).

    With no ``referrer`` in the body, the ``Referer`` header stands in (a view counted without the
    site's script). Raises a 400 `ServiceError` for a referrer or query that is not a string, or a
    ``width`` that is not a viewport width.
    """
    raw_referrer = body.get("referrer") if "referrer" in body else headers.get("Referer")
    query = body.get("query")
    if query is None and isinstance(body.get("path"), str) and "?" in body["path"]:
        query = body["path"].split("?", 1)[1].split("#", 1)[0]
    user_agent = headers.get("User-Agent", "")[:512].lower()
    browser, device = browser_and_device(user_agent)
    return Details(referrer=referrer_host(raw_referrer, own_hosts), utm=campaign(query), browser=browser,
                   device=device, country=country, system=operating_system(user_agent),
                   screen=screen_class(body.get("width")))


#: The series of the stats' daily tallies (`Storage.daily_tallies`): keys ``stats:<date>:<dimension>``.
SERIES = "stats"


def key(date: str, dimension: str) -> str:
    return f"stats:{date}:{dimension}"


def tallies(date: str, path: str, found: Details, *, cap: int, retention_days: int) -> tuple[list[Tally], list[Tally]]:
    """(view tallies, visitor tallies) of one counted view on ``date``."""
    ttl = (retention_days + 1) * 86400  # the day's detail outlives the day by the retention
    visitor = {"referrers": found.referrer, **found.utm, "browsers": found.browser, "devices": found.device,
               "systems": found.system, "screens": found.screen, "countries": found.country}
    return ([Tally(key(date, "pages"), path, cap, ttl), *breakdown.view_tallies(date, path, found, cap, ttl)],
            [Tally(key(date, dimension), value, cap, ttl) for dimension, value in visitor.items()])


@functools.lru_cache(maxsize=16)  # computed on every counted view: the same pair nearly always
def own_hosts(site_url: str, request_host: str) -> frozenset[str]:
    """The site's own host names (a referrer from one of them is internal navigation: `DIRECT`)."""
    hosts = {urlsplit(site_url).hostname or "", request_host.split(":", 1)[0].lower()}
    return frozenset(host.removeprefix("www.") for host in hosts if host)
