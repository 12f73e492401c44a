"""The site build (`flask site build`, `service.site.build`) and serving it (`service.site.serve`).

Builds the real example ``site/resume.json`` (and broken copies of it) into
temporary folders and checks the files, the markup rules the strict
Content-Security-Policy and accessibility need, the validation messages, the
page-weight report, and the HTTP side: gzip, cache headers, 404 page, the
blog addresses without a blog.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
from html.parser import HTMLParser

import pytest

from service.core.config import ConfigError
from service.features import WIDGETS
from service.site.build import ResumeError, SiteOptions, build
from service.theme.resume import load_resume
from service.theme.templates import display_date

from ..helpers import ROOT

EXAMPLE = os.path.join(ROOT, "site", "resume.json")
SITE_URL = "https://mara.example.com"
OPTIONS = SiteOptions(site_url=SITE_URL, widgets=WIDGETS)  # every live widget
PAGES = ("index.html", "404.html")  # the blog's pages are rendered by the app (tests/blog/test_pages.py)


def example() -> dict:
    with open(EXAMPLE, encoding="utf-8") as handle:
        return json.load(handle)


def write_resume(folder, resume: dict) -> str:
    path = os.path.join(folder, "resume.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(resume, handle)
    basics = resume.get("basics")
    if isinstance(basics, dict) and basics.get("image") == "photo.svg":
        shutil.copy(os.path.join(ROOT, "site", "photo.svg"), os.path.join(folder, "photo.svg"))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "out"
    report = build(EXAMPLE, str(out), OPTIONS)
    return report, out


def read(out, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


class Markup(HTMLParser):
    """Tags with their attributes, in document order."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script_text = ""
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_script_text += data.strip()

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


# --- the build ------------------------------------------------------------------------------


def test_example_builds_every_page_and_fingerprinted_asset(built):
    report, out = built
    names = set(report.files)
    assert {*PAGES, "robots.txt", "favicon.svg", "photo.svg"} <= names
    assets = sorted(n for n in names if n.startswith("assets/"))
    assert sorted(re.sub(r"\.[0-9a-f]{10}\.", ".<hash>.", n) for n in assets) == ["assets/site.<hash>.css",
                                                                            "assets/site.<hash>.js"]
    for name in assets:
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()[:10]
        assert f".{digest}." in name
    for page in PAGES:
        html = read(out, page)
        assert all(f'"/{name}"' in html for name in assets), page
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(names)


def test_the_whole_resume_is_in_the_html(built):
    _, out = built
    html = read(out, "index.html")
    resume = example()
    basics = resume["basics"]
    expected = [basics["name"], basics["label"], basics["email"], basics["phone"], basics["location"]["city"]]
    expected += [p["network"] for p in basics["profiles"]]
    expected += [j["position"] for j in resume["work"]] + [j["name"] for j in resume["work"]]
    expected += [h for j in resume["work"] for h in j["highlights"]]
    expected += [v["organization"] for v in resume["volunteer"]] + [e["institution"] for e in resume["education"]]
    expected += [a["title"] for a in resume["awards"]] + [c["name"] for c in resume["certificates"]]
    expected += [p["name"] for p in resume["publications"]] + [s["name"] for s in resume["skills"]]
    expected += [k for s in resume["skills"] for k in s["keywords"]]
    expected += [lang["language"] for lang in resume["languages"]] + [i["name"] for i in resume["interests"]]
    expected += [r["reference"] for r in resume["references"]] + [p["name"] for p in resume["projects"]]
    missing = [text for text in expected if text.replace("'", "&#39;") not in html]
    assert not missing
    assert 'datetime="2021-03">Mar 2021</time> – Present' in html
    assert 'datetime="2017-09">Sep 2017</time> – <time datetime="2021-02">Feb 2021</time>' in html


