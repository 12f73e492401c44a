"""The built site in real headless Chromium, against the real service and its real API.

One browser for the module and three services on free loopback ports, all
serving one build of a temporary copy of ``site/resume.json`` (its name
changed, so the page must come from the file), each with its own SQLite store:

* ``live``: every widget configured against a fake GitHub/Spotify/Telegram
  upstream (a loopback HTTP server) and an injected clock;
* ``bare``: no widget settings, so Spotify, GitHub and the blog answer 503
  ``not_configured``; contact limited to 1 message an hour;
* ``slow``: the widget upstreams hold every answer far longer than the site
  waits (the site's API timeout is 2 s here); 1 counted view an hour.

Screenshots (desktop and mobile, light and dark) and the printed PDF go to
``test-artifacts/``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time

import pytest
import requests
from pypdf import PdfReader

from service import create_app
from service.features import WIDGETS
from service.site.build import SiteOptions, build

from ..browser import (
    PINNED,
    POSTS,
    Chromium,
    LiveService,
    browser_missing,
    hang_upstreams,
    script_upstreams,
    upstream_settings,
)
from ..fakes import FakeUpstream, Reply
from ..helpers import ROOT, FakeClock

pytestmark = [pytest.mark.browser, pytest.mark.server,
              pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "")]

NAME = "Testa Quillfeather"
SECTIONS = ["About", "Experience", "Projects", "Volunteering", "Education", "Skills",
            "Awards, certificates and publications", "Languages and interests", "References", "Contact"]
GERMAN_SECTIONS = ["Über mich", "Berufserfahrung", "Projekte", "Ehrenamt", "Ausbildung", "Kenntnisse",
                   "Auszeichnungen, Zertifikate und Veröffentlichungen", "Sprachen und Interessen", "Referenzen",
                   "Kontakt"]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resume_file(tmp_path_factory):
    """The example resume and its German translation with another name (the build and the blog's
    server-rendered pages read it)."""
    source = tmp_path_factory.mktemp("resume")
    with open(os.path.join(ROOT, "site", "resume.json"), encoding="utf-8") as handle:
        resume = json.load(handle)
    resume["basics"]["name"] = NAME
    (source / "resume.json").write_text(json.dumps(resume), encoding="utf-8")
    with open(os.path.join(ROOT, "site", "resume.de.json"), encoding="utf-8") as handle:
        german = json.load(handle)
    german["basics"]["name"] = NAME
    (source / "resume.de.json").write_text(json.dumps(german), encoding="utf-8")
    shutil.copy(os.path.join(ROOT, "site", "photo.svg"), source / "photo.svg")
    return str(source / "resume.json")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory, resume_file):
    """The resume built with a 2 s API timeout, and its PDF."""
    out = tmp_path_factory.mktemp("site") / "site"
    build(resume_file, str(out), SiteOptions(site_url="http://127.0.0.1:8000", widgets=WIDGETS, api_timeout=2,
                                             pdf="required"))
    return str(out)


@pytest.fixture(scope="module")
def fake():
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def hanging():
    upstream = FakeUpstream().start()
    hang_upstreams(upstream, seconds=30)
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def clock():
    return FakeClock(time.time())


def _service(tmp_path_factory, name: str, site_dir: str, resume: str, **settings) -> LiveService:
    db = tmp_path_factory.mktemp(name) / "vitae.db"
    app = create_app({"STORAGE_URL": f"sqlite:///{db}", "SECRET_KEY": "browser-test-key", "SITE_DIR": site_dir,
                      "SITE_RESUME": resume, "SITE_API_TIMEOUT": "2", **settings})
    with app.app_context():
        app.extensions["vitae.storage"].init()
    return LiveService(app)


@pytest.fixture(scope="module")
def services(clean_env, tmp_path_factory, resume_file, site_dir, fake, hanging, clock):
    started = {
        "live": _service(tmp_path_factory, "live", site_dir, resume_file, CLOCK=clock, CONTACT_RATE_LIMIT="50/hour",
                         **upstream_settings(fake)),
        "bare": _service(tmp_path_factory, "bare", site_dir, resume_file, CONTACT_RATE_LIMIT="1/hour"),
        "slow": _service(tmp_path_factory, "slow", site_dir, resume_file, UPSTREAM_TIMEOUT="10",
                         VISITOR_RATE_LIMIT="1/hour",
                         **upstream_settings(hanging)),
    }
    script_upstreams(fake, cover_url=f"{started['live'].url}/photo.svg")
    yield {name: service.url for name, service in started.items()}
    for service in started.values():
        service.stop()


@pytest.fixture(scope="module")
def chromium():
    browser = Chromium()
    yield browser
    browser.close()


@pytest.fixture
def browser(chromium, services):
    chromium.reset()
    yield chromium
    chromium.js("try { localStorage.clear() } catch (e) {}")


def api(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    """Call the service directly (not through the page): status and JSON body."""
    response = requests.request(method, url, json=body, timeout=10)
    return response.status_code, response.json()


# --- the resume ---------------------------------------------------------------------------------


def test_the_resume_comes_from_resume_json(browser, services):
    browser.open(services["live"] + "/")
    assert browser.text("h1") == NAME
    assert browser.driver.title.startswith(NAME)
    headings = browser.js("return [...document.querySelectorAll('main h2')].map(h => h.textContent.trim())")
    assert headings == SECTIONS
    assert "Senior Backend Engineer" in browser.text("main")
    assert browser.console_errors() == []


def test_the_download_pdf_link_answers_the_pdf(browser, services):
    browser.open(services["live"] + "/")
    assert browser.visible(".download a") and browser.text(".download a") == "Download PDF"
    href = browser.js("return document.querySelector('.download a').href")
    assert href == services["live"] + "/resume.pdf"
    response = requests.get(href, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and response.headers["Cache-Control"] == "no-cache"
    assert PdfReader(io.BytesIO(response.content)).metadata.author == NAME  # the PDF of this resume
    browser.cdp("Emulation.setEmulatedMedia", {"media": "print"})
    assert not browser.visible(".download a")  # the printed page is the PDF: no link to itself


def test_the_resume_reads_fine_without_javascript(browser, services):
    browser.javascript(False)
    browser.open(services["live"] + "/", ready=False)
    assert browser.driver.find_element("css selector", "h1").text == NAME
    text = browser.driver.find_element("css selector", "main").text
    assert all(section in text for section in SECTIONS)
    assert "Cut the tracking API's p99 latency" in text and "Loading" not in text
    for hidden in ("#spotify", "#github", "#latest-posts", "#visitor-counter"):
        assert not browser.driver.find_element("css selector", hidden).is_displayed(), hidden
    assert not browser.driver.find_element("css selector", "#theme-toggle").is_displayed()
    assert browser.driver.find_element("css selector", "#cf-name").is_displayed()
    browser.open(services["live"] + "/blog/", ready=False)
    assert "Measuring before optimising" in browser.driver.find_element("css selector", "main").text


def test_the_language_switcher_leads_to_the_german_page_and_back(browser, services):
    browser.open(services["live"] + "/")
    switcher = browser.driver.find_element("css selector", "nav.language-nav")
    assert switcher.get_attribute("aria-label") == "Language" and switcher.is_displayed()
    german = switcher.find_element("css selector", "a[hreflang='de']")
    assert german.text == "Deutsch" and german.get_attribute("lang") == "de"
    german.click()
    browser.wait(lambda: browser.driver.current_url == services["live"] + "/de/", message="the German page")
    browser.wait(lambda: browser.js("return document.body.dataset.ready === 'true'"), message="its widgets")
    assert browser.js("return document.documentElement.lang") == "de"
    assert browser.text("h1") == NAME
    headings = browser.js("return [...document.querySelectorAll('main h2')].map(h => h.textContent.trim())")
    assert headings == GERMAN_SECTIONS
    assert "März 2021 – heute" in browser.text("main")
    current = browser.driver.find_element("css selector", ".language-nav a[aria-current='page']")
    assert current.text == "Deutsch"
    assert browser.driver.find_element("css selector", "nav.language-nav").get_attribute("aria-label") == "Sprache"
    browser.driver.find_element("css selector", ".language-nav a[hreflang='en']").click()
    browser.wait(lambda: browser.driver.current_url == services["live"] + "/", message="back to English")
    assert browser.js("return document.documentElement.lang") == "en"
    assert browser.console_errors() == []


# --- widgets --------------------------------------------------------------------------------------


def test_the_counter_counts_each_page_load(browser, services):
    seen = []
    for _ in range(3):
        browser.open(services["live"] + "/blog/")
        browser.wait(lambda: browser.visible("#visitor-counter"), message="the counter")
        seen.append([int(re.sub(r"\D", "", browser.text(f".count-{kind}"))) for kind in ("page", "total", "unique")])
    assert [page for page, _, _ in seen] == [seen[0][0], seen[0][0] + 1, seen[0][0] + 2]
    assert [total - seen[0][1] for _, total, _ in seen] == [0, 1, 2]
    assert len({unique for _, _, unique in seen}) == 1
    assert api(services["live"] + "/api/visitors?path=/blog")[1]["page_views"] == seen[-1][0]


def test_a_view_answered_503_after_it_was_counted_is_sent_again_and_counted_once(browser, tmp_path_factory, site_dir,
                                                                                  resume_file, clean_env):
    """The store counts the view but its answer is lost (the app answers 503): the page sends the view again
    with the same id, shows it, and the server has counted it once."""
    from service.storage import StorageError

    service = _service(tmp_path_factory, "lossy", site_dir, resume_file)
    storage = service.app.extensions["vitae.storage"]
    real, sent = storage.hit, []

    def hit_then_lose_the_first_answer(spec):
        result = real(spec)
        sent.append(spec.once)
        if len(sent) == 1:
            raise StorageError("Redis: Timeout reading from socket")
        return result
    storage.hit = hit_then_lose_the_first_answer
    try:
        browser.open(service.url + "/")
        browser.wait(lambda: browser.visible("#visitor-counter"), message="the counter after the retry", timeout=10)
        assert browser.text(".count-total") == "1 view"
        assert len(sent) == 2 and sent[0] == sent[1] and sent[0] is not None
        assert api(service.url + "/api/visitors?path=/")[1]["total_views"] == 1
    finally:
        service.stop()


def test_every_widget_shows_the_fake_upstreams_data(browser, services, fake):
    browser.open(services["live"] + "/")
    assert browser.text("#spotify-title") == "Now playing"
    assert browser.text("#spotify-link") == "Harbour Lights"
    assert browser.js("return document.querySelector('#spotify-link').href") == "https://open.spotify.com/track/fake"
    assert browser.text("#spotify-artists") == "The Gulls, Saltwater · Low Tide"
    assert browser.js("const i = document.querySelector('#spotify-cover'); return i.complete && i.naturalWidth") > 0
    first = browser.js("return document.querySelector('#spotify-progress').value")
    assert 61000 <= first < 70000 and browser.js("return document.querySelector('#spotify-progress').max") == 215000
    browser.wait(lambda: browser.js("return document.querySelector('#spotify-progress').value") >= first + 1000,
                 message="the progress bar to move")
    assert re.fullmatch(r"1:0\d / 3:35", browser.text("#spotify-time"))

    events = browser.js("return [...document.querySelectorAll('#github-events li')].map(li => "
                        "[li.querySelector('a') && li.querySelector('a').href, li.innerText])")
    # Web links are built on GITHUB_API_URL's host (the fake here) unless the event carries its own.
    assert [e[0] for e in events] == [f"{fake.url}/testauthor/vitae/commit/" + "a" * 40,
                                      "https://github.com/upstream/project/pull/7", f"{fake.url}/someone/tool"]
    assert events[0][1].startswith("Pushed 2 commits to testauthor/vitae (main)\nServe the site gzipped\n")
    assert "Opened pull request: Fix the flaky retry test" in events[1][1]
    assert re.search(r"\n(yesterday|1 day ago)$", events[2][1])

    posts = browser.js("return [...document.querySelectorAll('#latest-list > li')].map(li => "
                       "[li.querySelector('a').getAttribute('href'), li.innerText])")
    assert [p[0] for p in posts] == ["/blog/14/measuring-before-optimising", "/blog/13/hostile-input-handled",
                                     "/blog/12/running-a-queue-on-sqlite"]
    assert posts[0][1].startswith("Measuring before optimising\n") and "1 min read" in posts[0][1]
    assert re.search(r"\d+ views?", posts[2][1]) and "sqlite" in posts[2][1]
    assert browser.console_errors() == []
    assert fake.count("GET", "/me/player/currently-playing") >= 1


def test_spotify_shows_the_last_played_track_when_idle(browser, services, fake, clock):
    fake.script("GET", "/me/player/currently-playing", Reply(204))
    clock.advance(3600)  # past SPOTIFY_CACHE_TTL: the next answer comes from the upstream again
    try:
        browser.cdp("Network.clearBrowserCache")  # the API allows caching its answer for SPOTIFY_CACHE_TTL
        browser.open(services["live"] + "/")
        assert browser.text("#spotify-title") == "Last played"
        assert browser.text("#spotify-when") == "Played 3 hours ago"
        assert browser.js("return document.querySelector('#spotify-time').closest('[hidden]') !== null")
    finally:
        script_upstreams(fake, cover_url=f"{services['live']}/photo.svg")
        clock.advance(3600)


def test_widgets_hide_when_their_endpoints_answer_503(browser, services):
    for path in ("/api/spotify", "/api/github", "/api/blog"):
        status, body = api(services["bare"] + path)
        assert (status, body["error"]) == (503, "not_configured"), path
    browser.open(services["bare"] + "/")
    for card in ("#spotify", "#github", "#latest-posts"):
        assert not browser.visible(card), card
    assert browser.visible("#visitor-counter") and browser.text("h1") == NAME
    assert browser.console_errors(allow_failed_requests=True) == []


def test_widgets_hide_when_the_api_times_out_and_the_counter_when_limited(browser, services, hanging):
    started = time.monotonic()
    browser.open(services["slow"] + "/", timeout=20)
    assert time.monotonic() - started < 8
    for card in ("#spotify", "#github", "#latest-posts"):
        assert not browser.visible(card), card
    assert hanging.count() >= 1  # the service really was waiting on the upstream
    assert browser.visible("#visitor-counter")
    browser.open(services["slow"] + "/", timeout=20)  # the second view is over VISITOR_RATE_LIMIT: 429
    assert not browser.visible("#visitor-counter")
    assert browser.console_errors(allow_failed_requests=True) == []


# --- contact form -----------------------------------------------------------------------------


def fill(browser, **values) -> None:
    for name, value in values.items():
        field = browser.driver.find_element("css selector", f"#cf-{name}")
        field.clear()
        field.send_keys(value)


def submit(browser) -> None:
    browser.driver.find_element("css selector", "#cf-submit").click()


def field_errors(browser) -> dict[str, str]:
    return browser.js("const out = {}; for (const n of ['name', 'email', 'subject', 'message']) {"
                      "const e = document.getElementById('cf-' + n + '-error').textContent;"
                      "if (e) out[n] = [e, document.getElementById('cf-' + n).getAttribute('aria-invalid')]; }"
                      "return out;")


def test_contact_form_checks_fields_shows_api_errors_and_sends(browser, services, fake):
    browser.open(services["live"] + "/")
    submit(browser)
    errors = field_errors(browser)
    assert errors == {"name": ["Please enter your name.", "true"],
                      "email": ["Please enter your email address.", "true"],
                      "message": ["Please write a message.", "true"]}
    assert browser.js("return document.activeElement.id") == "cf-name"
    assert browser.text("#cf-status") == "Please correct the marked fields."

    fill(browser, name="Ada Visitor", email="ada@", message="Hello")
    submit(browser)
    assert field_errors(browser) == {"email": ["Please enter an email address like name@example.com.", "true"]}

    # The API's own limits: with the page's maxlength gone, a 4,001-character message reaches the API.
    fill(browser, email="ada@example.com")
    browser.js("const m = document.getElementById('cf-message'); m.removeAttribute('maxlength');"
               "m.value = 'x'.repeat(4001);")
    sent_before = fake.count("POST", "/bot123456:test-token/sendMessage")
    submit(browser)
    browser.wait(lambda: field_errors(browser).get("message"), message="the API's field error")
    assert list(field_errors(browser)) == ["message"] and field_errors(browser)["message"][1] == "true"
    assert browser.js("return document.activeElement.id") == "cf-message"

    browser.js("""window.__disabled = [];
        new MutationObserver(() => window.__disabled.push(document.getElementById('cf-submit').disabled))
          .observe(document.getElementById('cf-submit'), {attributes: true});""")
    fill(browser, message="Hello from the browser test.\nSecond line.")
    submit(browser)
    browser.wait(lambda: browser.text("#cf-status") == "Thank you! Your message has been sent.", message="success")
    assert browser.js("return window.__disabled")[:1] == [True] and browser.js("return window.__disabled")[-1] is False
    assert browser.js("return document.getElementById('cf-name').value") == ""
    assert field_errors(browser) == {}
    browser.wait(lambda: fake.count("POST", "/bot123456:test-token/sendMessage") > sent_before, timeout=15,
                 message="delivery to the fake Telegram")
    text = fake.calls("POST", "/bot123456:test-token/sendMessage")[-1].json()["text"]
    assert "Ada Visitor" in text and "ada@example.com" in text and "Hello from the browser test." in text
    assert browser.console_errors(allow_failed_requests=True) == []


def test_contact_form_shows_when_to_retry_after_429(browser, services):
    browser.open(services["bare"] + "/")
    fill(browser, name="First Sender", email="first@example.com", message="One")
    submit(browser)
    browser.wait(lambda: browser.text("#cf-status").startswith("Thank you"), message="the first message")
    fill(browser, name="First Sender", email="first@example.com", message="Two")
    submit(browser)
    browser.wait(lambda: "try again" in browser.text("#cf-status"), message="the rate-limit message")
    status = browser.text("#cf-status")
    match = re.fullmatch(r"Too many messages were sent from here\. Please try again in (\d+) (minutes?|seconds?)\.",
                         status)
    assert match, status
    limit = api(services["bare"] + "/api/contact", "POST", {"name": "x", "email": "x@example.com", "message": "x"})
    assert limit[0] == 429
    minutes = int(match[1]) if match[2].startswith("minute") else 1
    assert abs(minutes - limit[1]["retry_after"] / 60) <= 1.5
    assert browser.js("return document.getElementById('cf-submit').disabled") is False


def test_keyboard_alone_reaches_and_submits_the_form(browser, services):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.open(services["live"] + "/")
    keys = ActionChains(browser.driver)
    keys.send_keys(Keys.TAB).perform()
    assert browser.js("return document.activeElement.className") == "skip-link"
    ring = browser.js("const s = getComputedStyle(document.activeElement);"
                      "return [s.outlineStyle, parseFloat(s.outlineWidth), s.visibility]")
    assert ring[0] == "solid" and ring[1] >= 2 and ring[2] == "visible"
    visited = []
    for _ in range(80):
        keys.send_keys(Keys.TAB).perform()
        focused = browser.js("const a = document.activeElement; return a.id || a.textContent.trim().slice(0, 30)")
        visited.append(focused)
        ring = browser.js("const s = getComputedStyle(document.activeElement); return s.outlineStyle")
        assert ring != "none", focused
        if focused == "cf-name":
            break
    assert visited[-1] == "cf-name" and "theme-toggle" in visited and "cf-website" not in visited
    keys.send_keys("Keyboard User").send_keys(Keys.TAB).send_keys("keys@example.com").send_keys(Keys.TAB)
    keys.send_keys(Keys.TAB).send_keys("Typed without a mouse.").send_keys(Keys.TAB).perform()
    assert browser.js("return document.activeElement.id") == "cf-submit"
    keys.send_keys(Keys.ENTER).perform()
    browser.wait(lambda: browser.text("#cf-status") == "Thank you! Your message has been sent.", message="success")


# --- blog ---------------------------------------------------------------------------------------------


POST_12 = "/blog/12/running-a-queue-on-sqlite"
POST_13 = "/blog/13/hostile-input-handled"
POST_14 = "/blog/14/measuring-before-optimising"


def test_blog_index_filters_pages_and_leads_to_a_post(browser, services):
    browser.open(services["live"] + "/blog/")
    titles = browser.js("return [...document.querySelectorAll('.post-list h2')].map(h => h.textContent)")
    assert titles[:3] == [f"Short note {PINNED}", *(p["title"] for p in POSTS[:2])] and len(titles) == 10
    browser.driver.find_element("link text", "Older posts →").click()
    browser.wait(lambda: browser.js("return document.body.dataset.ready === 'true' && location.search"),
                 message="page 2")
    assert browser.js("return location.search") == "?page=2"
    assert len(browser.js("return [...document.querySelectorAll('.post-list h2')]")) == len(POSTS) - 10
    assert "Page 2 of 2" in browser.text(".pager")

    browser.open(services["live"] + "/blog/")
    browser.driver.find_element("css selector", ".tag-filter a[href='/blog/?tag=performance']").click()
    browser.wait(lambda: browser.js("return document.body.dataset.ready === 'true' && location.search"),
                 message="the tag filter")
    titles = browser.js("return [...document.querySelectorAll('.post-list h2')].map(h => h.textContent)")
    assert titles == ["Measuring before optimising", "Running a queue on SQLite"]
    assert browser.js("return document.querySelector('.tag-filter [aria-current=true]').textContent") == "performance"

    browser.driver.find_element("link text", "Running a queue on SQLite").click()
    browser.wait(lambda: browser.js("return document.body.dataset.ready === 'true' && location.pathname"),
                 message="the post page")
    assert browser.js("return location.pathname + location.search") == POST_12
    assert browser.text("h1") == "Running a queue on SQLite"
    assert browser.driver.title.startswith("Running a queue on SQLite · ")
    browser.wait(lambda: browser.visible("#post-views"), message="the view count")
    meta = browser.text("#post-meta")
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4} · 3 min read · 1 view", meta), meta
    assert browser.js("return [...document.querySelectorAll('#post-tags a')].map(a => a.textContent)") == [
        "sqlite", "performance"]
    assert browser.js("return document.querySelector('#post-body strong').textContent") == "SQLite"
    assert browser.js("return document.querySelector('a[href=\"/blog/feed.xml\"]') !== null")
    assert api(services["live"] + "/api/visitors?path=/blog/12")[1]["page_views"] == 1
    browser.driver.back()
    browser.wait(lambda: "tag=performance" in browser.js("return location.search"), message="back to the list")
    assert browser.console_errors() == []


def test_post_and_index_are_complete_without_javascript(browser, services):
    """The post's text, reactions and comments are in the HTML itself; only the view count needs the script."""
    source = requests.get(services["live"] + POST_12, timeout=10).text
    assert "Short notes on <strong>SQLite</strong> as a queue." in source
    assert "Did you try <strong>WAL</strong> mode?" in source
    browser.javascript(False)
    browser.open(services["live"] + POST_12, ready=False)
    assert browser.driver.find_element("css selector", "h1").text == "Running a queue on SQLite"
    assert "Short notes on SQLite as a queue." in browser.driver.find_element("css selector", "#post-body").text
    comments = browser.driver.find_elements("css selector", ".comment")
    assert [c.get_attribute("id") for c in comments] == ["comment-501", "comment-502"]
    assert "reader" in comments[0].text and "Did you try WAL mode?" in comments[0].text
    assert browser.driver.find_element("css selector", "#comments-title").text == "2 comments"
    assert not browser.driver.find_element("css selector", "#post-views").is_displayed()
    browser.open(services["live"] + POST_14, ready=False)
    reactions = browser.driver.find_element("css selector", ".reactions").text
    assert "👍 3" in reactions and "🚀 1" in reactions
    browser.open(services["live"] + "/blog/?tag=performance", ready=False)
    titles = [h.text for h in browser.driver.find_elements("css selector", ".post-list h2")]
    assert titles == ["Measuring before optimising", "Running a queue on SQLite"]


