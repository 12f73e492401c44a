"""Pages of the site rendered per request (the blog, the contact form's answers, /stats) from the same
templates, resume and stylesheet as the static build (`service.site.build`).

`render` renders one of ``site/templates`` with ``site`` (the build's values for the current
settings), ``resume`` and ``basics``; those values are made once per resume file version and site
options (`context`), so an edited resume shows without a restart. `render_page` renders a page that
needs no resume (the owner's /stats). Both use the one template environment of the process
(`environment`): the build's filters plus ``iso_date`` and ``long_date``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from typing import Any

from flask import current_app

from ..core.config import project_path
from . import languages, templates
from .resume import photo_paths


@functools.lru_cache(maxsize=1)
def environment():
    """The process's Jinja2 environment of ``site/templates`` (templates reload when their file changes)."""
    env = templates.environment(templates.source_dir())
    env.filters.update(iso_date=iso_date, long_date=long_date)
    return env


@functools.lru_cache(maxsize=8)
def _templates(resume_path: str, versions: tuple[tuple[str, float], ...], options: templates.SiteOptions):
    """(environment, site values, resume) for the resume at ``resume_path`` and its translations as they were
    at ``versions``; the site values are the default language's, with every language's page in ``editions``."""
    source = templates.source_dir()
    found = languages.editions(resume_path)
    default = found[0].resume
    words, _ = languages.all_words(found, source)  # the build reports missing words; pages just use English
    photo_url, _ = photo_paths(default, os.path.dirname(os.path.abspath(resume_path)))
    assets, _ = templates.asset_files(source)
    links = templates.edition_links(found, words, options.site_url)
    site = templates.site_values(default, options, assets, photo_url, words[found[0].tag], links, found[0].tag)
    return environment(), site, default


@functools.lru_cache(maxsize=4)
def _translations(resume_path: str, folder_version: int) -> tuple[str, ...]:
    """The translations beside ``resume_path`` while its folder is at ``folder_version``: a file added,
    removed or renamed there changes the folder's modification time, so the folder is listed again."""
    return tuple(file for _, file in languages.language_files(resume_path))


def resume_version() -> tuple[str, tuple[tuple[str, float], ...]]:
    """(path, (file, modification time) of it and each translation beside it) of the resume pages are
    rendered with (``SITE_RESUME``); `OSError` when it cannot be read."""
    path = project_path(current_app.config["SITE_RESUME"])
    files = [path, *_translations(path, os.stat(os.path.dirname(os.path.abspath(path))).st_mtime_ns)]
    return path, tuple((file, os.stat(file).st_mtime) for file in files)


def context() -> tuple[Any, dict[str, Any], dict]:
    """(template environment, site values, resume) for the app's settings and the resume as it is now."""
    options = templates.SiteOptions.from_config(current_app.config, current_app.extensions[templates.WIDGETS_KEY])
    return _templates(*resume_version(), options)


def render(template: str, **values: Any) -> str:
    """``template`` rendered with the site's values, the resume and ``values``; raises `OSError` or
    `resume.ResumeError` when the resume cannot be read."""
    env, site, resume = context()
    return env.get_template(template).render(site=site, resume=resume, basics=resume.get("basics") or {}, **values)


def render_page(template: str, **values: Any) -> str:
    """``template`` rendered with ``values`` only (no resume, no site values): pages such as /stats that
    must show whatever state the resume is in."""
    return environment().get_template(template).render(**values)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time as GitHub writes it (``Z`` or an offset), or None when ``value`` is not one (a time
    without its zone included: it cannot be compared with the others)."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def iso_date(value: Any) -> str:
    """``2027-01-05T10:00:00Z`` -> ``2027-01-05`` (empty when unreadable)."""
    parsed = parse_time(value)
    return parsed.date().isoformat() if parsed else ""


def long_date(value: Any) -> str:
    """``2027-01-05T10:00:00Z`` -> ``5 Jan 2027`` (empty when unreadable)."""
    parsed = parse_time(value)
    return f"{parsed.day} {parsed:%b %Y}" if parsed else ""