@pytest.mark.parametrize("page", PAGES)
def test_pages_work_under_the_strict_csp(built, page):
    """No inline script, style or handler; every script, stylesheet and icon comes from the site itself."""
    _, out = built
    html = read(out, page)
    markup = Markup(html)
    assert markup.inline_script_text == ""
    assert not markup.find("style")
    for tag, attrs in markup.tags:
        assert "style" not in attrs, (tag, attrs)
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action"):
            assert not (attrs.get(name) or "").lower().startswith(("javascript:", "data:")), (tag, attrs)
    for attrs in markup.find("script"):
        assert attrs["src"].startswith("/assets/") and attrs["type"] == "module"
    for attrs in markup.find("link"):
        if attrs["rel"] in ("stylesheet", "icon"):
            assert attrs["href"].startswith("/") and not attrs["href"].startswith("//")


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_landmarks_ordered_headings_labels_and_alt_text(built, page):
    _, out = built
    markup = Markup(read(out, page))
    names = [tag for tag, _ in markup.tags]
    assert names.count("main") == 1 and names.count("header") == 1 and names.count("footer") == 1
    assert markup.find("html")[0]["lang"] == "en"
    levels = [int(tag[1]) for tag in names if re.fullmatch(r"h[1-6]", tag)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels
    assert all(attrs.get("alt") is not None for attrs in markup.find("img"))
    labelled = {attrs.get("for") for attrs in markup.find("label")}
    for attrs in markup.find("input") + markup.find("textarea"):
        assert attrs["id"] in labelled
    assert markup.find("a")[0] == {"class": "skip-link", "href": "#main"}


def test_head_carries_description_open_graph_icon_and_canonical(built):
    _, out = built
    markup = Markup(read(out, "index.html"))
    meta = {a.get("name") or a.get("property"): a["content"] for a in markup.find("meta") if a.get("content")}
    assert meta["description"].startswith("I build and run web services") and len(meta["description"]) <= 155
    assert meta["og:title"].startswith("Mara Lindqvist")
    assert meta["og:type"] == "profile"
    assert meta["og:url"] == f"{SITE_URL}/"
    assert meta["og:image"] == f"{SITE_URL}/photo.svg"
    assert meta["viewport"] == "width=device-width, initial-scale=1"
    links = {a["rel"]: a for a in markup.find("link")}
    assert links["canonical"]["href"] == f"{SITE_URL}/"
    assert links["icon"]["href"] == "/favicon.svg"
    feeds = {a["type"]: a["href"] for a in markup.find("link") if a["rel"] == "alternate" and "hreflang" not in a}
    assert feeds == {"application/atom+xml": "/blog/feed.xml", "application/feed+json": "/blog/feed.json"}
    robots = {a.get("name"): a["content"] for a in Markup(read(out, "404.html")).find("meta") if a.get("name")}
    assert robots["robots"] == "noindex"


def test_robots_points_at_the_sitemap_the_app_serves(built):
    """The sitemap has one owner, the app (`service.blog.pages`, with the posts): the build writes none."""
    report, out = built
    assert f"Sitemap: {SITE_URL}/sitemap.xml" in read(out, "robots.txt").splitlines()
    assert "sitemap.xml" not in report.files and not (out / "sitemap.xml").exists()


def test_the_build_reports_the_home_page_weight(built):
    """The report's figure is the home page, its CSS, JS and icon (the 100 KB budget is test_browser's:
    it counts what a browser really loads)."""
    report, out = built
    index = read(out, "index.html")
    loaded = ["index.html", "favicon.svg"] + [m.lstrip("/") for m in re.findall(r'"(/assets/[^"]+)"', index)]
    assert report.home_bytes == sum((out / name).stat().st_size for name in set(loaded)) > 0


def test_all_of_the_sites_javascript_is_at_most_12_kb_gzipped(built):
    """Every script the build ships (the site's one, with the counter, beacons and widgets), compressed as the
    server and the CDN send it."""
    _, out = built
    scripts = sorted(out.rglob("*.js"))
    assert scripts
    zipped = sum(len(gzip.compress(path.read_bytes(), 9)) for path in scripts)
    assert zipped <= 12 * 1024, {path.name: path.stat().st_size for path in scripts}


def test_api_base_and_widget_choice_shape_the_pages(tmp_path):
    build(EXAMPLE, str(tmp_path / "a"), SiteOptions(site_url=SITE_URL, api_base="https://api.example.com/api",
                                                    widgets=("visitors", "blog"), api_timeout=2.5))
    html = read(tmp_path / "a", "index.html")
    assert 'data-api="https://api.example.com/api"' in html and 'data-timeout="2500"' in html
    assert 'id="latest-posts"' in html and 'id="visitor-counter"' in html
    assert 'id="spotify"' not in html and 'id="github"' not in html and 'id="contact-form"' not in html
    assert 'href="/blog/feed.xml"' in html  # the blog's pages and feeds live on the site's own origin
    build(EXAMPLE, str(tmp_path / "b"), SiteOptions(site_url=SITE_URL, widgets=()))
    bare = read(tmp_path / "b", "index.html")
    assert "<aside" not in bare and "visitor-counter" not in bare and "/blog/" not in bare
    assert not (tmp_path / "b" / "blog").exists()


def test_text_from_the_resume_is_escaped(tmp_path):
    resume = example()
    resume["basics"]["name"] = '<script>alert("x")</script> & Co'
    resume["work"][0]["highlights"] = ['<img src=x onerror="alert(1)">']
    build(write_resume(tmp_path, resume), str(tmp_path / "out"), OPTIONS)
    html = read(tmp_path / "out", "index.html")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in html


def _broken(change):
    resume = example()
    change(resume)
    return resume


BROKEN = [
    pytest.param(lambda r: r["work"][1].update(startDate="2019/04"), "work[1].startDate", "not a date", id="date"),
    pytest.param(lambda r: r["basics"].update(email="mara(at)example.com"), "basics.email", "not an email",
                 id="email"),
    pytest.param(lambda r: r["basics"]["profiles"][0].update(url="javascript:alert(1)"), "basics.profiles[0].url",
                 "not an absolute http(s) URL", id="script-url"),
    pytest.param(lambda r: r["skills"][0].update(keywords="Python"), "skills[0].keywords", "must be an array",
                 id="wrong-type"),
    pytest.param(lambda r: r.update(skils=[]), "skils", "unknown field", id="typo"),
    pytest.param(lambda r: r.update(basics=["Mara"]), "basics", "must be an object", id="basics-list"),
    pytest.param(lambda r: r["basics"].update(image="missing.jpg"), "basics.image", "not found", id="photo-missing"),
    pytest.param(lambda r: r["basics"].update(image="../secret.jpg"), "basics.image", "file name next to",
                 id="photo-outside"),
]


@pytest.mark.parametrize(("change", "field", "problem"), BROKEN)
def test_an_invalid_resume_fails_naming_the_field_and_writes_nothing(tmp_path, change, field, problem):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("the previous build")
    with pytest.raises(ResumeError) as caught:
        build(write_resume(tmp_path, _broken(change)), str(out), OPTIONS)
    line = next(line for line in str(caught.value).splitlines() if field in line)
    assert re.search(rf"(^|\s){re.escape(field)}: ", line) and problem in line, str(caught.value)
    assert (out / "index.html").read_text() == "the previous build"
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".site-")]


