"""The static site: ``flask site build`` renders ``site/`` and the resume; `serve` serves the build at ``/``.

`build` holds the renderer, `cli` the command, `serve` the static file server (gzip, cache headers,
the 404 page), `render` the pages other features render per request with the same templates.
Registered last: its catch-all route answers what no other feature does.
"""

from __future__ import annotations

from ..core.config import Setting, api_base, number, text
from ..core.feature import Feature
from . import cli, serve


def widget_names(value: str) -> tuple[str, ...] | None:
    """Comma-separated names of the site's live widgets; ``none`` for none; ``auto`` (None): decided by the build.

    The names are those of the features with a card (`service.features.WIDGETS`).
    """
    from ..features import WIDGETS

    if value.strip().lower() == "auto":
        return None
    if value.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [name for name in names if name not in WIDGETS]
    if unknown:
        raise ValueError(f"unknown widget {unknown[0]!r}; expected some of {', '.join(WIDGETS)}")
    return names


SETTINGS = (
    Setting("SITE_DIR", "build/site", text, "Folder of the built static site served at / (`make site`)."),
    Setting("SITE_RESUME", "site/resume.json", text, "The JSON Resume file the site build renders."),
    Setting("SITE_API_BASE", "/api", api_base, "Where the site's widgets call the API: /api (same origin) or an "
            "https URL (then allow it in the Content-Security-Policy's connect-src)."),
    Setting("SITE_WIDGETS", "visitors,spotify,github,blog,contact", widget_names, "Live widgets the built site "
            "shows: comma-separated from visitors, spotify, github, blog, contact; none; or auto (visitors and "
            "contact, plus each of spotify, github and blog whose settings are set where the site is built)."),
    Setting("SITE_API_TIMEOUT", "8", number(1, 60), "Seconds a widget waits for the API before hiding itself."),
)

FEATURE = Feature("site", blueprints=((serve.bp, ""),), settings=SETTINGS, cli=cli.site_cli, setup=serve.setup)
