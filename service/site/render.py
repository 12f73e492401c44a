"""Pages of the site rendered per request (the blog, the contact form's answers) from the same templates,
resume and stylesheet as the static build (`build`).

`render` renders one of ``site/templates`` with ``site`` (the build's values for the current
settings), ``resume`` and ``basics``. The template environment and those values are made once per
resume file version and site options (`context`), so an edited resume shows without a restart.
Besides the build's filters, templates here have ``iso_date`` and ``long_date``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from typing import Any

from flask import current_app

from . import build


@functools.lru_cache(maxsize=8)
def _templates(resume_path: str, modified: float, options: build.SiteOptions):
    """(environment, site values, resume) for the resume at ``resume_path`` as it was at ``modified``."""
    source = build.source_dir()
    resume = build.load_resume(resume_path)
    photo_url, _ = build.photo_paths(resume, os.path.dirname(os.path.abspath(resume_path)))
    assets, _ = build.asset_files(source)
    env = build.environment(source)
    env.filters.update(iso_date=iso_date, long_date=long_date)
    return env, build.site_values(resume, options, assets, photo_url), resume


def resume_version() -> tuple[str, float]:
    """(path, modification time) of the resume pages are rendered with (``SITE_RESUME``); `OSError` when
    it cannot be read."""
    path = current_app.config["SITE_RESUME"]
    path = path if os.path.isabs(path) else os.path.join(build.project_root(), path)
    return path, os.stat(path).st_mtime


def context() -> tuple[Any, dict[str, Any], dict]:
    """(template environment, site values, resume) for the app's settings and the resume as it is now."""
    return _templates(*resume_version(), build.SiteOptions.from_config(current_app.config))


def render(template: str, **values: Any) -> str:
    """``template`` rendered with the site's values, the resume and ``values``; raises `OSError` or
    `build.ResumeError` when the resume cannot be read."""
    env, site, resume = context()
    return env.get_template(template).render(site=site, resume=resume, basics=resume.get("basics") or {}, **values)


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