def test_a_post_carries_its_link_preview_tags(browser, services):
    browser.open(services["live"] + POST_12)
    tags = browser.js("""return Object.fromEntries([...document.querySelectorAll('meta[property], meta[name]')]
        .map(m => [m.getAttribute('property') || m.getAttribute('name'), m.content]));""")
    assert tags["og:type"] == "article" and tags["og:title"].startswith("Running a queue on SQLite")
    assert tags["description"].startswith("Short notes on SQLite as a queue.")
    assert tags["og:url"] == "http://127.0.0.1:8000" + POST_12
    assert browser.js("return [...document.querySelectorAll('meta[property=\"article:tag\"]')].map(m => m.content)"
                      ) == ["sqlite", "performance"]
    assert tags["og:image"].startswith("http://127.0.0.1:8000/blog/12/card.png?v=")  # the post's share card
    assert tags["twitter:card"] == "summary_large_image" and tags["twitter:image"] == tags["og:image"]
    assert browser.js("return document.querySelector('link[rel=canonical]').href") == "http://127.0.0.1:8000" + POST_12
    data = json.loads(browser.js("return document.querySelector('script[type=\"application/ld+json\"]').textContent"))
    assert data["@type"] == "BlogPosting" and data["headline"] == "Running a queue on SQLite"
    assert browser.console_errors() == []  # the JSON-LD block is data, which the strict CSP leaves alone
    # the card opens as a 1200 x 630 image
    browser.open(services["live"] + tags["og:image"].removeprefix("http://127.0.0.1:8000"), ready=False)
    assert browser.wait(lambda: browser.js("const i = document.images[0]; return i && i.complete && "
                                           "[i.naturalWidth, i.naturalHeight]")) == [1200, 630]


