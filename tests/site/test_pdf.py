"""The resume's PDF (`service.site.pdf`, printed by `service.site.build`), read back with pypdf.

One build of the real example with Debian's Chromium is shared by the
module: its text (selectable, in reading order), link annotations, page
count and size, metadata, embedded fonts, tags and outline. Then the
stamp: a build with nothing changed keeps the PDF, a change of the resume,
the stylesheet or the paper prints it again. Without a Chromium (a name
that is on no PATH) or with one that fails (``false``), the site is still
built, says why, and links to no PDF; ``SITE_PDF=required`` stops the build.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil

import pytest

from service.features import WIDGETS
from service.site.build import PdfUnavailable, SiteOptions, build, stamp_path
from service.site.pdf import print_pdf

from ..browser import CHROMIUM
from ..fakes import FakeUpstream, Reply
from ..helpers import ROOT

EXAMPLE = os.path.join(ROOT, "site", "resume.json")
OPTIONS = SiteOptions(site_url="https://mara.example.com", widgets=WIDGETS, pdf="required")
SECTIONS = ["About", "Experience", "Projects", "Volunteering", "Education", "Skills",
            "Awards, certificates and publications", "Languages and interests", "References"]
A4, LETTER = (595.92, 841.92), (612.0, 792.0)  # points


def with_chromium(test):
    """Mark ``test`` as a browser test, skipped (with the reason) where Debian's Chromium is missing."""
    missing = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    return pytest.mark.browser(missing(test))


def example() -> dict:
    with open(EXAMPLE, encoding="utf-8") as handle:
        return json.load(handle)


def reader(path):
    from pypdf import PdfReader

    with open(path, "rb") as handle:
        return PdfReader(io.BytesIO(handle.read()))


def text_of(pdf) -> str:
    return "\n".join(page.extract_text() for page in pdf.pages)


def size_of(page) -> tuple[float, float]:
    return float(page.mediabox.width), float(page.mediabox.height)


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    out = tmp_path_factory.mktemp("pdf") / "site"
    report = build(EXAMPLE, str(out), OPTIONS)
    return report, out, reader(out / "resume.pdf")


# --- the PDF -----------------------------------------------------------------------------------------


@with_chromium
def test_the_build_says_it_printed_and_links_the_pdf(printed):
    report, out, _ = printed
    assert report.notes == ("resume.pdf: printed, 2 A4 pages", "de/resume.pdf: printed, 2 A4 pages")
    assert report.warnings == ()
    assert "resume.pdf" in report.files and "de/resume.pdf" in report.files
    html = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="/resume.pdf" type="application/pdf" download>Download PDF</a>' in html
    german = (out / "de" / "index.html").read_text(encoding="utf-8")
    assert '<a href="/de/resume.pdf" type="application/pdf" download>Als PDF herunterladen</a>' in german
    assert (out / "resume.pdf").read_bytes().startswith(b"%PDF-")
    assert oct((out / "resume.pdf").stat().st_mode & 0o777) == "0o644"


