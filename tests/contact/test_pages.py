"""The contact form posted without JavaScript (service/contact/pages.py): 303 to a thank-you page, or the
form again with each field's message and the input kept; JSON clients see no change."""

from __future__ import annotations

import io

import pytest

from .test_api import GOOD, IP, stored

SITE = "https://mara.example"


@pytest.fixture
def app(make_app):
    return make_app(SITE_URL=SITE, OUTBOX_INLINE_SECONDS="0", ALLOWED_ORIGINS="https://other.example")


def send(client, data, headers=None, **kwargs):
    headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", **(headers or {})}
    return client.post("/api/contact", data=data, headers=headers, environ_base={"REMOTE_ADDR": IP}, **kwargs)


def test_an_accepted_form_post_gets_a_303_to_the_thank_you_page(app):
    response = send(app.test_client(), GOOD)
    assert response.status_code == 303 and response.headers["Location"] == "/contact/thanks.html"
    assert len(stored(app)["pending"]) == 1


def test_a_multipart_form_post_is_a_form_too(app):
    response = send(app.test_client(), {**GOOD, "attachment": (io.BytesIO(b"x"), "x.txt")},
                    content_type="multipart/form-data")
    assert response.status_code == 303 and len(stored(app)["pending"]) == 1


def test_a_refused_form_post_shows_the_form_again_with_messages_and_input(app):
    response = send(app.test_client(), {**GOOD, "email": "not-an-address", "message": "", "name": "<Ada & co>"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    html = response.data.decode()
    assert 'value="&lt;Ada &amp; co&gt;"' in html and 'value="not-an-address"' in html  # input kept, escaped
    assert '<input id="cf-email" name="email" value="not-an-address" aria-invalid="true"' in html
    assert 'id="cf-email-error">' in html and 'id="cf-message-error">' in html
    assert "Please correct the marked fields." in html
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]  # the page's stylesheet loads
    assert stored(app)["pending"] == []


def test_json_clients_see_no_change(app):
    client = app.test_client()
    accepted = send(client, GOOD, headers={"Accept": "application/json"})
    assert accepted.status_code == 202 and accepted.get_json()["status"] == "accepted"
    refused = send(client, {**GOOD, "email": "x"}, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.get_json()["fields"]["email"]
    assert refused.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_origin_guard_still_refuses_a_form_from_another_site(app):
    response = send(app.test_client(), GOOD, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and stored(app)["pending"] == []
    assert send(app.test_client(), GOOD, headers={"Origin": SITE}).status_code == 303


def test_the_thank_you_page_is_built_with_the_contact_widget(make_app, tmp_path):
    app = make_app(SITE_DIR=str(tmp_path / "out"))
    assert app.test_cli_runner().invoke(args=["site", "build"]).exit_code == 0
    page = app.test_client().get("/contact/thanks.html")
    assert page.status_code == 200 and b"Your message has been sent." in page.data