def test_every_problem_is_listed_at_once(tmp_path):
    resume = _broken(lambda r: (r["work"][0].update(endDate="soon"), r["education"][0].update(courses=[1])))
    with pytest.raises(ResumeError) as caught:
        build(write_resume(tmp_path, resume), str(tmp_path / "out"), OPTIONS)
    assert "work[0].endDate:" in str(caught.value) and "education[0].courses[0]:" in str(caught.value)


def test_json_syntax_errors_give_line_and_column(tmp_path):
    path = tmp_path / "resume.json"
    path.write_text('{\n  "basics": {"name": "Mara",}\n}\n')
    # Python 3.13's parser names the trailing comma itself (column 28)
    with pytest.raises(ResumeError, match=r"not valid JSON: Illegal trailing comma .* line 2, column 28"):
        load_resume(str(path))


def test_an_https_photo_is_used_as_is(tmp_path):
    resume = _broken(lambda r: r["basics"].update(image="https://images.example.com/mara.jpg"))
    report = build(write_resume(tmp_path, resume), str(tmp_path / "out"), OPTIONS)
    html = read(tmp_path / "out", "index.html")
    assert 'src="https://images.example.com/mara.jpg"' in html
    assert '<meta property="og:image" content="https://images.example.com/mara.jpg">' in html
    assert "photo.svg" not in report.files


@pytest.mark.parametrize(("value", "shown"), [("2021-03-15", "Mar 2021"), ("2021-03", "Mar 2021"), ("2021", "2021"),
                                              (None, "Present"), ("", "Present")])
def test_display_date(value, shown):
    assert display_date(value) == shown


# --- the command -----------------------------------------------------------------------------


def test_every_widget_by_default(make_app):
    assert make_app().config["SITE_WIDGETS"] == ("visitors", "spotify", "github", "blog", "contact")


def test_cli_builds_from_the_settings(make_app, tmp_path):
    out = tmp_path / "from-settings"
    app = make_app(SITE_DIR=str(out), SITE_RESUME=EXAMPLE, SITE_URL="https://cv.example.org",
                   SITE_WIDGETS="visitors,contact", SITE_PDF="off")  # the PDF: tests/site/test_pdf.py
    result = app.test_cli_runner().invoke(args=["site", "build"])
    assert result.exit_code == 0, result.output
    assert f"built 9 files into {out}" in result.output  # the blog's pages and the sitemap are the app's
    assert "resume pages: en (index.html), de (de/index.html)" in result.output
    assert "KB before compression" in result.output
    html = read(out, "index.html")
    assert '<link rel="canonical" href="https://cv.example.org/">' in html and 'id="spotify"' not in html