@pytest.mark.parametrize("path", [POST_13, POST_13 + "#comments"])
def test_xss_in_a_post_or_its_comments_runs_nothing(browser, services, path):
    browser.open(services["live"] + path)
    time.sleep(0.5)  # let anything that would fire (onerror, onload) fire
    assert browser.text("h1") == "Hostile input, handled"
    for scope in ("#post-body", ".comment .prose"):
        body = browser.text(scope)
        assert "Before the payloads." in body and "After the payloads." in body, scope
    assert browser.js("return window.__xss === undefined && window.parent.__xss === undefined")
    found = browser.js("""return [...document.querySelectorAll('#post-body, .comment .prose')].map(body => ({
          active: body.querySelectorAll('script, iframe, object, embed, svg, style, form').length,
          handlers: [...body.querySelectorAll('*')].filter(e => [...e.attributes].some(a => /^on/i.test(a.name)
            || a.name === 'style')).length,
          badUrls: [...body.querySelectorAll('[href], [src]')].filter(e =>
            /^\\s*(javascript|data):/i.test(e.getAttribute('href') || e.getAttribute('src'))).length }));""")
    assert found == [{"active": 0, "handlers": 0, "badUrls": 0}] * 2
    assert browser.console_errors() == []  # a CSP refusal would be logged here


