"""Turnstile on the bundled site: the widget in the built and the rendered form, the Content-Security-Policy
that lets exactly Cloudflare's script and frames in (and stays the site's own without the keys), and the
form sent without JavaScript, refused clearly without a token and verified against a fake siteverify."""

from __future__ import annotations

import logging
import os
from html import unescape

import pytest

from service.core.config import ConfigError
from service.core.security import content_security_policy
from service.features import WIDGETS
from service.site.build import SiteOptions, build

from ..fakes import Reply
from ..helpers import ROOT
from .test_api import GOOD, IP, SITEVERIFY, stored

SITE_KEY = "0x4AAAAAAAtestsitekey"
SECRET = "0x4AAAAAAAtest-secret-value"
CLOUDFLARE = "https://challenges.cloudflare.com"
SCRIPT = '<script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>'
#: The site's policy as it has always been: without the keys it must not change by a byte.
STRICT = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
          "frame-ancestors 'none'")
WITH_TURNSTILE = ("default-src 'self'; script-src 'self' https://challenges.cloudflare.com; style-src 'self'; "
                  "img-src 'self' https: data:; connect-src 'self'; font-src 'self'; "
                  "frame-src https://challenges.cloudflare.com; object-src 'none'; base-uri 'self'; "
                  "form-action 'self'; frame-ancestors 'none'")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
EXAMPLE = os.path.join(ROOT, "site", "resume.json")


def keys(upstream=None) -> dict[str, str]:
    settings = {"TURNSTILE_SITE_KEY": SITE_KEY, "TURNSTILE_SECRET": SECRET}
    if upstream is not None:
        settings["TURNSTILE_VERIFY_URL"] = upstream.url + SITEVERIFY
    return settings


def send_form(client, data, **headers):
    """A browser's plain form post (no JavaScript): HTML accepted, the site's own origin."""
    headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", **headers}
    return client.post("/api/contact", data=data, headers=headers, environ_base={"REMOTE_ADDR": IP})


def policies(client) -> dict[str, str]:
    """The Content-Security-Policy of a page, an asset, a JSON answer and the no-JavaScript form page."""
    return {
        "page": client.get("/").headers["Content-Security-Policy"],
        "asset": client.get("/favicon.svg").headers["Content-Security-Policy"],
        "json": client.get("/api/health").headers["Content-Security-Policy"],
        "form page": send_form(client, {**GOOD, "email": "x"}).headers["Content-Security-Policy"],
    }


# -- the Content-Security-Policy ----------------------------------------------------------------------

def test_without_the_keys_the_policy_is_the_sites_own_byte_for_byte(make_app, tmp_path):
    app = make_app(SITE_DIR=str(tmp_path / "site"))
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    assert policies(app.test_client()) == {"page": STRICT, "asset": STRICT, "json": API_POLICY,
                                           "form page": STRICT}
    assert content_security_policy() == content_security_policy({}) == STRICT


def test_with_both_keys_the_policy_adds_cloudflare_for_scripts_and_frames_only(make_app, tmp_path):
    app = make_app(SITE_DIR=str(tmp_path / "site"), **keys())
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    found = policies(app.test_client())
    assert found == {"page": WITH_TURNSTILE, "asset": WITH_TURNSTILE, "json": API_POLICY,
                     "form page": WITH_TURNSTILE}
    # nothing else changed: the same directives, Cloudflare's origin in exactly two of them
    added = {d.split()[0]: d for d in WITH_TURNSTILE.split("; ")}
    before = {d.split()[0]: d for d in STRICT.split("; ")}
    assert added.keys() - before.keys() == {"frame-src"}
    assert {name for name, d in added.items() if d != before.get(name)} == {"script-src", "frame-src"}
    assert WITH_TURNSTILE.count(CLOUDFLARE) == 2 and "https:" not in added["script-src"].replace(CLOUDFLARE, "")


def test_a_widened_policy_takes_only_https_origins_in_script_and_frame_sources():
    for extra in ({"connect-src": (CLOUDFLARE,)}, {"style-src": (CLOUDFLARE,)}, {"script-src": ("'unsafe-inline'",)},
                  {"script-src": ("http://challenges.cloudflare.com",)}, {"frame-src": ("https:",)},
                  {"script-src": (CLOUDFLARE + "/turnstile/",)}, {"script-src": ("*",)}):
        with pytest.raises(ValueError):
            content_security_policy(extra)
    twice = content_security_policy({"script-src": (CLOUDFLARE, CLOUDFLARE)})
    assert twice.count(CLOUDFLARE) == 1 and "frame-src" not in twice


# -- the widget in the pages -------------------------------------------------------------------------

