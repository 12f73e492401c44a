"""Building the static site: ``resume.json`` + ``site/templates`` + ``site/assets`` -> a folder of plain files.

`build` validates the resume against the bundled JSON Resume schema
(``site/resume.schema.json``), renders every page with Jinja2 and writes::

    index.html            the resume, complete without JavaScript, plus the live widgets' slots
    contact/thanks.html   where the contact form sent without JavaScript lands (with the contact widget)
    404.html              served for missing paths (Flask here, CloudFront's error page on AWS)
    assets/site.<hash>.css, assets/site.<hash>.js   fingerprinted: cache them for ever
    favicon.svg, robots.txt, sitemap.xml, and the owner's photo when it is a local file

The folder is uploadable as-is to S3 and is what `service.site.serve` serves.
The blog's pages are not files: the app renders them (`service.blog.pages`)
with the same templates and the values `site_values` gives the build.
The output is replaced in one step at the end, so a running server never
sees a half-written site. `ResumeError` is raised, naming the field, when
the resume does not match the schema; nothing is written then.

The ``site build`` command group lives here too (registered by `service.storage.cli`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: Pages written from templates: (template, output path, canonical path, counted path or None).
PAGES = (
    ("index.html", "index.html", "/", "/"),
    ("404.html", "404.html", None, None),
    ("contact/thanks.html", "contact/thanks.html", None, None),  # where a form sent without JavaScript lands
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ResumeError(Exception):
    """The resume cannot be read or does not match the schema; the message names each bad field."""


def _widgets() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The widget names and the settings each needs, from the features' declarations."""
    from ..features import WIDGET_SETTINGS, WIDGETS  # the features import this module: read them when asked

    return WIDGETS, WIDGET_SETTINGS


@dataclasses.dataclass(frozen=True)
class SiteOptions:
    """What the build needs besides the resume; `from_config` reads them from the app's settings."""

    site_url: str
    api_base: str = "/api"
    widgets: tuple[str, ...] = dataclasses.field(default_factory=lambda: _widgets()[0])  # every widget
    api_timeout: float = 8.0

    @classmethod
    def from_config(cls, config) -> SiteOptions:
        widgets = config["SITE_WIDGETS"]
        if widgets is None:  # auto
            names, needs = _widgets()
            widgets = tuple(name for name in names if all(config.get(s) for s in needs.get(name, ())))
        elif not config.get("BLOG_REPO"):  # no blog pages to link to: the app renders them from BLOG_REPO
            widgets = tuple(name for name in widgets if name != "blog")
        return cls(site_url=config["SITE_URL"], api_base=config["SITE_API_BASE"], widgets=widgets,
                   api_timeout=config["SITE_API_TIMEOUT"])


@dataclasses.dataclass(frozen=True)
class BuildReport:
    out_dir: str
    files: tuple[str, ...]
    #: Bytes of the home page and everything it loads from the build, the owner's photo excluded.
    home_bytes: int


def project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def source_dir() -> str:
    """The site sources: templates/, assets/, static/ and the bundled schema."""
    return os.path.join(project_root(), "site")


# --- the resume -------------------------------------------------------------------


def field_name(path: Iterable[Any]) -> str:
    """``["work", 1, "startDate"]`` -> ``work[1].startDate`` (``(top level)`` for the root)."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _schema_problem(error) -> str:
    """One schema violation as ``field: what is wrong`` in plain words."""
    where = list(error.absolute_path)
    kind, expected = error.validator, error.validator_value
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "; ".join(f"{field_name([*where, name])}: unknown field (not in the JSON Resume schema)"
                         for name in extra)
    if kind == "type":
        article = "an" if str(expected)[0] in "aeiou" else "a"
        return f"{field_name(where)}: must be {article} {expected}, not {json.dumps(error.instance)[:40]}"
    if kind == "pattern" and "[1-2][0-9]{3}" in str(expected):
        return f"{field_name(where)}: {error.instance!r} is not a date like 2021-03-15, 2021-03 or 2021"
    if kind == "format" and expected == "email":
        return f"{field_name(where)}: {error.instance!r} is not an email address"
    if kind == "format" and expected == "uri":
        return f"{field_name(where)}: {error.instance!r} is not an absolute http(s) URL"
    return f"{field_name(where)}: {error.message}"


def _format_checker():
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())

    @checker.checks("email")
    def is_email(value: object) -> bool:
        return not isinstance(value, str) or bool(_EMAIL.fullmatch(value))

    @checker.checks("uri")
    def is_web_url(value: object) -> bool:
        # Only http(s): a javascript: URL in resume.json would become a link on the page.
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    return checker


def validate(resume: object, schema_path: str | None = None) -> None:
    """Check ``resume`` against the bundled schema; raise `ResumeError` listing every bad field."""
    from jsonschema import Draft7Validator

    with open(schema_path or os.path.join(source_dir(), "resume.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    validator = Draft7Validator(schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(resume), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        problems = "\n".join(f"  {_schema_problem(error)}" for error in errors)
        raise ResumeError(f"resume.json does not match the JSON Resume schema:\n{problems}")


def load_resume(path: str) -> dict:
    """Read and validate the resume at ``path``; raise `ResumeError` naming the problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ResumeError(f"cannot read {path}: {exc.strerror}") from None
    try:
        resume = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResumeError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(resume, dict):
        raise ResumeError(f"{path}: (top level): must be an object")
    validate(resume)
    return resume


