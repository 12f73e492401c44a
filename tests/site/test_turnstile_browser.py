"""Cloudflare Turnstile on the built site, in real headless Chromium against the real service.

Two services on free loopback ports, each serving its own build of the example resume with its own SQLite
store: ``turnstile`` with both keys (siteverify is a fake on loopback) and ``plain`` without them. There is
no network here. One browser resolves challenges.cloudflare.com to nothing (``--host-resolver-rules``), so
Cloudflare's script never loads: the page carries the widget, the policy lets the browser ask Cloudflare
for it (the load fails on the name, not on the policy), a message without a token is refused clearly with
JavaScript and without, and one with a token is checked and accepted. Another browser reaches a stand-in
for challenges.cloudflare.com on loopback (HTTPS with a certificate made here, which that browser alone is
told to accept): its widget script loads, frames a page of its origin and puts a token into the form, all
under the site's policy, which also refuses the same script on the site without the keys.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import time

import pytest
import requests

from service import create_app
from service.site.build import SiteOptions, build

from ..browser import Chromium, LiveService, browser_missing
from ..contact.test_turnstile_site import STRICT, WITH_TURNSTILE
from ..fakes import FakeUpstream, Reply
from ..helpers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server,
              pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "")]

SITE_KEY = "0x4AAAAAAAbrowsertestkey"
SECRET = "0x4AAAAAAAbrowser-test-secret"
SITEVERIFY = "/turnstile/v0/siteverify"
SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js"
REFUSED = ("This form needs Cloudflare's anti-spam check, which runs with JavaScript: allow JavaScript and "
           "challenges.cloudflare.com for this page, reload it and try again.")
EXAMPLE = os.path.join(ROOT, "site", "resume.json")
OWNER_EMAIL = "mara@example.com"  # basics.email of the example resume


@pytest.fixture(scope="module")
def siteverify():
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


def _service(tmp_path_factory, name: str, site_key: str, **settings) -> LiveService:
    out = tmp_path_factory.mktemp(f"{name}-site") / "site"
    # the cards whose upstreams are not configured here would answer 503 and log it: left out
    build(EXAMPLE, str(out), SiteOptions(site_url="http://127.0.0.1:8000", widgets=("visitors", "contact"),
                                         turnstile_site_key=site_key))
    db = tmp_path_factory.mktemp(name) / "vitae.db"
    app = create_app({"STORAGE_URL": f"sqlite:///{db}", "SECRET_KEY": "browser-test-key", "SITE_DIR": str(out),
                      "CONTACT_RATE_LIMIT": "off", "OUTBOX_INLINE_SECONDS": "0", **settings})
    with app.app_context():
        app.extensions["vitae.storage"].init()
    return LiveService(app)


@pytest.fixture(scope="module")
def services(clean_env, tmp_path_factory, siteverify):
    started = {
        "turnstile": _service(tmp_path_factory, "turnstile", SITE_KEY, TURNSTILE_SITE_KEY=SITE_KEY,
                              TURNSTILE_SECRET=SECRET, TURNSTILE_VERIFY_URL=siteverify.url + SITEVERIFY),
        "plain": _service(tmp_path_factory, "plain", ""),
    }
    yield started
    for service in started.values():
        service.stop()


@pytest.fixture(scope="module")
def chromium():
    # Cloudflare's host resolves to nothing: its script fails at once, never reaching the network
    browser = Chromium(flags=("--host-resolver-rules=MAP challenges.cloudflare.com ~NOTFOUND",))
    yield browser
    browser.close()


@pytest.fixture
def browser(chromium, services):
    chromium.reset()
    yield chromium


#: The stand-in for Cloudflare's api.js: like the real one (implicit rendering) it fills each .cf-turnstile
#: container with a frame from its own origin and a hidden cf-turnstile-response field, and offers reset().
FAKE_WIDGET = """
let issued = 0;
function solve(box) {
  let field = box.querySelector('input[name="cf-turnstile-response"]');
  if (!field) {
    field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'cf-turnstile-response';
    box.append(field);
  }
  issued += 1;
  field.value = 'token-' + issued + '-for-' + box.dataset.sitekey;
}
for (const box of document.querySelectorAll('.cf-turnstile')) {
  const frame = document.createElement('iframe');
  frame.title = 'Widget containing a Cloudflare security challenge';
  frame.addEventListener('load', () => { box.dataset.framed = 'true'; });
  frame.src = 'https://challenges.cloudflare.com/challenge.html';
  box.append(frame);
  solve(box);
}
window.turnstile = { resets: 0, reset(box) { this.resets += 1; solve(box); } };
"""


def _self_signed(folder) -> ssl.SSLContext:
    """A server context with a certificate for challenges.cloudflare.com, signed by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "challenges.cloudflare.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("challenges.cloudflare.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture(scope="module")
