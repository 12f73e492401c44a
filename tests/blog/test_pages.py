"""The blog's server-rendered pages, feeds and sitemap (service/blog/pages.py) against a fake GitHub on loopback."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from service.core.security import SITE_HEADERS

from ..fakes import Reply
from .test_posts import ATOM, ISSUES, SITE, TTL, XSS, audit, issue, make, serve

POST = "/blog/7/hello-world"


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, upstream):
    return make(make_app, request.param, upstream)


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


def comment(number, body="A comment.", user="reader"):
    return {"id": number, "user": {"login": user, "html_url": f"https://github.com/{user}"}, "body": body,
            "created_at": "2027-01-10T09:00:00Z", "updated_at": "2027-01-11T09:00:00Z",
            "html_url": f"https://github.com/octo/blog/issues/7#issuecomment-{number}",
            "reactions": {"heart": 2, "+1": 0}}


def post_issue(**extra):
    fields = {"body": "# A heading\n\nThe **post** text. ![chart](https://img.example/c.png)", "comments": 1,
              "labels": ("published", "python"), "reactions": {"+1": 4, "rocket": 1, "total_count": 5}, **extra}
    return issue(7, "Hello, World!", **fields)


def serve_post(upstream, comments=None, **extra):
    serve(upstream, [post_issue(**extra), issue(3)])
    upstream.script("GET", f"{ISSUES}/7/comments", Reply(200, json=comments if comments is not None
                                                         else [comment(1)], headers={"ETag": '"c1"'}))


def meta(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in re.findall(r'<meta (?:name|property)="([^"]+)" content="([^"]*)"', html):
        found.setdefault(key, []).append(value)
    return found


def test_a_post_page_is_complete_html_with_preview_tags(app, upstream):
    serve_post(upstream)
    response = app.test_client().get(POST)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.data.decode()
    assert "<title>Hello, World! · Mara Lindqvist</title>" in html
    assert "The <strong>post</strong> text." in html
    assert '<h2 id="h-a-heading">A heading <a class="anchor"' in html  # headings under the h1
    tags = meta(html)
    assert tags["description"] == ["A heading The post text."]
    assert tags["og:type"] == ["article"] and tags["og:url"] == [f"{SITE}{POST}"]
    assert tags["og:image"][0].startswith(f"{SITE}/blog/7/card.png?v=") and tags["twitter:image"] == tags["og:image"]
    assert tags["twitter:card"] == ["summary_large_image"]
    assert tags["article:published_time"] == ["2027-01-08T10:00:00Z"]
    assert tags["article:modified_time"] == ["2027-01-08T12:00:00Z"] and tags["article:tag"] == ["python"]
    assert f'<link rel="canonical" href="{SITE}{POST}">' in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert '<link rel="alternate" type="application/feed+json"' in html
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', html).group(1))
    assert data["@type"] == "BlogPosting" and data["headline"] == "Hello, World!"
    assert data["datePublished"] == "2027-01-08T10:00:00Z" and data["url"] == f"{SITE}{POST}"
    assert 'aria-label="Reactions on GitHub"' in html and "👍</span> 4" in html and "🚀</span> 1" in html
    assert 'id="comment-1"' in html and "A comment." in html and 'href="https://github.com/reader"' in html
    assert "https://github.com/octo/blog/issues/7#new_comment_field" in html
    assert 'data-count="/blog/7"' in html  # the script counts the view under the post's number
    for name, value in SITE_HEADERS:  # the site's strict CSP, not the API's
        assert response.headers[name] == value
    assert "<script>" not in html and "<iframe" not in html  # no third-party script or frame


def test_the_structured_data_image_is_the_first_image_else_the_owners_photo(app, upstream):
    serve(upstream, [issue(4, body="No pictures."), issue(3, body="![chart](https://img.example/c.png)")])
    client = app.test_client()
    for path, image in (("/blog/4/post-4", f"{SITE}/photo.svg"), ("/blog/3/post-3", "https://img.example/c.png")):
        html = client.get(path).data.decode()
        data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', html).group(1))
        assert data["image"] == image
    assert meta(html)["twitter:card"] == ["summary_large_image"]
    assert meta(client.get("/blog/").data.decode())["twitter:card"] == ["summary"]  # other pages: the photo


def test_json_ld_cannot_close_its_script_element(sqlite_app, upstream):
    serve(upstream, [issue(5, title="</script><script>alert(1)</script>", body="x & <y>")], single=None)
    html = sqlite_app.test_client().get("/blog/5/script-script-alert-1-script").data.decode()
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and json.loads(block)["headline"] == "</script><script>alert(1)</script>"
    assert html.count("<script") == 2  # the module script and the JSON-LD block, nothing else


def listed(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/blog/(\d+)/', html)


def test_pinned_posts_come_first_on_the_index(app, upstream):
    serve(upstream, [issue(n, labels=("published", "Pinned", "notes") if n in (3, 20) else ("published", "notes"))
                     for n in range(25, 0, -1)])
    client = app.test_client()
    first = client.get("/blog/").data.decode()
    assert listed(first) == ["20", "3", "25", "24", "23", "22", "21", "19", "18", "17"]
    assert first.count('<li class="pinned">') == 2 and first.count('<strong class="pin">Pinned</strong>') == 2
    assert "?tag=Pinned" not in first and ">Pinned</a>" not in first  # the label pins; it is not offered as a tag
    pinned = client.get("/blog/20/post-20").data.decode()
    assert 'href="/blog/?tag=notes"' in pinned and "tag=Pinned" not in pinned
    assert meta(pinned)["article:tag"] == ["notes"]
    api = client.get("/api/blog?per_page=50").get_json()["posts"]
    assert {p["number"] for p in api if p["pinned"]} == {20, 3} and all(p["tags"] == ["notes"] for p in api)
    assert client.get("/api/blog/20").get_json()["pinned"] is True
    by_label = client.get("/blog/?tag=pinned")
    assert by_label.status_code == 200 and "post-20" not in by_label.data.decode()
    second = client.get("/blog/?page=2").data.decode()
    assert listed(second) == [str(n) for n in (16, 15, 14, 13, 12, 11, 10, 9, 8, 7)]
    assert listed(client.get("/blog/?tag=notes").data.decode())[:3] == ["20", "3", "25"]
    # the API (and the home page's latest posts) stays newest first
    assert [p["number"] for p in client.get("/api/blog?per_page=3").get_json()["posts"]] == [25, 24, 23]


def test_the_index_lists_posts_with_tags_and_pages(app, upstream):
    serve(upstream, [issue(n, labels=("published", "even" if n % 2 == 0 else "odd")) for n in range(25, 0, -1)])
    client = app.test_client()
    first = client.get("/blog/").data.decode()
    assert first.count('<li>\n      <h2><a href="/blog/') == 10 and 'href="/blog/25/post-25"' in first
    assert '<link rel="next" href="/blog/?page=2">' in first and "Page 1 of 3" in first
    third = client.get("/blog/?page=3").data.decode()
    assert third.count("<h2><a href=") == 5 and '<link rel="prev" href="/blog/?page=2">' in third
    tagged = client.get("/blog/?tag=EVEN").data.decode()
    assert tagged.count("<h2><a href=") == 10 and "post-25" not in tagged and "Posts tagged “EVEN”" in tagged
    assert client.get("/blog/?tag=nothing").status_code == 200


@pytest.mark.parametrize(("path", "status"), [
    ("/blog/abc", 404), ("/blog/0", 404), ("/blog/-1", 404), ("/blog/99999999999999999999999", 404),
    ("/blog/1234567", 404), ("/blog/1234567/slug", 404), ("/blog/post.html?n=abc", 404), ("/blog/post.html", 404),
    ("/blog/%C3%A9/x", 404), ("/blog/?page=0", 400), ("/blog/?page=abc", 400), ("/blog/?page=1e3", 400),
    ("/blog/?page=99999999999999999999", 400), ("/blog/?page=9", 404), ("/blog/?tag=%00", 400),
    ("/blog/?tag=" + "x" * 101, 400), ("/blog/?tag=<script>", 200),
])
def test_bad_addresses_answer_a_clean_html_page(sqlite_app, upstream, path, status):
    serve_post(upstream)
    response = sqlite_app.test_client().get(path)
    assert response.status_code == status, path
    assert response.mimetype == "text/html" and b"<script>" not in response.data
    if status == 404:
        assert re.search(r"<h1>(Post|Page) not found</h1>", response.data.decode()), path


@pytest.mark.parametrize("old", ["/blog/7", "/blog/7/", "/blog/post.html?n=7", "/blog/7/wrong-slug", "/blog/07/x"])
def test_old_and_wrong_addresses_redirect_to_the_canonical_one(sqlite_app, upstream, old):
    serve_post(upstream)
    response = sqlite_app.test_client().get(old)
    assert response.status_code == 301 and response.headers["Location"] == POST


def test_pages_revalidate_with_etags_and_cache_for_the_cdn(app, upstream, clock):
    serve_post(upstream)
    client = app.test_client()
    for path in (POST, "/blog/", "/blog/feed.xml", "/blog/feed.json", "/sitemap.xml"):
        first = client.get(path)
        assert first.status_code == 200, path
        assert first.headers["Cache-Control"] == (f"public, max-age=0, s-maxage={TTL}, "
                                                  f"stale-while-revalidate={TTL}, stale-if-error=86400"), path
        assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304, path
    page = client.get(POST)
    assert page.headers["Last-Modified"] == "Mon, 11 Jan 2027 09:00:00 GMT"  # the latest comment's edit
    assert client.get(POST, headers={"If-Modified-Since": page.headers["Last-Modified"]}).status_code == 304
    zipped = client.get(POST, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["ETag"].startswith("W/")
    clock.advance(100)
    assert client.get(POST).headers["Cache-Control"].startswith(f"public, max-age=0, s-maxage={TTL - 100},")


def test_an_edit_shows_within_the_ttl_and_a_304_costs_nothing(app, upstream, clock):
    serve_post(upstream)
    client = app.test_client()
    assert "The <strong>post</strong> text." in client.get(POST).data.decode()
    edited = post_issue(body="Edited text.")
    upstream.script("GET", ISSUES, Reply(200, json=[edited, issue(3)]))
    upstream.script("GET", f"{ISSUES}/7", Reply(200, json=edited))
    assert "Edited text." not in client.get(POST).data.decode()  # within the TTL: the cached page
    clock.advance(TTL)
    assert "Edited text." in client.get(POST).data.decode()
    # comments are revalidated with their ETag: a 304 reuses them
    upstream.script("GET", f"{ISSUES}/7/comments", lambda r: Reply(304) if r.headers.get("if-none-match") == '"c1"'
                    else Reply(500))
    clock.advance(TTL)
    assert "A comment." in client.get(POST).data.decode()
    assert upstream.calls("GET", f"{ISSUES}/7/comments")[-1].headers["if-none-match"] == '"c1"'


def test_a_closed_post_is_gone_from_page_sitemap_and_feeds(app, upstream, clock):
    serve_post(upstream)
    client = app.test_client()
    assert client.get(POST).status_code == 200 and POST in client.get("/sitemap.xml").data.decode()
    upstream.script("GET", ISSUES, Reply(200, json=[issue(3)]))
    upstream.script("GET", f"{ISSUES}/7", Reply(200, json=post_issue(state="closed")))
    clock.advance(TTL)
    assert client.get(POST).status_code == 404 and client.get("/blog/7").status_code == 404
    for path in ("/sitemap.xml", "/blog/feed.xml", "/blog/feed.json", "/blog/"):
        assert "/blog/7" not in client.get(path).data.decode(), path


def test_the_sitemap_lists_every_post_with_lastmod(app, upstream):
    serve(upstream, [issue(n) for n in (9, 8, 2)])
    tree = ET.fromstring(app.test_client().get("/sitemap.xml").data)  # noqa: S314 - our own sitemap
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    urls = {u.find("s:loc", ns).text: u.find("s:lastmod", ns) for u in tree.findall("s:url", ns)}
    assert set(urls) == {f"{SITE}/", f"{SITE}/de/", f"{SITE}/blog/", f"{SITE}/blog/9/post-9",
                         f"{SITE}/blog/8/post-8", f"{SITE}/blog/2/post-2"}  # the resume in each of its languages
    assert urls[f"{SITE}/blog/9/post-9"].text == "2027-01-10"


def test_the_feeds_carry_the_full_html(app, upstream):
    serve_post(upstream)
    client = app.test_client()
    atom = ET.fromstring(client.get("/blog/feed.xml").data)  # noqa: S314 - our own feed
    entry = atom.find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}link").get("href") == f"{SITE}{POST}"
    assert entry.find(f"{ATOM}content").get("type") == "html"
    assert "<strong>post</strong>" in entry.find(f"{ATOM}content").text
    assert entry.find(f"{ATOM}summary").text == "A heading The post text."
    assert atom.find(f"{ATOM}link[@rel='self']").get("href") == f"{SITE}/blog/feed.xml"
    response = client.get("/blog/feed.json")
    assert response.mimetype == "application/feed+json"
    feed = json.loads(response.data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1" and feed["feed_url"] == f"{SITE}/blog/feed.json"
    item = feed["items"][0]
    assert item["url"] == f"{SITE}{POST}" and item["id"] == f"{SITE}/blog/7" and item["tags"] == ["python"]
    assert "<strong>post</strong>" in item["content_html"] and item["summary"] == "A heading The post text."


THREAD = "{http://purl.org/syndication/thread/1.0}"


def test_comment_counts_show_on_the_list_and_in_the_feeds(app, upstream):
    serve(upstream, [post_issue(comments=12), issue(3, comments=1), issue(2, comments=0), issue(1, comments="x")])
    client = app.test_client()
    html = client.get("/blog/").data.decode()
    assert f'<a href="{POST}#comments">12 comments</a>' in html
    assert '<a href="/blog/3/post-3#comments">1 comment</a>' in html and html.count("#comments") == 2
    assert [p["comments"] for p in client.get("/api/blog").get_json()["posts"]] == [12, 1, 0, 0]
    atom = ET.fromstring(client.get("/blog/feed.xml").data)  # noqa: S314 - our own feed
    entries = atom.findall(f"{ATOM}entry")
    assert [e.find(f"{THREAD}total").text for e in entries] == ["12", "1", "0", "0"]
    replies = entries[0].find(f"{ATOM}link[@rel='replies']")
    assert replies.get("href") == f"{SITE}{POST}#comments" and replies.get(f"{THREAD}count") == "12"
    assert replies.get("type") == "text/html"
    items = client.get("/blog/feed.json").get_json()["items"]
    assert items[0]["_vitae"] == {"comment_count": 12, "comments_url": f"{SITE}{POST}#comments"}
    assert [i["_vitae"]["comment_count"] for i in items] == [12, 1, 0, 0]


def test_no_comment_counts_when_comments_are_off(make_app, upstream):
    app = make(make_app, "sqlite", upstream, BLOG_COMMENTS="false")
    serve(upstream, [post_issue(comments=12)])
    client = app.test_client()
    assert "#comments" not in client.get("/blog/").data.decode()
    assert b"thr:" not in client.get("/blog/feed.xml").data and b"purl.org" not in client.get("/blog/feed.xml").data
    assert "_vitae" not in client.get("/blog/feed.json").get_json()["items"][0]


def test_more_than_a_hundred_comments_are_followed(sqlite_app, upstream):
    serve(upstream, [post_issue()])
    link = f'<{upstream.url}{ISSUES}/7/comments?page=2>; rel="next"'
    upstream.script("GET", f"{ISSUES}/7/comments", lambda r: Reply(
        200, json=[comment(n) for n in range(1, 101)], headers={"Link": link}) if r.query["page"] == ["1"]
        else Reply(200, json=[comment(101, body="The last one.")]))
    html = sqlite_app.test_client().get(POST).data.decode()
    assert "101 comments" in html and "The last one." in html
    assert [c.query["page"] for c in upstream.calls("GET", f"{ISSUES}/7/comments")] == [["1"], ["2"]]


def test_comments_can_be_turned_off(make_app, upstream):
    serve_post(upstream)
    html = make(make_app, "sqlite", upstream, BLOG_COMMENTS="false").test_client().get(POST).data.decode()
    assert 'id="comments"' not in html and "A comment." not in html
    assert upstream.count("GET", f"{ISSUES}/7/comments") == 0


def test_a_post_without_comments_costs_no_comments_call(sqlite_app, upstream):
    serve(upstream, [issue(4, comments=0)])
    assert "No comments yet." in sqlite_app.test_client().get("/blog/4/post-4").data.decode()
    assert upstream.count("GET", f"{ISSUES}/4/comments") == 0


def test_github_down_with_nothing_cached_is_a_503_page(sqlite_app, upstream):
    upstream.script("GET", ISSUES, Reply(502))
    response = sqlite_app.test_client().get(POST)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert response.headers["Retry-After"] and response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("payload", XSS, ids=range(len(XSS)))
def test_no_xss_payload_in_a_comment_survives(sqlite_app, upstream, payload):
    serve_post(upstream, comments=[comment(1, body=f"Before.\n\n{payload}\n\nAfter.")])
    html = sqlite_app.test_client().get(POST).data.decode()
    rendered = re.search(r'<li class="comment" id="comment-1">.*?<div class="prose">(.*?)</div>\s*<ul', html,
                         re.S).group(1)
    assert audit(rendered) == [], rendered
    assert "After." in rendered


#: Half a UTF-16 surrogate pair: JSON may escape one ("\ud800"), and decoding makes it a lone surrogate.
LONE = "\ud800"


def test_lone_surrogates_and_bad_dates_from_github_never_break_a_page(app, upstream):
    """Every text GitHub sends enters as valid UTF-8 (a lone surrogate becomes U+FFFD) and a malformed
    comment date is no date: the index, the post, the feeds and the sitemap all answer 200."""
    odd = comment(1, body=f"A comment {LONE} here.", user=f"read{LONE}er")
    odd.update(created_at=f"2027-01-10{LONE}", updated_at="2027-01-11T09:00:00")  # no zone: not RFC 3339
    serve(upstream, [issue(7, f"Hello {LONE} World", body=f"The {LONE} text.", labels=("published", f"py{LONE}"),
                           comments=1)])
    upstream.script("GET", f"{ISSUES}/7/comments", Reply(200, json=[odd]))
    client = app.test_client()
    index = client.get("/blog/")
    assert index.status_code == 200 and "Hello \ufffd World" in index.data.decode()
    address = re.search(r'href="(/blog/7/[^"]+)"', index.data.decode()).group(1)
    page = client.get(address)
    assert page.status_code == 200
    html = page.data.decode()
    for text in ("Hello \ufffd World", "The \ufffd text.", "py\ufffd", "A comment \ufffd here.", "read\ufffder"):
        assert text in html, text
    assert "2027-01-11T09:00:00" not in html and "2027-01-10\ufffd" not in html  # the bad dates are dropped
    feed = client.get("/blog/feed.json")
    assert feed.status_code == 200
    item = json.loads(feed.data)["items"][0]
    assert item["title"] == "Hello \ufffd World" and item["tags"] == ["py\ufffd"] and "\ufffd" in item["content_html"]
    atom = client.get("/blog/feed.xml")
    assert atom.status_code == 200
    assert ET.fromstring(atom.data).find(f"{ATOM}entry/{ATOM}title").text == "Hello \ufffd World"  # noqa: S314
    sitemap = client.get("/sitemap.xml")
    assert sitemap.status_code == 200 and address in sitemap.data.decode()
    assert client.get("/api/blog").get_json()["posts"][0]["title"] == "Hello \ufffd World"


def test_an_image_address_with_an_ampersand_is_escaped_once(sqlite_app, upstream):
    image = "https://img.example/c.png?w=600&h=400"
    serve(upstream, [issue(4, body=f"Text. ![chart]({image})")])
    html = sqlite_app.test_client().get("/blog/4/post-4").data.decode()
    assert '<img src="https://img.example/c.png?w=600&amp;h=400"' in html  # the attribute's one escape
    assert "&amp;amp;" not in html
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "&amp;" not in block and json.loads(block)["image"] == image
