"""The resume in several languages and its sections' order (`service.theme.languages`, ``meta.sections``).

Builds the shipped example (``site/resume.json`` and ``site/resume.de.json``)
and copies of it with other translations beside them, and checks each
language's page, the ``hreflang`` alternates, the switcher, the fallback to
English with its warning, the sitemap the app serves, the order and
visibility of the sections and the validation errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from service.site.build import ResumeError, build
from service.theme import languages
from service.theme.resume import SECTIONS
from service.theme.templates import source_dir

from ..helpers import ROOT
from .test_build import EXAMPLE, OPTIONS, SITE_URL, Markup, example, read, write_resume

GERMAN = os.path.join(ROOT, "site", "resume.de.json")


def german() -> dict:
    with open(GERMAN, encoding="utf-8") as handle:
        return json.load(handle)


def write_translation(folder, code: str, resume: dict) -> str:
    path = os.path.join(folder, f"resume.{code}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(resume, handle)
    return path


def with_lang(resume: dict, lang: str | None) -> dict:
    resume = json.loads(json.dumps(resume))
    if lang is None:
        resume["meta"].pop("lang", None)
    else:
        resume["meta"]["lang"] = lang
    return resume


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("languages") / "out"
    return build(EXAMPLE, str(out), OPTIONS), out


def headings(html: str) -> list[str]:
    return re.findall(r'<h2 id="([a-z-]+)">', html)


def alternates(html: str) -> set[tuple[str, str]]:
    return {(a["hreflang"], a["href"]) for a in Markup(html).find("link") if a.get("hreflang")}


# --- a page per language ----------------------------------------------------------------------


def test_each_language_gets_its_own_page(built):
    report, out = built
    assert report.pages == (("en", "index.html"), ("de", "de/index.html"))
    assert report.warnings == ()
    page = read(out, "de/index.html")
    markup = Markup(page)
    assert markup.find("html")[0]["lang"] == "de"
    assert "<h2 id=\"work\">Berufserfahrung</h2>" in page and "<h2 id=\"education\">Ausbildung</h2>" in page
    assert 'datetime="2021-03">März 2021</time> – heute' in page
    assert 'datetime="2017-09">Sept. 2017</time> – <time datetime="2021-02">Feb. 2021</time>' in page
    assert "Backend-Entwicklerin" in page and '<label for="cf-message">Nachricht</label>' in page
    links = {a["rel"]: a["href"] for a in markup.find("link") if a["rel"] == "canonical"}
    assert links == {"canonical": f"{SITE_URL}/de/"}
    assert f'<meta property="og:url" content="{SITE_URL}/de/">' in page
    assert 'data-count="/de/"' in page  # counted as its own page
    assert '<a class="brand" href="/de/">' in page and 'href="/de/#contact"' in page
    english = read(out, "index.html")
    assert Markup(english).find("html")[0]["lang"] == "en" and "<h2 id=\"work\">Experience</h2>" in english
    assert "404.html" in report.files and "de/404.html" not in report.files  # one 404 page for the site


def test_every_language_page_names_all_of_them_and_the_default(built):
    _, out = built
    expected = {("en", f"{SITE_URL}/"), ("de", f"{SITE_URL}/de/"), ("x-default", f"{SITE_URL}/")}
    assert alternates(read(out, "index.html")) == expected
    assert alternates(read(out, "de/index.html")) == expected
    assert alternates(read(out, "404.html")) == set()


@pytest.mark.parametrize(("page", "current"), [("index.html", "/"), ("de/index.html", "/de/")])
def test_the_switcher_is_a_labelled_list_of_links_each_in_its_own_language(built, page, current):
    _, out = built
    html = read(out, page)
    nav = re.search(r'<nav class="language-nav" aria-label="([^"]+)">(.*?)</nav>', html, re.S)
    assert nav.group(1) == ("Sprache" if page.startswith("de/") else "Language")
    links = Markup(nav.group(2)).find("a")
    assert [(a["href"], a["hreflang"], a["lang"]) for a in links] == [("/", "en", "en"), ("/de/", "de", "de")]
    assert re.findall(r">([^<]+)</a>", nav.group(2)) == ["English", "Deutsch"]
    assert [a["href"] for a in links if a.get("aria-current") == "page"] == [current]


def test_one_language_has_no_switcher_and_no_alternates(tmp_path):
    build(write_resume(tmp_path, example()), str(tmp_path / "out"), OPTIONS)
    html = read(tmp_path / "out", "index.html")
    assert "language-nav" not in html and not alternates(html)


def test_french_and_spanish_tables_are_shipped(tmp_path):
    path = write_resume(tmp_path, example())
    write_translation(tmp_path, "fr", with_lang(example(), "fr"))
    write_translation(tmp_path, "es", with_lang(example(), None))  # the file's name is its language
    report = build(path, str(tmp_path / "out"), OPTIONS)
    assert report.warnings == () and report.pages == (("en", "index.html"), ("es", "es/index.html"),
                                                      ("fr", "fr/index.html"))
    french, spanish = read(tmp_path / "out", "fr/index.html"), read(tmp_path / "out", "es/index.html")
    assert 'lang="fr"' in french and "Expérience</h2>" in french and "mars 2021</time> – aujourd’hui" in french
    assert 'lang="es"' in spanish and "Formación</h2>" in spanish and "mar 2021</time> – actualidad" in spanish
    switcher = re.findall(r'lang="(\w+)"(?: aria-current="page")?>(\w+)</a>', spanish)
    assert switcher == [("en", "English"), ("es", "Español"), ("fr", "Français")]


def test_a_regional_tag_keeps_its_region_and_uses_the_language_table(tmp_path):
    path = write_resume(tmp_path, example())
    write_translation(tmp_path, "de", with_lang(german(), "de-CH"))
    report = build(path, str(tmp_path / "out"), OPTIONS)
    html = read(tmp_path / "out", "de/index.html")
    assert report.warnings == () and 'lang="de-CH"' in html and "Berufserfahrung" in html
    assert ("de-CH", f"{SITE_URL}/de/") in alternates(html)


# --- English where a translation is missing ---------------------------------------------------------------


def test_a_language_without_a_table_is_english_and_the_build_says_so(make_app, tmp_path):
    path = write_resume(tmp_path, example())
    write_translation(tmp_path, "it", with_lang(example(), "it"))
    result = make_app().test_cli_runner().invoke(args=["site", "build", "--resume", path, "--out",
                                                       str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert ("warning: no translation table for it (translations/it.json): its pages use English words"
            in result.output)
    html = read(tmp_path / "out", "it/index.html")
    assert 'lang="it"' in html and "<h2 id=\"work\">Experience</h2>" in html and "Mar 2021</time> – Present" in html
    assert '<a href="/it/" hreflang="it" lang="it" aria-current="page">it</a>' in html  # named by its tag


def _source_with(tmp_path, table: dict) -> str:
    """A copy of site/ whose German table is ``table``."""
    source = tmp_path / "source"
    shutil.copytree(source_dir(), source, ignore=shutil.ignore_patterns("resume*.json"))
    (source / "translations" / "de.json").write_text(json.dumps(table), encoding="utf-8")
    return str(source)


def test_a_missing_or_malformed_word_is_english_and_named_in_a_warning(tmp_path):
    with open(os.path.join(source_dir(), "translations", "de.json"), encoding="utf-8") as handle:
        table = json.load(handle)
    del table["work"]
    table["portrait_of"] = "Porträt von {person}"  # another placeholder than the English
    table["months"] = table["months"][:11]
    source = _source_with(tmp_path, table)
    report = build(EXAMPLE, str(tmp_path / "out"), OPTIONS, source=source)
    assert report.warnings == ("translations/de.json lacks months, portrait_of, work (or their placeholders "
                               "differ): English is used for them",)
    html = read(tmp_path / "out", "de/index.html")
    assert "<h2 id=\"work\">Experience</h2>" in html and "<h2 id=\"education\">Ausbildung</h2>" in html
    assert 'alt="Portrait of Mara Lindqvist"' in html and "Mar 2021</time> – heute" in html


def test_every_shipped_table_has_every_word():
    source = source_dir()
    tables = sorted(name[:-5] for name in os.listdir(os.path.join(source, "translations")))
    assert {"en", "de", "fr", "es"} <= set(tables)
    for tag in tables:
        words, warnings = languages.words(tag, source)
        assert warnings == [], tag
        assert len(words["months"]) == 12 and words["language_name"] != "English" or tag == "en"


def test_a_translation_is_escaped_like_the_resume(tmp_path):
    with open(os.path.join(source_dir(), "translations", "de.json"), encoding="utf-8") as handle:
        table = json.load(handle)
    table["work"] = '<script>alert("x")</script>'
    table["roles_at"] = "{roles} <b>bei</b> {entity}"
    build(EXAMPLE, str(tmp_path / "out"), OPTIONS, source=_source_with(tmp_path, table))
    html = read(tmp_path / "out", "de/index.html")
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>bei</b>" not in html


# --- the sitemap and serving -------------------------------------------------------------------------------

XHTML = "{http://www.w3.org/1999/xhtml}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def test_the_sitemap_lists_every_language_with_its_alternates(make_app, tmp_path):
    path = write_resume(tmp_path, example())
    write_translation(tmp_path, "de", german())
    client = make_app(SITE_RESUME=path, SITE_URL=SITE_URL).test_client()
    tree = ET.fromstring(client.get("/sitemap.xml").data)  # noqa: S314 - our own sitemap
    urls = {u.find(f"{SITEMAP}loc").text: u for u in tree.findall(f"{SITEMAP}url")}
    assert set(urls) == {f"{SITE_URL}/", f"{SITE_URL}/de/"}  # no blog configured
    for url in urls.values():
        assert url.find(f"{SITEMAP}lastmod").text == "2026-01-15"
        links = {(link.get("rel"), link.get("hreflang"), link.get("href")) for link in url.findall(f"{XHTML}link")}
        assert links == {("alternate", "en", f"{SITE_URL}/"), ("alternate", "de", f"{SITE_URL}/de/"),
                         ("alternate", "x-default", f"{SITE_URL}/")}
    # a translation added later shows without a restart
    write_translation(tmp_path, "fr", with_lang(example(), "fr"))
    sitemap = client.get("/sitemap.xml").data.decode()
    assert f"<loc>{SITE_URL}/fr/</loc>" in sitemap and f'hreflang="fr" href="{SITE_URL}/fr/"' in sitemap


def test_one_language_makes_a_sitemap_without_alternates(make_app, tmp_path):
    client = make_app(SITE_RESUME=write_resume(tmp_path, example()), SITE_URL=SITE_URL).test_client()
    sitemap = client.get("/sitemap.xml").data.decode()
    assert f"<loc>{SITE_URL}/</loc>" in sitemap and "xhtml" not in sitemap and "hreflang" not in sitemap


def test_a_language_page_is_served_at_its_folder(make_app, built):
    _, out = built
    client = make_app(SITE_DIR=str(out)).test_client()
    response = client.get("/de/")
    assert response.status_code == 200 and response.data == (out / "de" / "index.html").read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"
    # one address per page, as on AWS (terraform/functions/viewer-request.js)
    moved = client.get("/de?utm_source=cv")
    assert moved.status_code == 301 and moved.headers["Location"] == "/de/?utm_source=cv"
    assert client.get("/fr/").status_code == 404 and client.get("/fr").status_code == 404


@pytest.mark.parametrize("path", ["//etc", "//evil.example/", "/%2Fetc", "/de/../../", "/..%2F..%2Fetc",
                                  "/assets/..%2F..%2Fservice", "///de"])
def test_the_folder_redirect_never_leaves_the_site(make_app, built, path):
    _, out = built
    # the raw path as a server receives it (the test client would read //etc as a host name)
    response = make_app(SITE_DIR=str(out)).test_client().get("/", environ_overrides={"PATH_INFO": path})
    location = response.headers.get("Location", "")
    assert not location.startswith("//") and "://" not in location and "etc" not in location, (path, location)
    assert response.status_code in (301, 308, 404), (path, response.status_code)


# --- the sections' order and visibility ---------------------------------------------------------------------


def test_meta_sections_orders_the_page_and_hides_the_rest(tmp_path):
    resume = example()
    resume["meta"]["sections"] = ["skills", "work", "about"]
    build(write_resume(tmp_path, resume), str(tmp_path / "out"), OPTIONS)
    html = read(tmp_path / "out", "index.html")
    assert headings(html)[:3] == ["skills", "work", "about"]
    assert not {"projects", "education", "references", "recognition", "personal"} & set(headings(html))
    assert "Chalmers" not in html and resume["references"][0]["reference"] not in html


def test_without_meta_sections_every_section_in_the_default_order(built):
    _, out = built
    shown = [name for name in headings(read(out, "index.html")) if name in SECTIONS]
    assert shown == list(SECTIONS)


def test_the_schema_knows_exactly_the_page_sections():
    with open(os.path.join(source_dir(), "resume.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    assert tuple(schema["properties"]["meta"]["properties"]["sections"]["items"]["enum"]) == SECTIONS
    for name in SECTIONS:
        assert os.path.isfile(os.path.join(source_dir(), "templates", "resume", f"{name}.html")), name


def _with_sections(sections):
    resume = example()
    resume["meta"]["sections"] = sections
    return resume


@pytest.mark.parametrize(("sections", "problem"), [
    (["work", "hobbies"], "meta.sections[1]: unknown section 'hobbies'; expected one of about, work, projects"),
    (["work", "work"], "meta.sections: lists an item twice"),
    ("work", 'meta.sections: must be an array, not "work"'),
])
def test_a_bad_section_list_fails_the_build_naming_it(tmp_path, sections, problem):
    with pytest.raises(ResumeError) as caught:
        build(write_resume(tmp_path, _with_sections(sections)), str(tmp_path / "out"), OPTIONS)
    assert problem in str(caught.value)
    assert not (tmp_path / "out").exists()


# --- translations that cannot be built ------------------------------------------------------------------------


def _broken_translation(tmp_path, code: str, resume: dict):
    path = write_resume(tmp_path, example())
    write_translation(tmp_path, code, resume)
    with pytest.raises(ResumeError) as caught:
        build(path, str(tmp_path / "out"), OPTIONS)
    assert not (tmp_path / "out").exists()
    return str(caught.value)


def test_a_translation_is_validated_like_the_resume_and_named(tmp_path):
    resume = german()
    resume["work"][0]["startDate"] = "März 2021"
    message = _broken_translation(tmp_path, "de", resume)
    assert message.startswith("resume.de.json does not match the JSON Resume schema")
    assert "work[0].startDate: 'März 2021' is not a date" in message


@pytest.mark.parametrize(("code", "lang", "problem"), [
    ("de", "fr", "resume.de.json: meta.lang 'fr' is not the file's language 'de'"),
    ("en", "en", "resume.en.json: resume.json is already in en"),
    ("api", None, "resume.api.json: /api/ is the app's own address"),
])
def test_clashing_languages_fail_the_build(tmp_path, code, lang, problem):
    assert problem in _broken_translation(tmp_path, code, with_lang(example(), lang))


def test_files_that_are_no_language_are_left_alone(tmp_path):
    path = write_resume(tmp_path, example())
    for name in ("resume.schema.json", "resume.backup.json", "resume.DE.json", "resume..json", "cv.de.json"):
        (tmp_path / name).write_text("not even JSON")
    assert languages.language_files(path) == []
    assert build(path, str(tmp_path / "out"), OPTIONS).pages == (("en", "index.html"),)