def photo_paths(resume: dict, resume_dir: str) -> tuple[str | None, str | None]:
    """(URL the pages use, local path relative to the resume) for ``basics.image``; `ResumeError` if missing."""
    image = (resume.get("basics") or {}).get("image")
    if not image:
        return None, None
    parts = urlsplit(image)
    if parts.scheme in ("http", "https") and parts.netloc:
        return image, None
    if parts.scheme or parts.netloc or image.startswith("/") or ".." in image.split("/"):
        raise ResumeError("basics.image: must be an http(s) URL or a file name next to resume.json")
    local = os.path.join(resume_dir, image)
    if not os.path.isfile(local):
        raise ResumeError(f"basics.image: file {image!r} not found next to resume.json")
    return "/" + image, image


# --- template helpers ---------------------------------------------------------------


def display_date(value: str | None) -> str:
    """``2021-03-15`` or ``2021-03`` -> ``Mar 2021``; ``2021`` -> ``2021``; empty -> ``Present``."""
    if not value:
        return "Present"
    year, _, rest = value.partition("-")
    month = rest[:2]
    return f"{_MONTHS[int(month) - 1]} {year}" if month.isdigit() and 1 <= int(month) <= 12 else year


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


# --- the build ------------------------------------------------------------------------


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


def site_values(resume: dict, options: SiteOptions, assets: dict[str, str], photo_url: str | None) -> dict[str, Any]:
    """What every template knows as ``site``: name, language, addresses, assets, widgets, feeds."""
    site_url = options.site_url.rstrip("/")
    basics = resume.get("basics") or {}
    modified = (resume.get("meta") or {}).get("lastModified", "")[:10]
    return {
        "url": site_url, "api_base": options.api_base, "widgets": set(options.widgets),
        "api_timeout_ms": int(options.api_timeout * 1000), "lang": (resume.get("meta") or {}).get("lang") or "en",
        "name": basics.get("name") or "Resume",
        "description": summary_text(basics.get("summary") or basics.get("label")),
        "photo": photo_url, "photo_absolute": (site_url + photo_url) if photo_url and photo_url.startswith("/")
        else photo_url, "css": assets["site.css"], "js": assets["site.js"],
        "feed": "/blog/feed.xml", "json_feed": "/blog/feed.json", "lastmod": modified,
        "year": modified[:4] or str(dt.date.today().year),
    }


def build(resume_path: str, out_dir: str, options: SiteOptions, source: str | None = None) -> BuildReport:
    """Render the site for ``resume_path`` into ``out_dir`` (replaced as a whole); raise `ResumeError`."""
    source = source or source_dir()
    resume = load_resume(resume_path)
    resume_dir = os.path.dirname(os.path.abspath(resume_path))
    photo_url, photo_file = photo_paths(resume, resume_dir)
    site_url = options.site_url.rstrip("/")

    assets, files = asset_files(source)
    static = os.path.join(source, "static")
    for name in sorted(os.listdir(static)):
        with open(os.path.join(static, name), "rb") as handle:
            files[name] = handle.read()

    env = environment(source)
    basics = resume.get("basics") or {}
    site = site_values(resume, options, assets, photo_url)
    for template, output, canonical, counted in PAGES:
        if output.startswith("contact/") and "contact" not in site["widgets"]:
            continue
        page = {"canonical": site_url + canonical if canonical else None, "counted": counted, "output": output}
        files[output] = env.get_template(template).render(resume=resume, basics=basics, site=site,
                                                          page=page).encode()
    for name in ("robots.txt", "sitemap.xml"):
        files[name] = env.get_template(name).render(site=site).encode()

    home = sum(len(files[name]) for name in ("index.html", "favicon.svg", *(a.lstrip("/") for a in assets.values())))
    if photo_file:
        with open(os.path.join(resume_dir, photo_file), "rb") as handle:
            files[photo_file] = handle.read()
    _write_all(out_dir, files)
    return BuildReport(out_dir=out_dir, files=tuple(sorted(files)), home_bytes=home)


def _write_all(out_dir: str, files: dict[str, bytes]) -> None:
    """Write into a temporary sibling folder, then swap it in for ``out_dir``."""
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=".site-build-", dir=parent)
    try:
        for name, data in files.items():
            path = os.path.join(temp, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(data)
        os.chmod(temp, 0o755)  # noqa: S103 (mkdtemp made it 0700; a web root is readable by the server's user)
        old = None
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=".site-old-", dir=parent)
            os.rename(out_dir, os.path.join(old, "site"))
        os.rename(temp, out_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