def cloudflare(tmp_path_factory):
    """The stand-in for challenges.cloudflare.com: a fake upstream speaking HTTPS on loopback."""
    upstream = FakeUpstream()
    upstream.server.socket = _self_signed(tmp_path_factory.mktemp("tls")).wrap_socket(upstream.server.socket,
                                                                                        server_side=True)
    upstream.script("GET", "/turnstile/v0/api.js", Reply(200, body=FAKE_WIDGET,
                                                         headers={"Content-Type": "text/javascript"}))
    upstream.script("GET", "/challenge.html", Reply(200, body="<!doctype html><title>Challenge</title><p>Human?</p>",
                                                    headers={"Content-Type": "text/html; charset=utf-8"}))
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def chromium_with_cloudflare(cloudflare):
    port = cloudflare.server.server_address[1]
    browser = Chromium(flags=(f"--host-resolver-rules=MAP challenges.cloudflare.com 127.0.0.1:{port}",
                              "--ignore-certificate-errors"))
    yield browser
    browser.close()


def pending(service: LiveService) -> list:
    with service.app.app_context():
        return service.app.extensions["vitae.storage"].items("outbox", "pending")


def fill_and_send(browser, message: str) -> None:
    for name, value in (("name", "Ada Visitor"), ("email", "ada@example.com"), ("message", message)):
        field = browser.driver.find_element("css selector", f"#cf-{name}")
        field.clear()
        field.send_keys(value)
    browser.driver.find_element("css selector", "#cf-submit").click()


def console_until(browser, condition, message: str, timeout: float = 10.0) -> list[dict]:
    """Console entries read until one of them meets ``condition`` (the browser empties the log on each read)."""
    entries: list[dict] = []
    deadline = time.monotonic() + timeout
    while not any(condition(entry["message"]) for entry in entries):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}: {entries}")
        entries += browser.console()
        time.sleep(0.05)
    return entries


def test_with_the_keys_the_form_carries_the_widget_and_the_policy_lets_cloudflare_in(browser, services):
    url = services["turnstile"].url
    assert requests.get(url + "/", timeout=10).headers["Content-Security-Policy"] == WITH_TURNSTILE
    browser.open(url + "/")
    widget = browser.js("const w = document.querySelector('#contact-form .cf-turnstile');"
                        "return w && [w.id, w.dataset.sitekey, w.dataset.action]")
    assert widget == ["cf-turnstile", SITE_KEY, "contact"]
    assert browser.js("return [...document.scripts].filter(s => s.src === arguments[0]).map(s => [s.async, s.defer])",
                      SCRIPT) == [[True, True]]
    assert browser.js("return [...document.scripts].filter(s => !s.src).length") == 0  # no inline script
    assert browser.visible("#cf-turnstile-note")
    note = browser.text("#cf-turnstile-note")
    assert "needs JavaScript" in note and OWNER_EMAIL in note

    # the browser asked Cloudflare for the script (the policy let it) and failed on the name alone
    entries = console_until(browser, lambda m: "challenges.cloudflare.com" in m, "the script's failed load")
    failed = [e["message"] for e in entries if "challenges.cloudflare.com" in e["message"]]
    assert all("ERR_NAME_NOT_RESOLVED" in m for m in failed), failed
    assert not [e for e in entries if "Content Security Policy" in e["message"]], entries
    assert [e["message"] for e in entries if e["level"] == "SEVERE"] == failed  # nothing else went wrong
    browser.js("document.getElementById('contact').scrollIntoView()")
    browser.screenshot("contact-turnstile-unreachable", full_page=False)


def test_with_the_keys_a_message_without_a_token_is_refused_clearly(browser, services, siteverify):
    service = services["turnstile"]
    browser.open(service.url + "/")
    fill_and_send(browser, "Sent while the widget could not load.")
    browser.wait(lambda: browser.text("#cf-status").startswith("This form needs"), message="the refusal")
    assert browser.text("#cf-status") == f"{REFUSED} You can also write to {OWNER_EMAIL}."
    assert browser.js("return document.getElementById('cf-status').className") == "form-status error"
    assert browser.js("return document.getElementById('cf-submit').disabled") is False
    assert browser.js("return document.getElementById('cf-name').value") == "Ada Visitor"  # kept for a retry
    assert browser.console_errors(allow_failed_requests=True) == []

    # without JavaScript: the form posts by itself and comes back as a page saying why
    browser.javascript(False)
    browser.open(service.url + "/", ready=False)
    fill_and_send(browser, "Sent without JavaScript.")
    browser.wait(lambda: browser.driver.current_url.endswith("/api/contact"), message="the form page")
    assert browser.text("#cf-status") == REFUSED
    assert browser.js("return document.getElementById('cf-message').value") == "Sent without JavaScript."
    assert browser.text("#cf-turnstile-note").startswith("The anti-spam check (Cloudflare Turnstile) needs JavaScript")
    assert siteverify.count() == 0 and pending(service) == []


