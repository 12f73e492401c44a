"""Heading anchors and the table of contents of a post (service/blog/toc.py on the post page)."""

from __future__ import annotations

import re

import pytest

from service.blog import markdown, toc

from .test_pages import POST, serve_post
from .test_posts import make

BODY = "# Install\n\nText.\n\n## Configure\n\nMore.\n\n## Run\n\n### Install\n\nAgain.\n"


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


def ids(html: str) -> list[str]:
    return re.findall(r'<h[1-6] id="([^"]+)"', html)


def test_headings_get_ids_from_their_own_text_and_self_links():
    html, headings = toc.anchor(markdown.render(BODY))
    assert ids(html) == ["h-install", "h-configure", "h-run", "h-install--2"]
    assert [(h.level, h.text) for h in headings] == [(1, "Install"), (2, "Configure"), (2, "Run"), (3, "Install")]
    assert '<h2 id="h-configure">Configure <a class="anchor" href="#h-configure">' in html


def test_anchors_stay_when_other_headings_change():
    before = dict(zip("abcd", ids(toc.anchor(markdown.render("## Intro\n\n## Intro\n\n## Intro 2\n\n## Results"))[0]),
                      strict=True))
    # another heading renamed, one removed, one added before them: the others keep their anchors
    after = ids(toc.anchor(markdown.render("## New first\n\n## Intro\n\n## Intro 2\n\n## Findings"))[0])
    assert before["a"] == "h-intro" and before["c"] == "h-intro-2" and before["b"] == "h-intro--2"
    assert after == ["h-new-first", "h-intro", "h-intro-2", "h-findings"]


def test_ids_are_safe_and_never_a_page_id():
    hostile = ('## main\n\n## comments\n\n## "><script>alert(1)</script>\n\n## <img src=x onerror=alert(1)>\n\n'
               '## Ünïcödé & 日本語\n\n## ' + "long " * 40 + "\n\n<h2 id=\"main\">raw</h2>")
    html, headings = toc.anchor(markdown.render(hostile))
    found = ids(html)
    assert found[:2] == ["h-main", "h-comments"] and "h-ünïcödé-日本語" in found
    assert all(re.fullmatch(r"h-[\w-]{1,64}", i) and len(i) <= 66 for i in found), found
    assert len(found) == len(set(found)) == len(headings)
    assert 'id="main"' not in html and "<script" not in html and "onerror" not in html


def test_a_post_with_three_headings_has_a_table_of_contents(sqlite_app, upstream):
    serve_post(upstream, body=BODY)
    html = sqlite_app.test_client().get(POST).data.decode()
    nav = re.search(r'<nav class="toc".*?</nav>', html, re.S).group(0)
    assert re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav) == [
        ("h-install", "Install"), ("h-configure", "Configure"), ("h-run", "Run"), ("h-install--2", "Install")]
    # the body's headings sit under the page's h1 and carry the anchors the contents link to
    assert '<h2 id="h-install">Install' in html and '<h3 id="h-configure">' in html
    assert len(re.findall(r'\bid="([^"]+)"', html)) == len(set(re.findall(r'\bid="([^"]+)"', html)))


def test_a_post_with_fewer_headings_has_none(sqlite_app, upstream):
    serve_post(upstream, body="# One\n\n## Two\n\nText.")
    html = sqlite_app.test_client().get(POST).data.decode()
    assert 'class="toc"' not in html and '<h2 id="h-one">One' in html
