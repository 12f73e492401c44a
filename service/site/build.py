"""Building the static site: ``resume.json`` + ``site/templates`` + ``site/assets`` -> a folder of plain files.

`build` validates the resume and its translations against the bundled JSON
Resume schema (``site/resume.schema.json``, `service.theme.resume`,
`service.theme.languages`), renders every page with the site's templates
(`service.theme.templates`) and writes::

    index.html            the resume, complete without JavaScript, plus the live widgets' slots
    de/index.html         the resume in each further language, from resume.de.json beside resume.json
    contact/thanks.html   where the contact form sent without JavaScript lands (with the contact widget)
    404.html              served for missing paths (Flask here, CloudFront's error page on AWS)
    assets/site.<hash>.css, assets/site.<hash>.js   fingerprinted: cache them for ever
    favicon.svg, robots.txt, and the owner's photo when it is a local file
    resume.pdf            the resume page printed to PDF (`service.site.pdf`), when a Chromium is at hand
    de/resume.pdf         the same for each further language

The folder is uploadable as-is to S3 and is what `service.site.serve` serves.
The blog's pages and ``/sitemap.xml`` are not files: the app renders them
(`service.blog.pages`) with the same templates and the values `site_values`
gives the build. The output is replaced in one step at the
end, so a running server never sees a half-written site. `ResumeError` is
raised, naming the field, when the resume does not match the schema;
nothing is written then. Words a language's translation table lacks are
English, and the report's ``warnings`` say so; its ``pages`` name each
language's resume page.

**The PDF.** Each resume page (the ``index.html`` template, written to
``index.html``, or ``<lang>/index.html`` for a translated one) gets its PDF
beside it (``resume.pdf``), printed from the page as built, before the new
folder is swapped in (``SiteOptions.pdf``: ``auto``, ``required``, ``off``).
The page links to its PDF only when the PDF is in the build: with
``auto`` and no Chromium, or a print that fails, the build goes on, the
page is rendered without the link and `BuildReport.notes` says why; with
``required`` it raises `PdfUnavailable` and writes nothing. A PDF is
printed again only when its source changed: the page's HTML, the build's
files it loads (stylesheet, photo, ...), the paper, author and language.
The hash of these is kept in a stamp file next to the output folder
(``build/site-pdf.json`` for ``build/site``, outside the uploaded folder),
with the PDF's own hash, and an unchanged PDF is carried over from the
previous build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile

from ..theme.languages import all_words, editions
from ..theme.resume import ResumeError, photo_paths, sections
from ..theme.templates import SiteOptions, asset_files, edition_links, environment, site_values, source_dir
from .pdf import PdfUnavailable, find_browser, print_pdf

__all__ = ["PAGES", "BuildReport", "PdfUnavailable", "ResumeError", "SiteOptions", "build"]

#: Pages written from templates: (template, output path, canonical path, counted path or None). The resume's
#: page is written once per language (`service.theme.languages`); the others are the default language's.
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
    #: What became of each PDF, one line each: "resume.pdf: printed, 2 A4 pages" or "...: unchanged, kept".
    notes: tuple[str, ...] = ()
    #: Why a PDF that was asked for is not in the build, and what the build filled in with English (a language
    #: without a translation table, a missing word); one line each.
    warnings: tuple[str, ...] = ()
    #: (language tag, the resume page's file in ``out_dir``) per language, the default first: ("en", "index.html"),
    #: ("de", "de/index.html").
    pages: tuple[tuple[str, str], ...] = ()


def build(resume_path: str, out_dir: str, options: SiteOptions, source: str | None = None) -> BuildReport:
    """Render the site for ``resume_path`` and its translations beside it (``resume.<lang>.json``) into
    ``out_dir`` (replaced as a whole), with the PDFs ``options`` ask for.

    Raises `ResumeError`, and `PdfUnavailable` when ``options.pdf`` is ``required`` and a PDF cannot be
    made; nothing is written then.
    """
    source = source or source_dir()
    found = editions(resume_path)
    resume_dir = os.path.dirname(os.path.abspath(resume_path))
    site_url = options.site_url.rstrip("/")

    assets, files = asset_files(source)
    static = os.path.join(source, "static")
    for name in sorted(os.listdir(static)):
        with open(os.path.join(static, name), "rb") as handle:
            files[name] = handle.read()

    env = environment(source)
    words, language_warnings = all_words(found, source)
    links = edition_links(found, words, site_url)
    browser, warnings = _pdf_browser(options)
    warnings += language_warnings
    notes: list[str] = []
    pdfs: dict[str, str] = {}  # page -> its PDF
    pages = {}  # output -> (template, output, canonical, counted, the values of its language)
    photos = set()
    for edition in found:
        resume, basics = edition.resume, edition.resume.get("basics") or {}
        photo_url, photo_file = photo_paths(resume, resume_dir)
        photos.add(photo_file)
        values = {"resume": resume, "basics": basics, "sections": sections(resume),
                  "site": site_values(resume, options, assets, photo_url, words[edition.tag], links, edition.tag)}
        chosen = PAGES if edition.code is None else (("index.html", edition.output, edition.path, edition.path),)
        pages.update({output: (template, output, canonical, counted, values)
                      for template, output, canonical, counted in chosen
                      if not (output.startswith("contact/") and "contact" not in values["site"]["widgets"])})
        if edition.code is None:
            # /sitemap.xml is not a file: the app serves it with the blog's posts (`service.blog.pages`)
            files["robots.txt"] = env.get_template("robots.txt").render(site=values["site"]).encode()

    def render(template: str, output: str, canonical: str | None, counted: str | None, values: dict,
               pdf: str | None) -> None:
        page = {"canonical": site_url + canonical if canonical else None, "counted": counted, "output": output,
                "pdf": "/" + pdf if pdf else None}
        files[output] = env.get_template(template).render(page=page, **values).encode()

    for template, output, canonical, counted, values in pages.values():
        pdf = _pdf_name(template, output) if browser else None
        if pdf:
            pdfs[output] = pdf
        render(template, output, canonical, counted, values, pdf)

    home = sum(len(files[name]) for name in ("index.html", "favicon.svg", *(a.lstrip("/") for a in assets.values())))
    for photo_file in sorted(filter(None, photos)):
        with open(os.path.join(resume_dir, photo_file), "rb") as handle:
            files[photo_file] = handle.read()
    temp = _stage(out_dir, files)
    try:
        stamps = _read_stamps(out_dir)
        for output, pdf in pdfs.items():
            values = pages[output][4]
            metadata = {"author": values["basics"].get("name") or "", "lang": values["site"]["lang"],
                        "paper": options.pdf_paper}
            try:
                notes.append(_make_pdf(temp, out_dir, output, pdf, _pdf_source(files, output, metadata), stamps,
                                       metadata, browser))
            except PdfUnavailable as exc:
                if options.pdf == "required":
                    raise
                warnings.append(f"{pdf}: not built, so the page does not link to it: {exc}")
                render(*pages[output], None)
                _write(temp, output, files[output])
        _swap(temp, out_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _write_stamps(out_dir, {pdf: stamps[pdf] for pdf in pdfs.values() if pdf in stamps})
    names = sorted({*files, *(pdf for pdf in pdfs.values() if os.path.isfile(os.path.join(out_dir, pdf)))})
    return BuildReport(out_dir=out_dir, files=tuple(names), home_bytes=home, notes=tuple(notes),
                       warnings=tuple(warnings), pages=tuple((edition.tag, edition.output) for edition in found))


# --- the PDFs ----------------------------------------------------------------------------------------

_PAPER_NAMES = {"a4": "A4", "letter": "US Letter"}


def _pdf_browser(options: SiteOptions) -> tuple[str | None, list[str]]:
    """The Chromium to print with (None: no PDF) and the warning saying why there is none."""
    if options.pdf == "off":
        return None, []
    browser = find_browser(options.pdf_browser)
    if browser:
        return browser, []
    looked_for = options.pdf_browser or "chromium, chromium-browser, google-chrome"
    reason = (f"no Chromium found ({looked_for}) to print the resume's PDF: install one (Debian: apt-get install "
              "chromium) or set SITE_PDF_BROWSER")
    if options.pdf == "required":
        raise PdfUnavailable(reason)
    return None, [f"resume.pdf: not built, so the page does not link to it: {reason}"]


def _pdf_name(template: str, output: str) -> str | None:
    """The PDF of a page: ``resume.pdf`` beside each resume page (``index.html``, ``de/index.html``)."""
    if template != "index.html" or posixpath.basename(output) != "index.html":
        return None
    return posixpath.join(posixpath.dirname(output), "resume.pdf")


def _pdf_source(files: dict[str, bytes], page: str, metadata: dict[str, str]) -> str:
    """The hash of all a page's PDF depends on: its HTML, the build's files it loads, the metadata."""
    html = files[page]
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode() + b"\0" + html)
    for ref in sorted(set(re.findall(rb'(?:src|href)="/([^"#?]+)"', html))):
        name = ref.decode()
        if name in files:
            digest.update(b"\0" + ref + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _make_pdf(temp: str, out_dir: str, page: str, pdf: str, source: str, stamps: dict, metadata: dict[str, str],
              browser: str) -> str:
    """Put ``pdf`` into the staged folder ``temp``: the previous build's when its source is the same, else
    printed from ``page``; record it in ``stamps``; return the note. Raises `PdfUnavailable`."""
    target = os.path.join(temp, pdf)
    previous = os.path.join(out_dir, pdf)
    stamp = stamps.get(pdf) or {}
    if stamp.get("source") == source and os.path.isfile(previous) and _file_hash(previous) == stamp.get("sha256"):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(previous, target)
        return f"{pdf}: unchanged since the last build, kept"
    pages = print_pdf(os.path.join(temp, page), target, root=temp, paper=metadata["paper"],
                      author=metadata["author"], lang=metadata["lang"], browser=browser)
    stamps[pdf] = {"source": source, "sha256": _file_hash(target)}
    return f"{pdf}: printed, {pages} {_PAPER_NAMES[metadata['paper']]} page{'s' if pages != 1 else ''}"


def _file_hash(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def stamp_path(out_dir: str) -> str:
    """Where the build keeps its PDFs' stamps: beside ``out_dir``, never inside the folder that is uploaded."""
    return os.path.abspath(out_dir).rstrip(os.sep) + "-pdf.json"