@with_chromium
def test_name_headings_and_entries_are_selectable_text_in_order(printed):
    _, _, pdf = printed
    text = text_of(pdf)
    basics = example()["basics"]
    assert text.startswith(f"{basics['name']}\n{basics['label']}")
    assert not set(text) & set("\ufb00\ufb01\ufb02\ufb03\ufb04")  # no ligature glyphs: "fi" reads as two letters
    positions = [text.index(f"\n{heading}\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    for job in example()["work"]:
        assert job["position"] in text
    assert "Download PDF" not in text  # the link hides itself in print
    assert "Now playing" not in text and "Message" not in text  # no live cards, no contact form


@with_chromium
def test_links_are_link_annotations(printed):
    _, _, pdf = printed
    uris = {annotation.get_object()["/A"]["/URI"].rstrip("/") for page in pdf.pages
            for annotation in page.get("/Annots") or [] if annotation.get_object()["/Subtype"] == "/Link"}
    basics = example()["basics"]
    assert f"mailto:{basics['email']}" in uris
    assert {profile["url"].rstrip("/") for profile in basics["profiles"]} <= uris
    assert "https://nordfrakt.example.com" in uris


@with_chromium
def test_the_sample_fits_two_a4_pages(printed):
    _, _, pdf = printed
    assert len(pdf.pages) == 2
    assert [size_of(page) for page in pdf.pages] == [pytest.approx(A4, abs=1)] * 2


@with_chromium
def test_metadata_title_author_and_language(printed):
    _, _, pdf = printed
    basics = example()["basics"]
    assert pdf.metadata.title == f"{basics['name']} · {basics['label']}"
    assert pdf.metadata.author == basics["name"]
    catalog = pdf.trailer["/Root"]
    assert catalog["/Lang"] == "en"
    assert catalog["/ViewerPreferences"]["/DisplayDocTitle"].value is True


@with_chromium
def test_every_font_is_embedded(printed):
    _, _, pdf = printed
    fonts = {}
    for page in pdf.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            holder = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            fonts[font["/BaseFont"]] = {"/FontFile", "/FontFile2", "/FontFile3"} & set(holder["/FontDescriptor"])
    assert fonts and all(fonts.values()), fonts


@with_chromium
def test_tagged_for_accessibility_with_an_outline(printed):
    _, _, pdf = printed
    catalog = pdf.trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"].value is True
    assert "/StructTreeRoot" in catalog
    assert [entry.title for entry in pdf.outline if not isinstance(entry, list)] == [example()["basics"]["name"]]
    assert [entry.title for entry in pdf.outline[1] if not isinstance(entry, list)] == SECTIONS


@with_chromium
def test_each_language_has_its_own_pdf(printed):
    """site/resume.de.json's page is printed too, in German, with its own language and outline."""
    _, out, _ = printed
    pdf = reader(out / "de" / "resume.pdf")
    assert pdf.trailer["/Root"]["/Lang"] == "de" and len(pdf.pages) == 2
    assert pdf.metadata.title.startswith("Mara Lindqvist · Backend-Entwicklerin")
    assert [entry.title for entry in pdf.outline[1] if not isinstance(entry, list)][:2] == ["Über mich",
                                                                                          "Berufserfahrung"]
    assert "März 2021 – heute" in text_of(pdf)


# --- printed again only when something changed ---------------------------------------------------------


@with_chromium
def test_the_pdf_is_printed_again_only_when_its_sources_change(tmp_path):
    out = tmp_path / "site"
    build(EXAMPLE, str(out), OPTIONS)
    first = (out / "resume.pdf").read_bytes()
    with open(stamp_path(str(out)), encoding="utf-8") as handle:
        assert set(json.load(handle)) == {"resume.pdf", "de/resume.pdf"}
    assert os.path.dirname(stamp_path(str(out))) == str(tmp_path)  # beside the uploaded folder, not in it

    again = build(EXAMPLE, str(out), OPTIONS)
    assert again.notes == ("resume.pdf: unchanged since the last build, kept",
                           "de/resume.pdf: unchanged since the last build, kept")
    assert (out / "resume.pdf").read_bytes() == first  # a new print would carry new dates

    resume = example()
    resume["basics"]["label"] = "Staff engineer"
    changed = tmp_path / "resume.json"
    changed.write_text(json.dumps(resume), encoding="utf-8")
    shutil.copy(os.path.join(ROOT, "site", "photo.svg"), tmp_path / "photo.svg")
    assert build(str(changed), str(out), OPTIONS).notes == ("resume.pdf: printed, 2 A4 pages",)
    assert "Staff engineer" in text_of(reader(out / "resume.pdf"))

    theme = tmp_path / "theme"
    shutil.copytree(os.path.join(ROOT, "site"), theme)
    with open(theme / "assets" / "site.css", "a", encoding="utf-8") as handle:
        handle.write("\n@media print { h2 { text-transform: uppercase; } }\n")
    assert build(str(changed), str(out), OPTIONS, source=str(theme)).notes == ("resume.pdf: printed, 2 A4 pages",)
    assert "\nEXPERIENCE\n" in text_of(reader(out / "resume.pdf"))

    letter = dataclasses.replace(OPTIONS, pdf_paper="letter")
    report = build(str(changed), str(out), letter, source=str(theme))
    assert report.notes == ("resume.pdf: printed, 2 US Letter pages",)
    assert size_of(reader(out / "resume.pdf").pages[0]) == pytest.approx(LETTER, abs=1)


# --- without a browser ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("browser", "reason"), [
    ("no-such-chromium", "no Chromium found (no-such-chromium)"),
    ("false", "false stopped"),
])
def test_without_a_working_chromium_the_site_is_built_without_a_pdf_link(tmp_path, browser, reason):
    out = tmp_path / "site"
    report = build(EXAMPLE, str(out), dataclasses.replace(OPTIONS, pdf="auto", pdf_browser=browser))
    assert report.warnings[0].startswith("resume.pdf: not built, so the page does not link to it:")
    assert reason in report.warnings[0]
    assert all("not built, so the page does not link to it" in warning for warning in report.warnings)
    assert not (out / "resume.pdf").exists() and "resume.pdf" not in report.files
    assert "resume.pdf" not in (out / "index.html").read_text(encoding="utf-8")
    assert "resume.pdf" not in (out / "de" / "index.html").read_text(encoding="utf-8")
    assert (out / "404.html").exists()