TITLES = "return [...document.querySelectorAll('.post-list h2')].map(h => h.textContent)"


def test_search_finds_ranked_posts_with_and_without_javascript(browser, services):
    browser.open(services["live"] + "/blog/")
    box = browser.driver.find_element("css selector", "form[role=search] input[name=q]")
    assert browser.js("return document.querySelector('label[for=search-q]').textContent") == "Search posts"
    box.send_keys("SQLite queue")
    box.submit()
    browser.wait(lambda: browser.js("return document.body.dataset.ready === 'true' && location.search"),
                 message="the results")
    assert browser.js("return location.search") == "?q=SQLite+queue"
    assert browser.js(TITLES)[0] == "Running a queue on SQLite"
    assert browser.text("#search-summary").startswith("1 post matches “SQLite queue”")
    assert browser.js("return document.querySelector('#search-q').value") == "SQLite queue"
    assert browser.console_errors() == []
    browser.javascript(False)
    browser.open(services["live"] + "/blog/?q=performance", ready=False)
    titles = [h.text for h in browser.driver.find_elements("css selector", ".post-list h2")]
    assert titles == ["Measuring before optimising", "Running a queue on SQLite"]  # both by label: newest first


def test_a_hostile_search_is_shown_as_text(browser, services):
    payload = '"><img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    browser.open(services["live"] + "/blog/?q=" + requests.utils.quote(payload))
    assert browser.js("return window.__xss === undefined && document.querySelectorAll('main img').length === 0")
    assert payload in browser.text("#search-summary") and browser.js(
        "return document.querySelector('#search-q').value") == payload
    browser.open(services["live"] + "/blog/?q=" + "x" * 101, ready=False)
    # through the error table, as every other bad request: its title, the search's own message
    assert browser.text("h1") == "Bad request" and "at most 100" in browser.text("main")