def test_the_build_carries_the_widget_only_with_the_site_key_and_never_the_secret(tmp_path):
    plain = build(EXAMPLE, str(tmp_path / "plain"), SiteOptions(site_url="https://me.example", widgets=WIDGETS))
    for name in plain.files:
        data = (tmp_path / "plain" / name).read_bytes()
        assert b"challenges.cloudflare.com" not in data and b"cf-turnstile\"" not in data, name

    out = tmp_path / "with"
    report = build(EXAMPLE, str(out), SiteOptions(site_url="https://me.example", widgets=WIDGETS,
                                                  turnstile_site_key=SITE_KEY))
    home = (out / "index.html").read_text()
    form = home[home.index('<form class="contact-form"'):home.index("</form>")]
    assert (f'<div class="cf-turnstile" id="cf-turnstile" data-sitekey="{SITE_KEY}" data-action="contact" '
            'data-size="flexible"></div>') in form  # inside the form: the token travels with it
    assert "needs JavaScript: without it the message cannot be sent" in form
    assert home.count(SCRIPT) == 1 and "<script>" not in home  # a file from Cloudflare, no inline script
    for name in report.files:
        assert SECRET.encode() not in (out / name).read_bytes()

    # no contact form, no widget and no Cloudflare script
    without = build(EXAMPLE, str(tmp_path / "none"), SiteOptions(site_url="https://me.example", widgets=("visitors",),
                                                                 turnstile_site_key=SITE_KEY))
    assert "challenges.cloudflare.com" not in (tmp_path / "none" / "index.html").read_text()
    assert "index.html" in without.files


def test_flask_site_build_takes_the_site_key_from_the_settings(make_app, tmp_path):
    app = make_app(SITE_DIR=str(tmp_path / "site"), TURNSTILE_SITE_KEY=SITE_KEY)
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    home = app.test_client().get("/").data.decode()
    assert f'data-sitekey="{SITE_KEY}"' in home and SCRIPT in home


@pytest.mark.parametrize("value", ['"><script>alert(1)</script>', "0x4AAA AAAA", "x" * 101, "0x4AAA;frame-src *"])
def test_a_site_key_that_is_not_one_stops_the_app(make_app, value):
    with pytest.raises(ConfigError, match="TURNSTILE_SITE_KEY"):
        make_app(TURNSTILE_SITE_KEY=value)


def test_one_key_without_the_other_is_warned_about(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="service.contact"):
        make_app(TURNSTILE_SITE_KEY=SITE_KEY)
        make_app(TURNSTILE_SECRET=SECRET)
        make_app(**keys())
        make_app()
    warnings = [r.getMessage() for r in caplog.records if r.name == "service.contact"]
    assert len(warnings) == 2
    assert warnings[0].startswith("TURNSTILE_SITE_KEY is set without TURNSTILE_SECRET")
    assert warnings[1].startswith("TURNSTILE_SECRET is set without TURNSTILE_SITE_KEY")
    assert all(SECRET not in w for w in warnings)


# -- the form sent without JavaScript ----------------------------------------------------------------

def test_a_form_post_without_a_token_is_refused_with_a_clear_page(make_app, upstream):
    app = make_app(**keys(upstream))
    response = send_form(app.test_client(), GOOD)
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = unescape(response.data.decode())
    assert ('role="status">This form needs Cloudflare\'s anti-spam check, which runs with JavaScript: allow '
            'JavaScript and challenges.cloudflare.com for this page, reload it and try again.</p>') in html
    assert 'value="Ada Lovelace"' in html  # what the visitor typed is kept
    assert f'data-sitekey="{SITE_KEY}"' in html and SCRIPT in html  # with JavaScript on, the widget runs now
    assert SECRET not in html
    assert response.headers["Content-Security-Policy"] == WITH_TURNSTILE
    assert upstream.count() == 0 and stored(app)["pending"] == []


def test_a_form_post_with_a_token_is_verified_and_accepted(make_app, upstream):
    app = make_app(**keys(upstream))
    upstream.script("POST", SITEVERIFY, Reply(200, json={"success": True, "error-codes": []}),
                    Reply(200, json={"success": False, "error-codes": ["timeout-or-duplicate"]}))
    client = app.test_client()
    accepted = send_form(client, {**GOOD, "cf-turnstile-response": "widget-token"})
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/contact/thanks.html"
    [check] = upstream.calls("POST", SITEVERIFY)
    assert check.form() == {"secret": [SECRET], "response": ["widget-token"], "remoteip": [IP]}
    [item] = stored(app)["pending"]
    assert item.payload["turnstile"] == "passed"

    # the same token again: Cloudflare says it was used; the form comes back saying so
    again = send_form(client, {**GOOD, "cf-turnstile-response": "widget-token"})
    assert again.status_code == 400 and "The anti-spam check failed; reload the page and try again." in \
        again.data.decode()
    assert len(stored(app)["pending"]) == 1


def test_without_the_keys_the_form_needs_no_token_and_shows_no_widget(make_app, upstream, tmp_path):
    app = make_app(SITE_DIR=str(tmp_path / "site"))
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    client = app.test_client()
    assert "cf-turnstile" not in client.get("/").data.decode()
    refused = send_form(client, {**GOOD, "email": "x"})
    assert refused.status_code == 400 and "cf-turnstile" not in refused.data.decode()
    assert send_form(client, GOOD).status_code == 303 and upstream.count() == 0