def test_auto_widgets_follow_the_configured_upstreams(make_app, tmp_path):
    """SITE_WIDGETS=auto: visitors and contact, plus the widgets whose settings are present."""
    out = tmp_path / "auto"
    app = make_app(SITE_DIR=str(out), SITE_WIDGETS="auto", GITHUB_USERNAME="someone", SPOTIFY_CLIENT_ID="abc",
                   SITE_PDF="off")
    assert app.config["SITE_WIDGETS"] is None
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    html = read(out, "index.html")
    assert 'data-widgets="contact github visitors"' in html
    assert 'id="github"' in html and 'id="spotify"' not in html and 'id="latest-posts"' not in html
    assert 'href="/blog/"' not in html  # no blog configured: no link to an empty blog


def test_cli_reports_an_invalid_resume_and_exits_1(make_app, tmp_path):
    path = write_resume(tmp_path, _broken(lambda r: r["work"][2].update(startDate="June 2014")))
    result = make_app().test_cli_runner().invoke(args=["site", "build", "--resume", path, "--out",
                                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "work[2].startDate: 'June 2014' is not a date" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "value"), [("SITE_WIDGETS", "visitors,weather"), ("SITE_API_BASE", "//evil.example"),
                                             ("SITE_API_TIMEOUT", "0"), ("SITE_PDF", "maybe"),
                                             ("SITE_PDF_PAPER", "a5")])
def test_bad_site_settings_stop_start_up(make_app, name, value):
    with pytest.raises(ConfigError, match=name):
        make_app(**{name: value})


# --- serving the build -----------------------------------------------------------------------


@pytest.fixture
def site_client(make_app, built):
    _, out = built
    return make_app(SITE_DIR=str(out)).test_client(), out


def test_text_is_gzipped_for_clients_that_accept_it(site_client):
    client, out = site_client
    plain = client.get("/")
    assert plain.data == (out / "index.html").read_bytes()
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    zipped = client.get("/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.data) == plain.data
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 2
    assert zipped.headers["ETag"] == "W/" + plain.headers["ETag"]
    again = client.get("/", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Vary"] == "Accept-Encoding"
    assert client.head("/", headers={"Accept-Encoding": "gzip"}).headers["Content-Length"] == str(len(zipped.data))
    photo = client.get("/photo.svg", headers={"Accept-Encoding": "gzip"})
    assert photo.status_code == 200 and "Content-Encoding" not in photo.headers  # under 512 bytes: not worth it


def test_a_rebuilt_file_is_served_fresh(make_app, tmp_path):
    out = tmp_path / "out"
    build(EXAMPLE, str(out), OPTIONS)
    client = make_app(SITE_DIR=str(out)).test_client()
    first = gzip.decompress(client.get("/", headers={"Accept-Encoding": "gzip"}).data)
    resume = _broken(lambda r: r["basics"].update(name="Renamed Person"))
    build(write_resume(tmp_path, resume), str(out), OPTIONS)
    second = gzip.decompress(client.get("/", headers={"Accept-Encoding": "gzip"}).data)
    assert b"Mara Lindqvist</h1>" in first and b"Renamed Person</h1>" in second


def test_cache_headers_long_for_fingerprinted_assets_short_for_html(site_client):
    client, out = site_client
    asset = next(p.name for p in (out / "assets").iterdir() if p.suffix == ".css")
    assert client.get(f"/assets/{asset}").headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for path in ("/", "/404.html", "/robots.txt"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-cache", path
    assert "max-age=3600" in client.get("/favicon.svg").headers["Cache-Control"]
    assert client.get("/").headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_missing_pages_get_the_404_page_and_the_api_keeps_json(site_client):
    client, out = site_client
    page = client.get("/no/such/page", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 404 and page.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(page.data) == (out / "404.html").read_bytes()
    assert client.get("/../service/core/config.py").status_code == 404
    api = client.get("/api/no-such-endpoint")
    assert api.status_code == 404 and api.json["error"] == "not_found"


def test_without_a_blog_no_link_and_every_blog_address_is_a_404_page(make_app, tmp_path):
    """BLOG_REPO empty (the default SITE_WIDGETS names the blog): no Blog link or card, blog addresses 404."""
    app = make_app(SITE_DIR=str(tmp_path / "out"), SITE_URL=SITE_URL)
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    client = app.test_client()
    home = client.get("/").data.decode()
    assert 'href="/blog/"' not in home and 'id="latest-posts"' not in home and "feed.xml" not in home
    for path in ("/blog/", "/blog/12", "/blog/12/a-post", "/blog/post.html?n=12", "/blog/feed.xml", "/blog/feed.json"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
        assert b"There is no blog here." in response.data
    sitemap = client.get("/sitemap.xml").data.decode()
    assert "/blog/" not in sitemap and f"<loc>{SITE_URL}/</loc>" in sitemap