def test_a_pinned_post_comes_first_and_says_so(browser, services):
    browser.open(services["live"] + "/blog/")
    first = browser.driver.find_element("css selector", ".post-list > li")
    assert first.get_attribute("class") == "pinned" and "Pinned" in first.text
    assert browser.js(TITLES)[0] == f"Short note {PINNED}"
    assert browser.js("return document.querySelectorAll('.post-list .pin').length") == 1
    assert "pinned" not in browser.js("return [...document.querySelectorAll('.tag-filter a, .tag-links a')]"
                                      ".map(a => a.textContent.toLowerCase())")
    browser.open(services["live"] + "/blog/?page=2")
    assert f"Short note {PINNED}" not in browser.js(TITLES)


def test_code_is_highlighted_in_light_and_dark(browser, services):
    colour = "return getComputedStyle(document.querySelector('#post-body pre .hl-nb')).color"
    plain = "return getComputedStyle(document.querySelector('#post-body pre code')).color"
    seen = {}
    for scheme in ("light", "dark"):
        browser.media(scheme)
        browser.open(services["live"] + POST_14)
        assert browser.js(colour) != browser.js(plain), scheme
        seen[scheme] = browser.js(colour)
    assert seen["light"] != seen["dark"]
    browser.media("light")


def test_unknown_posts_say_so(browser, services):
    for path in ("/blog/999", "/blog/abc", "/blog/post.html?n=999", "/blog/999/some-slug"):
        browser.open(services["live"] + path, ready=False)
        assert browser.text("h1") == "Post not found", path