def test_with_the_keys_a_token_is_sent_checked_and_accepted(browser, services, siteverify):
    """The widget puts its token in the form as cf-turnstile-response: here the test does, as it would."""
    service = services["turnstile"]
    siteverify.script("POST", SITEVERIFY, Reply(200, json={"success": True, "error-codes": []}))
    browser.open(service.url + "/")
    browser.js("const t = document.createElement('input'); t.type = 'hidden'; t.name = 'cf-turnstile-response';"
               "t.value = 'token-from-the-widget'; document.getElementById('cf-turnstile').append(t);")
    fill_and_send(browser, "Checked by Turnstile.")
    browser.wait(lambda: browser.text("#cf-status") == "Thank you! Your message has been sent.", message="success")
    [check] = siteverify.calls("POST", SITEVERIFY)
    assert check.form()["response"] == ["token-from-the-widget"] and check.form()["secret"] == [SECRET]
    [item] = pending(service)
    assert item.payload["turnstile"] == "passed" and item.payload["message"] == "Checked by Turnstile."


def test_without_the_keys_no_widget_and_the_strict_policy(browser, services, siteverify):
    service = services["plain"]
    assert requests.get(service.url + "/", timeout=10).headers["Content-Security-Policy"] == STRICT
    browser.open(service.url + "/")
    assert browser.js("return document.querySelectorAll('.cf-turnstile, #cf-turnstile-note').length") == 0
    assert browser.js("return [...document.scripts].some(s => s.src.includes('cloudflare'))") is False
    calls = siteverify.count()
    fill_and_send(browser, "No check needed here.")
    browser.wait(lambda: browser.text("#cf-status") == "Thank you! Your message has been sent.", message="success")
    assert browser.console_errors() == [] and siteverify.count() == calls
    assert [item.payload["message"] for item in pending(service)] == ["No check needed here."]
    assert "turnstile" not in pending(service)[0].payload


def test_the_policy_lets_the_widget_load_frame_and_answer(chromium_with_cloudflare, services, cloudflare, siteverify):
    browser = chromium_with_cloudflare
    browser.reset()
    service = services["turnstile"]
    siteverify.script("POST", SITEVERIFY, Reply(200, json={"success": True, "error-codes": []}))
    verified = siteverify.count("POST", SITEVERIFY)
    browser.open(service.url + "/")
    browser.wait(lambda: browser.js("return document.getElementById('cf-turnstile').dataset.framed") == "true",
                 message="the widget's frame")
    assert [(c.method, c.path) for c in cloudflare.calls()] == [("GET", "/turnstile/v0/api.js"),
                                                                 ("GET", "/challenge.html")]
    assert browser.js("return document.querySelectorAll('#contact-form iframe').length") == 1

    fill_and_send(browser, "Checked by the widget.")
    browser.wait(lambda: browser.text("#cf-status") == "Thank you! Your message has been sent.", message="success")
    checks = siteverify.calls("POST", SITEVERIFY)[verified:]
    assert [c.form()["response"] for c in checks] == [[f"token-1-for-{SITE_KEY}"]]
    assert browser.js("return window.turnstile.resets") == 1  # a token counts once: the widget starts again
    assert browser.js("return document.querySelector('[name=\"cf-turnstile-response\"]').value") \
        == f"token-2-for-{SITE_KEY}"
    assert browser.console_errors() == []  # no policy violation, nothing failed to load

    # without the keys the strict policy refuses the very same script
    browser.open(services["plain"].url + "/")
    browser.js("const s = document.createElement('script'); s.src = arguments[0]; document.head.append(s);", SCRIPT)
    refused = console_until(browser, lambda m: "Content Security Policy" in m, "the refusal of the script")
    assert any(SCRIPT in e["message"] and "script-src 'self'" in e["message"] for e in refused), refused
    assert len(cloudflare.calls()) == 2 and browser.js("return window.turnstile === undefined")