def _read_stamps(out_dir: str) -> dict:
    try:
        with open(stamp_path(out_dir), encoding="utf-8") as handle:
            stamps = json.load(handle)
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(out_dir: str, stamps: dict) -> None:
    path = stamp_path(out_dir)
    with open(path + ".new", "w", encoding="utf-8") as handle:
        json.dump(stamps, handle, indent=1, sort_keys=True)
    os.replace(path + ".new", path)


# --- writing the folder --------------------------------------------------------------------------------


def _stage(out_dir: str, files: dict[str, bytes]) -> str:
    """Write ``files`` into a new temporary sibling folder of ``out_dir``; return its path."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix=".site-build-", dir=parent)
    try:
        for name, data in files.items():
            _write(temp, name, data)
        os.chmod(temp, 0o755)  # noqa: S103 (mkdtemp made it 0700; a web root is readable by the server's user)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return temp


def _write(folder: str, name: str, data: bytes) -> None:
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _swap(temp: str, out_dir: str) -> None:
    """Put the staged folder ``temp`` in place of ``out_dir`` (the old one is removed)."""
    out_dir = os.path.abspath(out_dir)
    old = None
    if os.path.exists(out_dir):
        old = tempfile.mkdtemp(prefix=".site-old-", dir=os.path.dirname(out_dir))
        os.rename(out_dir, os.path.join(old, "site"))
    os.rename(temp, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)