# --- quality bar ------------------------------------------------------------------------------------

PAGES = ("/", "/de/", "/blog/", "/blog/?tag=performance", "/blog/14/measuring-before-optimising",
         "/blog/12/running-a-queue-on-sqlite", "/blog/?q=sqlite+queue")


def test_post_headings_sit_under_the_page_title(browser, services):
    browser.open(services["live"] + POST_14)
    headings = browser.js("return [...document.querySelectorAll('main h1, main h2, main h3, main h4')]"
                          ".map(h => h.tagName + ' ' + [...h.childNodes].filter(n => !n.classList?.contains('anchor'))"
                          ".map(n => n.textContent).join('').trim())")
    assert headings == ["H1 Measuring before optimising", "H2 Method", "H3 Code", "H2 1 comment"]
    assert browser.js("return document.querySelector('#post-body pre code').className") == "language-python"


def test_no_console_errors_on_any_page(browser, services):
    for path in PAGES:
        browser.open(services["live"] + path)
        assert browser.console_errors() == [], path
    browser.open(services["live"] + "/no/such/page", ready=False)
    assert browser.text("h1") == "Page not found"
    errors = browser.console_errors()
    assert len(errors) <= 1 and all("status of 404" in e and "/no/such/page" in e for e in errors)


def test_theme_follows_the_system_and_the_toggle_is_remembered(browser, services):
    background = "return getComputedStyle(document.body).backgroundColor"
    browser.media("dark")
    browser.open(services["live"] + "/")
    assert browser.js(background) == "rgb(16, 20, 24)"
    toggle = browser.driver.find_element("css selector", "#theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "true" and toggle.is_displayed()
    toggle.click()
    assert browser.js(background) == "rgb(255, 255, 255)" and toggle.get_attribute("aria-pressed") == "false"
    browser.open(services["live"] + "/blog/")
    assert browser.js(background) == "rgb(255, 255, 255)"  # remembered although the system is dark
    browser.media("light")
    from selenium.webdriver.common.keys import Keys

    browser.driver.find_element("css selector", "#theme-toggle").send_keys(Keys.SPACE)
    assert browser.js(background) == "rgb(16, 20, 24)"
    browser.open(services["live"] + "/")
    assert browser.js(background) == "rgb(16, 20, 24)"


CONTRAST = """
function lum(c) {
  const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m; }
function background(el) { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
  if (c.length < 4 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; }
const failures = [];
for (const el of document.querySelectorAll('body *')) {
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  if (!el.getClientRects().length || el.closest('[hidden], .visually-hidden, .hp')) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0) continue;
  const fg = lum(rgb(style.color).slice(0, 3)), bg = lum(background(el));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && +style.fontWeight >= 700);
  if (ratio < (large ? 3 : 4.5)) failures.push(el.tagName + '.' + el.className + ': ' + ratio.toFixed(2));
}
return failures;
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(browser, services, scheme):
    browser.media(scheme)
    for path in ("/", "/blog/", POST_14, POST_12, "/blog/?q=sqlite"):
        browser.open(services["live"] + path)
        browser.js("document.getElementById('cf-submit') && document.getElementById('cf-submit').focus()")
        assert browser.js(CONTRAST) == [], (scheme, path)


def test_screenshots_and_narrow_screens(browser, services):
    shots = {}
    for device, width, mobile in (("desktop", 1280, False), ("mobile", 375, True)):
        for scheme in ("light", "dark"):
            browser.viewport(width, 860, mobile)
            browser.media(scheme)
            for page, path in (("home", "/"), ("post", POST_14)):
                browser.open(services["live"] + path)
                shots[page, device, scheme] = browser.screenshot(f"{page}-{device}-{scheme}")
    assert all(os.path.getsize(path) > 10_000 for path in shots.values())
    for page, device, scheme in shots:  # the dark scheme really paints differently
        if scheme == "dark":
            with open(shots[page, device, "light"], "rb") as light, open(shots[page, device, "dark"], "rb") as dark:
                assert light.read() != dark.read(), (page, device)
    browser.viewport(320, 700, True)
    browser.media("light")
    for path in PAGES:
        browser.open(services["live"] + path)
        assert browser.js("return document.documentElement.scrollWidth") <= 320, path


def test_print_gives_one_or_two_pages_without_widgets(browser, services):
    browser.open(services["live"] + "/")
    assert browser.pdf_pages() in (1, 2)
    browser.cdp("Emulation.setEmulatedMedia", {"media": "print"})
    shown = browser.js("return ['.live', '.contact', '.site-header', '.site-footer'].map(s =>"
                       "getComputedStyle(document.querySelector(s)).display)")
    assert shown == ["none"] * 4
    link = browser.js("return getComputedStyle(document.querySelector('.entry .meta a'), '::after').content")
    assert link == '" (https://nordfrakt.example.com)"'


def test_reduced_motion_turns_animation_off(browser, services):
    animation = "return getComputedStyle(document.getElementById('github')).animationName"
    browser.open(services["live"] + "/")
    assert browser.js(animation) == "appear"
    browser.media("light", reduced_motion=True)
    browser.open(services["live"] + "/")
    assert browser.js(animation) == "none"


@pytest.mark.parametrize("path", ["/", POST_14])
def test_the_home_page_and_a_post_transfer_under_100_kb(browser, services, path):
    browser.open(services["live"] + path)
    sizes = browser.js("return performance.getEntriesByType('navigation').concat("
                       "performance.getEntriesByType('resource')).map(e => [e.name, e.decodedBodySize])")
    counted = [(name, size) for name, size in sizes if not name.endswith("/photo.svg")]
    assert any("/api/visitors" in name for name, _ in counted) and any(".js" in name for name, _ in counted)
    assert sum(size for _, size in counted) <= 100 * 1024, counted


# --- the owner's stats page ---------------------------------------------------------------------

STATS_TOKEN = "browser-stats-password"


@pytest.fixture(scope="module")
def stats_url(clean_env, tmp_path_factory, site_dir, resume_file):
    # as `make run`: no worker, the web process folds recorded views itself
    service = _service(tmp_path_factory, "stats", site_dir, resume_file, STATS_TOKEN=STATS_TOKEN,
                       STATS_LOGIN_RATE_LIMIT="5/hour", VISITOR_FOLD_SECONDS="0.2")
    yield service.url
    service.stop()


def _sign_in(browser, password: str) -> None:
    browser.js("document.getElementById('token').value = arguments[0]; "
               "document.querySelector('.stats-login').submit();", password)


def test_stats_page_shows_counted_views_and_refuses_a_wrong_password(browser, stats_url):
    browser.open(f"{stats_url}/?utm_source=newsletter&utm_medium=email&utm_campaign=launch")
    browser.open(f"{stats_url}/")
    browser.open(f"{stats_url}/stats", ready=False)
    assert browser.visible("#token") and not browser.visible("#table-pages")
    _sign_in(browser, "not the password")
    browser.wait(lambda: browser.visible(".stats-error"), message="the wrong-password message")
    assert browser.text(".stats-error") == "Wrong password." and not browser.visible("#table-pages")
    _sign_in(browser, STATS_TOKEN)
    browser.wait(lambda: browser.visible("#table-pages"), message="the stats page")

    def folded() -> bool:
        # views are folded into the stats in the background (every 0.2 s here): the page shows both within
        # a bounded time, not necessarily on the first load after the second view
        if browser.text("#total-views") == "2":
            return True
        browser.open(f"{stats_url}/stats", ready=False)
        return False
    browser.wait(folded, message="both counted views on the stats page")
    assert browser.text("#total-visitors") == "1"
    assert "/" in browser.text("#table-pages") and "launch" in browser.text("#table-campaigns")
    assert "newsletter" in browser.text("#table-sources") and "(direct)" in browser.text("#table-referrers")
    assert "Chrome" in browser.text("#table-browsers") and "desktop" in browser.text("#table-devices")
    assert browser.js("return document.querySelectorAll('.stats-chart rect.views').length") == 7
    # compared with the 7 days before: an arrow and a signed change, and the same in words for screen readers
    assert browser.text("#change-views [aria-hidden]") == "▲ +2 (new)"
    assert browser.js("return document.querySelector('#change-visitors .visually-hidden').textContent") == "up 1 from 0"
    assert "▲ +1 (new)" in browser.text("#table-sources")
    assert browser.console_errors(allow_failed_requests=True) == []  # no CSP violation on any page
    browser.viewport(1280, 900)
    shot = browser.screenshot("stats")
    os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
    shutil.copy(shot, os.path.join(ROOT, "docs", "stats.png"))
    # the comparison switched off and on again; a year is charted by week
    browser.js("document.getElementById('compare-toggle').click()")
    browser.wait(lambda: not browser.visible("#change-views"), message="the page without the comparison")
    assert "▲" not in browser.text("#table-pages") and browser.text("#total-views") == "2"
    browser.js("document.getElementById('compare-toggle').click()")
    browser.wait(lambda: browser.visible("#change-views"), message="the comparison again")
    browser.open(f"{stats_url}/stats?range=365d", ready=False)
    browser.wait(lambda: "visitors per week" in (browser.text("figcaption") or ""), message="the year by week")
    assert browser.js("return document.querySelectorAll('.stats-chart rect.views').length") == 53
    assert browser.text("#total-views") == "2"
    browser.open(f"{stats_url}/stats", ready=False)
    browser.wait(lambda: browser.visible("#table-campaigns"), message="the stats page again")
    # a filtered view follows the table's link
    browser.js("document.querySelector('#table-campaigns td a').click()")
    browser.wait(lambda: "only campaigns: launch" in (browser.text(".stats-period") or ""), message="the filter")
    assert browser.text("#total-visitors") == "1" and browser.text("#total-views") == "0"
    # the visitor site itself never got a cookie: only /stats carries the owner's session (HttpOnly), and
    # signing in marked this browser as the owner's, left out of the counts
    assert browser.js("return document.cookie") == "vitae_ignore=1"


def _views(url: str) -> int:
    """The site's total views now (an atomic counter: no fold needed)."""
    return api(f"{url}/api/visitors?path=/")[1]["total_views"]


def test_the_owner_leaves_their_browser_out_and_shares_a_read_only_link(browser, stats_url):
    browser.open(f"{stats_url}/stats", ready=False)
    _sign_in(browser, STATS_TOKEN)
    browser.wait(lambda: browser.visible("#table-pages"), message="the stats page")
    assert browser.text("#counting-switch") == "Count this browser again"  # signing in left it out
    before = _views(stats_url)
    browser.open(f"{stats_url}/")
    browser.wait(lambda: browser.visible("#visitor-counter"), message="the counts, read not counted")
    assert _views(stats_url) == before

    browser.open(f"{stats_url}/stats", ready=False)
    browser.js("document.getElementById('counting-switch').click()")
    browser.wait(lambda: browser.text("#counting-switch") == "Don't count this browser", message="the switch")
    browser.open(f"{stats_url}/")
    browser.wait(lambda: _views(stats_url) == before + 1, message="the view counted again")
    browser.open(f"{stats_url}/stats", ready=False)
    browser.js("document.getElementById('counting-switch').click()")
    browser.wait(lambda: browser.text("#counting-switch") == "Count this browser again", message="the switch")
    browser.open(f"{stats_url}/")
    assert _views(stats_url) == before + 1

    # a share link: made on the page, opened read-only, revoked
    browser.open(f"{stats_url}/stats", ready=False)
    browser.js("document.querySelector('.stats-share-new input').value = 'for the browser test';"
               "document.getElementById('create-share').click()")
    browser.wait(lambda: browser.visible("#new-share-link"), message="the new share link")
    link = browser.text("#new-share-link")
    path = link[link.index("/stats/share/"):]
    assert "for the browser test" in browser.text("#share-links")
    browser.open(f"{stats_url}{path}", ready=False)
    browser.wait(lambda: browser.visible("#table-pages"), message="the shared page")
    for owner_only in ("#counting-switch", "#share-links", "form[action='/stats/logout']"):
        assert not browser.visible(owner_only), owner_only
    browser.open(f"{stats_url}/stats", ready=False)
    browser.js("document.querySelector('#share-links tbody form button').click()")
    browser.wait(lambda: "No share links." in (browser.text("#share-links") or ""), message="the revoked link gone")
    assert requests.get(f"{stats_url}{path}", timeout=10).status_code == 404
    browser.open(f"{stats_url}{path}", ready=False)
    assert "unknown_link" in browser.text("body") and not browser.visible("#table-pages")
    assert browser.console_errors(allow_failed_requests=True) == []  # no CSP violation on any page


def test_events_reading_system_and_screen_from_a_real_page_reach_the_stats(browser, stats_url):
    browser.viewport(1280, 900)
    browser.open(f"{stats_url}/")
    # there is no internet here, and no download is wanted: the outbound link's navigation and the PDF's download
    # are cancelled, after the site's listener saw the clicks
    browser.js("window.addEventListener('click', (e) => { if (e.target.closest('a[href^=\"https://github\"], "
               ".download a')) e.preventDefault(); }, true);")
    browser.js("document.getElementById('theme-toggle').click();")  # data-vitae-event="theme-toggle"
    browser.js("document.querySelector('a[href^=\"https://github.com/\"]').click();")
    browser.js("document.querySelector('.download a').click();")  # the resume's PDF
    browser.js("window.scrollTo(0, document.documentElement.scrollHeight);")
    # leaving the page hides it: its one beacon (the two events, the visible time, the scroll depth) goes out
    browser.open(f"{stats_url}/stats", ready=False)
    if browser.visible("#token"):
        _sign_in(browser, STATS_TOKEN)
    browser.wait(lambda: browser.visible("#table-events"), message="the stats page")

    def folded() -> bool:
        if "theme-toggle" in (browser.text("#table-events") or ""):
            return True
        browser.open(f"{stats_url}/stats", ready=False)
        return False
    browser.wait(folded, message="the page's events on the stats page")
    events = browser.text("#table-events")
    assert "outbound:github.com" in events and "theme-toggle" in events and "download:resume.pdf" in events
    cells = browser.js("return [...document.querySelectorAll('#table-reading tbody tr')].map("
                       "(row) => [...row.cells].map((cell) => cell.textContent.trim()))")
    home = next(row for row in cells if row[0] == "/")
    # columns: page, readings, median time, share reaching 25, 50, 75, 100 %: this reading went to the bottom
    assert int(home[1]) >= 1 and home[2].endswith(" s") and home[6] != "0%", cells
    assert "Linux" in browser.text("#table-systems") and "laptop" in browser.text("#table-screens")
    # clicking a page: its own referrers, countries and events
    browser.js("document.querySelector('#table-reading td a').click()")
    browser.wait(lambda: browser.visible("#page-detail"), message="the page's breakdown")
    assert "outbound:github.com" in browser.text("#page-events") and "(direct)" in browser.text("#page-referrers")
    assert browser.console_errors(allow_failed_requests=True) == []
