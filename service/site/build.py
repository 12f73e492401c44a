"""Building the static site: ``resume.json`` + ``site/templates`` + ``site/assets`` -> a folder of plain files.

`build` validates the resume against the bundled JSON Resume schema
(``site/resume.schema.json``, `service.theme.resume`), renders every page
with the site's templates (`service.theme.templates`) and writes::

    index.html            the resume, complete without JavaScript, plus the live widgets' slots
    contact/thanks.html   where the contact form sent without JavaScript lands (with the contact widget)
    404.html              served for missing paths (Flask here, CloudFront's error page on AWS)
    assets/site.<hash>.css, assets/site.<hash>.js   fingerprinted: cache them for ever
    favicon.svg, robots.txt, and the owner's photo when it is a local file

The folder is uploadable as-is to S3 and is what `service.site.serve` serves.
The blog's pages and ``/sitemap.xml`` are not files: the app renders them
(`service.blog.pages`) with the same templates and the values `site_values`
gives the build. The output is replaced in one step at the
end, so a running server never sees a half-written site. `ResumeError` is
raised, naming the field, when the resume does not match the schema;
nothing is written then.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

from ..theme.resume import ResumeError, load_resume, photo_paths
from ..theme.templates import SiteOptions, asset_files, environment, site_values, source_dir

__all__ = ["PAGES", "BuildReport", "ResumeError", "SiteOptions", "build"]

#: Pages written from templates: (template, output path, canonical path, counted path or None).
PAGES = (
    ("index.html", "index.html", "/", "/"),
    ("404.html", "404.html", None, None),
    ("contact/thanks.html", "contact/thanks.html", None, None),  # where a form sent without JavaScript lands
)


@dataclasses.dataclass(frozen=True)
class BuildReport:
    out_dir: str
    files: tuple[str, ...]
    #: Bytes of the home page and everything it loads from the build, the owner's photo excluded.
    home_bytes: int


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
    # /sitemap.xml is not a file: the app serves it with the blog's posts (`service.blog.pages`)
    files["robots.txt"] = env.get_template("robots.txt").render(site=site).encode()

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