def test_a_required_pdf_without_chromium_stops_the_build(tmp_path):
    with pytest.raises(PdfUnavailable, match="no Chromium found"):
        build(EXAMPLE, str(tmp_path / "site"), dataclasses.replace(OPTIONS, pdf_browser="no-such-chromium"))
    assert not (tmp_path / "site").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".site-")]  # no staging left behind


def test_off_asks_for_no_browser_and_links_no_pdf(tmp_path):
    report = build(EXAMPLE, str(tmp_path / "site"), dataclasses.replace(OPTIONS, pdf="off", pdf_browser="false"))
    assert report.notes == report.warnings == ()
    assert "resume.pdf" not in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_the_command_warns_and_still_builds(make_app, tmp_path):
    out = tmp_path / "site"
    app = make_app(SITE_DIR=str(out), SITE_RESUME=EXAMPLE, SITE_PDF_BROWSER="no-such-chromium")
    result = app.test_cli_runner().invoke(args=["site", "build"])
    assert result.exit_code == 0, result.output
    assert "warning: resume.pdf: not built, so the page does not link to it: no Chromium found" in result.output
    assert (out / "index.html").exists()

    app = make_app(SITE_DIR=str(out), SITE_RESUME=EXAMPLE, SITE_PDF_BROWSER="no-such-chromium", SITE_PDF="required")
    result = app.test_cli_runner().invoke(args=["site", "build"])
    assert result.exit_code == 1 and "Error: no Chromium found (no-such-chromium)" in result.output


@with_chromium
def test_a_url_that_answers_an_error_is_not_printed(tmp_path):
    upstream = FakeUpstream().start()
    try:
        upstream.script("GET", "/gone", Reply(404, body="<html><title>gone</title></html>",
                                              headers={"Content-Type": "text/html"}))
        with pytest.raises(PdfUnavailable, match="answered 404"):
            print_pdf(upstream.url + "/gone", str(tmp_path / "out.pdf"))
        assert not (tmp_path / "out.pdf").exists()
    finally:
        upstream.stop()


def test_an_unknown_paper_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown paper size 'a5'"):
        print_pdf(EXAMPLE, str(tmp_path / "out.pdf"), paper="a5")
