"""The static site: ``flask site build`` renders ``site/`` and the resume; `serve` serves the build at ``/``.

`build` holds the renderer, `cli` the command, `serve` the static file server (gzip, cache headers,
the 404 page). The templates, the resume and per-request rendering are the layer below the features
(`service.theme`); this package sits above them, beside the feature list: the build shows every
feature's card, whose names the list hands down (`feature`). Nothing but the list imports it.
Registered last: its catch-all route answers what no other feature does.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.config import Setting, api_base, number, one_of, text
from ..core.feature import Feature
from . import cli, serve


def widget_names(widgets: tuple[str, ...]) -> Callable[[str], tuple[str, ...] | None]:
    """The parser of ``SITE_WIDGETS`` for the live widgets ``widgets`` (the features with a card).

    It reads comma-separated names of widgets; ``none`` for none; ``auto`` (None): decided by the build.
    """
    def parse(value: str) -> tuple[str, ...] | None:
        if value.strip().lower() == "auto":
            return None
        if value.strip().lower() == "none":
            return ()
        names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
        unknown = [name for name in names if name not in widgets]
        if unknown:
            raise ValueError(f"unknown widget {unknown[0]!r}; expected some of {', '.join(widgets)}")
        return names

    return parse


def settings(widgets: tuple[str, ...]) -> tuple[Setting, ...]:
    """The site's settings, ``SITE_WIDGETS`` choosing among ``widgets``."""
    return (
        Setting("SITE_DIR", "build/site", text, "Folder of the built static site served at / (`make site`)."),
        Setting("SITE_RESUME", "site/resume.json", text, "The JSON Resume file the site build renders."),
        Setting("SITE_API_BASE", "/api", api_base, "Where the site's widgets call the API: /api (same origin) or an "
                "https URL (then allow it in the Content-Security-Policy's connect-src)."),
        Setting("SITE_WIDGETS", "visitors,spotify,github,blog,contact", widget_names(widgets),
                "Live widgets the built site shows: comma-separated from visitors, spotify, github, blog, contact; "
                "none; or auto (visitors and contact, plus each of spotify, github and blog whose settings are set "
                "where the site is built)."),
        Setting("SITE_API_TIMEOUT", "8", number(1, 60), "Seconds a widget waits for the API before hiding itself."),
        Setting("SITE_PDF", "auto", one_of("auto", "required", "off"),
                "The resume as a PDF (/resume.pdf, linked from the page), printed by headless Chromium at build time: "
                "auto (when a Chromium is found where the site is built; without one the build says so and the "
                "page has no PDF link), required (the build fails without it) or off."),
        Setting("SITE_PDF_PAPER", "a4", one_of("a4", "letter"), "Paper size of the resume's PDF: a4 or letter (US)."),
        Setting("SITE_PDF_BROWSER", "", text, "The Chromium that prints the PDF: a path or a command name; empty: the "
                "first of chromium, chromium-browser, google-chrome, google-chrome-stable, chrome on PATH."),
    )


def feature(widgets: tuple[str, ...]) -> Feature:
    """The site's declaration, for the live widgets ``widgets`` (the feature list hands them down)."""
    return Feature("site", blueprints=((serve.bp, ""),), settings=settings(widgets), cli=cli.site_cli,
                   setup=serve.setup)
