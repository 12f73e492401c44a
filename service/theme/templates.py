"""The site's templates: the Jinja2 environment and its filters, the fingerprinted assets, and the values
every template knows as ``site``.

The static build (`service.site.build`) and the pages rendered per request
(`service.theme.render`: the blog, the contact form's answers, /stats) all
use `environment` and `site_values`, so every page has the same look,
stylesheet and addresses. Which live widgets exist is not known here: the
feature list hands it down (`SiteOptions.from_config`'s ``widgets``,
``app.extensions[WIDGETS_KEY]``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.config import project_path

if TYPE_CHECKING:
    from .languages import Edition

#: Where the app keeps ``{widget name: settings it needs}`` for the features with a card (set by the factory).
WIDGETS_KEY = "vitae.widgets"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclasses.dataclass(frozen=True)
class SiteOptions:
    """What the pages need besides the resume; `from_config` reads them from the app's settings."""

    site_url: str
    api_base: str = "/api"
    #: The live widgets the pages show (every one: the names in ``app.extensions[WIDGETS_KEY]``).
    widgets: tuple[str, ...] = dataclasses.field(kw_only=True)
    api_timeout: float = 8.0
    #: The resume as a PDF (`service.site.pdf`): "auto" (when a Chromium is found), "required" or "off".
    pdf: str = "off"
    #: The PDF's paper: "a4" or "letter".
    pdf_paper: str = "a4"
    #: The Chromium that prints it (a path or a name on PATH); empty: the first one found on PATH.
    pdf_browser: str = ""
    #: Cloudflare Turnstile's public site key: the contact form carries the widget when it is set.
    turnstile_site_key: str = ""

    @classmethod
    def from_config(cls, config, widgets: Mapping[str, tuple[str, ...]]) -> SiteOptions:
        """The options for the app's settings; ``widgets`` maps each widget's name to the settings it needs
        (``SITE_WIDGETS=auto`` leaves out a widget missing one)."""
        chosen = config["SITE_WIDGETS"]
        if chosen is None:  # auto
            chosen = tuple(name for name, needs in widgets.items() if all(config.get(s) for s in needs))
        elif not config.get("BLOG_REPO"):  # no blog pages to link to: the app renders them from BLOG_REPO
            chosen = tuple(name for name in chosen if name != "blog")
        return cls(site_url=config["SITE_URL"], api_base=config["SITE_API_BASE"], widgets=chosen,
                   api_timeout=config["SITE_API_TIMEOUT"], pdf=config["SITE_PDF"], pdf_paper=config["SITE_PDF_PAPER"],
                   pdf_browser=config["SITE_PDF_BROWSER"], turnstile_site_key=config.get("TURNSTILE_SITE_KEY") or "")


def source_dir() -> str:
    """The site sources: templates/, assets/, static/ and the bundled schema."""
    return project_path("site")


# --- template helpers ---------------------------------------------------------------


def display_date(value: str | None, words: Mapping[str, Any] | None = None) -> str:
    """``2021-03-15`` or ``2021-03`` -> ``Mar 2021``; ``2021`` -> ``2021``; empty -> ``Present``.

    ``words`` (a language's words, `languages.words`) gives the month names, the month-and-year pattern and
    the word for the present; English without it.
    """
    months = words["months"] if words else _MONTHS
    if not value:
        return words["present"] if words else "Present"
    year, _, rest = value.partition("-")
    month = rest[:2]
    if not (month.isdigit() and 1 <= int(month) <= 12):
        return year
    return (words["month_year"] if words else "{month} {year}").format(month=months[int(month) - 1], year=year)


def display_url(value: str | None) -> str:
    """An address as people read it: no scheme, no ``www.``, no trailing slash."""
    if not value:
        return ""
    parts = urlsplit(value)
    host = parts.netloc.removeprefix("www.")
    return (host + parts.path).rstrip("/")


def summary_text(text: str | None, limit: int = 155) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (meta descriptions)."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return text[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def paragraphs(text: str | None) -> list[str]:
    return [part.strip() for part in re.split(r"\n\s*\n", text or "") if part.strip()]


def _fingerprinted(source: str, name: str) -> tuple[str, bytes]:
    with open(os.path.join(source, name), "rb") as handle:
        data = handle.read()
    stem, ext = os.path.splitext(name)
    return f"{stem}.{hashlib.sha256(data).hexdigest()[:10]}{ext}", data


def environment(source: str):
    """The Jinja2 environment of the site's templates under ``source`` (with the template filters)."""
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(os.path.join(source, "templates")),
                      autoescape=select_autoescape(("html", "xml")), undefined=ChainableUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(display_date=display_date, display_url=display_url, summary_text=summary_text,
                       paragraphs=paragraphs)
    return env


def asset_files(source: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """({"site.css": "/assets/site.<hash>.css", ...}, {output path: bytes}) of the fingerprinted assets."""
    assets, files = {}, {}
    for name in ("site.css", "site.js"):
        fingerprinted, data = _fingerprinted(os.path.join(source, "assets"), name)
        assets[name] = f"/assets/{fingerprinted}"
        files[f"assets/{fingerprinted}"] = data
    return assets, files


def site_values(resume: dict, options: SiteOptions, assets: dict[str, str], photo_url: str | None,
                words: Mapping[str, Any], editions: tuple[Mapping[str, str], ...] = (),
                lang: str | None = None) -> dict[str, Any]:
    """What every template knows as ``site``: name, language and its ``words``, addresses (``home``: this
    language's resume page), assets, widgets, feeds, ``editions``: the resume's languages
    (`edition_links`), empty with one language, and the Turnstile site key (empty: no widget). ``lang`` is
    the page's language (`languages.Edition.tag`; by default the resume's ``meta.lang``, else ``en``)."""
    site_url = options.site_url.rstrip("/")
    basics = resume.get("basics") or {}
    modified = (resume.get("meta") or {}).get("lastModified", "")[:10]
    lang = lang or (resume.get("meta") or {}).get("lang") or "en"
    return {
        "url": site_url, "api_base": options.api_base, "widgets": set(options.widgets),
        "api_timeout_ms": int(options.api_timeout * 1000), "lang": lang,
        "words": words, "editions": editions if len(editions) > 1 else (),
        "home": next((edition["path"] for edition in editions if edition["tag"] == lang), "/"),
        "name": basics.get("name") or words["resume"],
        "description": summary_text(basics.get("summary") or basics.get("label")),
        "photo": photo_url, "photo_absolute": (site_url + photo_url) if photo_url and photo_url.startswith("/")
        else photo_url, "css": assets["site.css"], "js": assets["site.js"],
        "feed": "/blog/feed.xml", "json_feed": "/blog/feed.json", "lastmod": modified,
        "year": modified[:4] or str(dt.date.today().year),
        "turnstile_site_key": options.turnstile_site_key if "contact" in options.widgets else "",
    }


def edition_links(found: list[Edition], words: Mapping[str, Mapping[str, Any]],
                  site_url: str) -> tuple[dict[str, str], ...]:
    """The resume's languages as the templates list them: per language its ``tag``, its name in itself
    (``Deutsch``, from ``words``: `languages.all_words`), its page's ``path`` and absolute ``url`` and its
    ``lastmod``; the default first."""
    return tuple({"tag": edition.tag, "name": words[edition.tag]["language_name"], "path": edition.path,
                  "url": site_url.rstrip("/") + edition.path,
                  "lastmod": ((edition.resume.get("meta") or {}).get("lastModified") or "")[:10]}
                 for edition in found)
