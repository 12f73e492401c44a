"""The blog on GitHub issues (/api/blog, /api/blog/<n>, feed.xml) against a fake GitHub on loopback."""

from __future__ import annotations

import html.parser
import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from service.blog import comments, feeds, markdown, posts

from ..fakes import Reply
from ..storagecalls import StorageCalls

ISSUES = "/repos/octo/blog/issues"
TTL = 300
SITE = "https://octo.example"
ATOM = "{http://www.w3.org/2005/Atom}"


def make(app_factory, backend, upstream, **extra):
    settings = dict(GITHUB_API_URL=upstream.url, BLOG_REPO="octo/blog", GITHUB_TOKEN="github_pat_blog_token",
                    BLOG_CACHE_TTL=str(TTL), UPSTREAM_TIMEOUT="5", SITE_URL=SITE, VISITOR_RATE_LIMIT="off")
    return app_factory(backend, **{**settings, **extra})


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, upstream):
    return make(make_app, request.param, upstream)


def issue(number, title=None, body="Some words here.", labels=("published",), user="octo", state="open", **extra):
    return {"number": number, "title": title or f"Post {number}", "body": body, "state": state,
            "user": {"login": user}, "labels": [{"name": name} for name in labels],
            "created_at": f"2027-01-{number % 28 + 1:02d}T10:00:00Z", "updated_at": f"2027-01-{number % 28 + 1:02d}"
            "T12:00:00Z", "html_url": f"https://github.com/octo/blog/issues/{number}", **extra}


def pull(number):
    return issue(number, pull_request={"url": f"https://api.github.com/repos/octo/blog/pulls/{number}"})


def serve(upstream, issues, *, single=None):
    """Script the issue list (and each issue by number) from ``issues``."""
    upstream.script("GET", ISSUES, Reply(200, json=issues))
    for item in single if single is not None else issues:
        upstream.script("GET", f"{ISSUES}/{item['number']}", Reply(200, json=item))


def test_the_list_shows_only_published_posts_by_the_author(app, upstream):
    serve(upstream, [
        issue(5, "Hello, Wörld!", body="word " * 450, labels=("published", "python", "Notes")),
        issue(4, "By someone else", user="mallory"),
        pull(3),
        issue(2, "Closed", state="closed"),
        issue(1, "Unlabelled", labels=("draft",)),
    ])
    response = app.test_client().get("/api/blog")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["page"], body["per_page"], body["total"], body["stale"]) == (1, 10, 1, False)
    assert body["posts"] == [{
        "number": 5, "title": "Hello, Wörld!", "slug": "hello-world", "created_at": "2027-01-06T10:00:00Z",
        "updated_at": "2027-01-06T12:00:00Z", "tags": ["python", "Notes"], "reading_minutes": 3,
        "excerpt": ("word " * 40).strip() + "…", "comments": 0, "pinned": False, "views": 0,
    }]
    query = upstream.calls("GET", ISSUES)[0].query
    assert (query["state"], query["labels"], query["creator"], query["per_page"]) == (
        ["open"], ["published"], ["octo"], ["100"])
    assert response.headers["Cache-Control"] == f"public, max-age={TTL}"


def test_views_come_from_the_visitor_counter(app, upstream):
    serve(upstream, [issue(2), issue(1)])
    client = app.test_client()
    for path, times in (("/blog/2", 3), ("/blog/1", 1), ("/blog/1/", 1)):
        for _ in range(times):
            response = client.post("/api/visitors", json={"path": path}, headers={"User-Agent": "Mozilla/5.0"})
            assert response.status_code == 200
    assert [(p["number"], p["views"]) for p in client.get("/api/blog").get_json()["posts"]] == [(2, 3), (1, 2)]
    assert client.get("/api/blog/2").get_json()["views"] == 3


def test_more_posts_than_one_upstream_page(app, upstream):
    pages = {1: [issue(n) for n in range(250, 150, -1)], 2: [issue(n) for n in range(150, 50, -1)],
             3: [issue(n) for n in range(50, 0, -1)]}

    def answer(request):
        number = int(request.query["page"][0])
        link = f'<{upstream.url}{ISSUES}?page={number + 1}>; rel="next"' if number < 3 else ""
        return Reply(200, json=pages[number], headers={"Link": link} if link else {})
    upstream.script("GET", ISSUES, answer)
    client = app.test_client()
    body = client.get("/api/blog?per_page=50&page=5").get_json()
    assert body["total"] == 250
    assert [p["number"] for p in body["posts"]] == list(range(50, 0, -1))
    assert upstream.count("GET", ISSUES) == 3
    assert client.get("/api/blog?page=6&per_page=50").get_json()["posts"] == []


def test_tags_and_paging(app, upstream):
    serve(upstream, [issue(n, labels=("published", "python" if n % 2 else "life")) for n in range(9, 0, -1)])
    client = app.test_client()
    body = client.get("/api/blog?tag=Python&per_page=2&page=2").get_json()
    assert (body["total"], [p["number"] for p in body["posts"]]) == (5, [5, 3])
    for bad in ("per_page=0", "per_page=51", "page=0", "page=x", "per_page=-3"):
        response = client.get(f"/api/blog?{bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"] in ("invalid_page", "invalid_per_page")


def test_a_post_is_rendered_github_flavoured(app, upstream):
    source = ("Intro with https://example.org/page link.\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
              "```python\nprint('hi')\n```\n\n- [x] done\n- [ ] todo\n\n~~old~~ **bold**\n")
    serve(upstream, [issue(7, "Rendered", body=source, labels=("published", "howto"))])
    response = app.test_client().get("/api/blog/7")
    assert response.status_code == 200
    post = response.get_json()
    assert {k: post[k] for k in ("number", "title", "slug", "tags", "views", "stale")} == {
        "number": 7, "title": "Rendered", "slug": "rendered", "tags": ["howto"], "views": 0, "stale": False}
    assert {"created_at", "updated_at", "reading_minutes", "excerpt", "html"} <= set(post)
    html = post["html"]
    assert '<a href="https://example.org/page" rel="noopener noreferrer nofollow">' in html
    assert "<table>" in html and '<th style="text-align:right">b</th>' in html
    assert '<pre><code class="language-python"><span class="hl-nb">print</span>' in html
    assert 'class="task-list-item"' in html and 'type="checkbox"' in html and 'disabled' in html
    assert "<s>old</s>" in html and "<strong>bold</strong>" in html
    assert upstream.count("GET", f"{ISSUES}/7") == 1


def test_unknown_numbers_non_posts_and_pull_requests_are_404(app, upstream):
    serve(upstream, [issue(5), issue(4, user="mallory"), pull(3)])
    client = app.test_client()
    for number in (4, 3, 99, 0):
        response = client.get(f"/api/blog/{number}")
        assert response.status_code == 404, number
        assert response.get_json()["error"] == "not_found"
    assert client.get("/api/blog/abc").status_code == 404
    assert upstream.count("GET", f"{ISSUES}/4") == upstream.count("GET", f"{ISSUES}/3") == 0  # never asked


def test_closing_an_issue_unpublishes_the_post(app, upstream, clock):
    serve(upstream, [issue(5)], single=[])
    upstream.script("GET", f"{ISSUES}/5", Reply(200, json=issue(5)), Reply(200, json=issue(5, state="closed")))
    client = app.test_client()
    assert client.get("/api/blog/5").status_code == 200
    upstream.script("GET", ISSUES, Reply(200, json=[]))
    clock.advance(TTL)
    assert client.get("/api/blog").get_json()["total"] == 0
    assert client.get("/api/blog/5").status_code == 404


def test_a_post_closed_before_the_list_notices_is_404(app, upstream):
    serve(upstream, [issue(5)], single=[])
    upstream.script("GET", f"{ISSUES}/5", Reply(200, json=issue(5, state="closed")))
    assert app.test_client().get("/api/blog/5").status_code == 404


def test_a_deleted_issue_is_404(app, upstream):
    serve(upstream, [issue(5)], single=[])
    upstream.script("GET", f"{ISSUES}/5", Reply(410, json={"message": "This issue was deleted"}))
    response = app.test_client().get("/api/blog/5")
    assert response.status_code == 404
    assert "deleted" not in response.get_data(as_text=True)


def test_the_author_defaults_to_the_owner_and_can_be_set(make_app, upstream):
    serve(upstream, [issue(2, user="octo"), issue(1, user="Co-Writer")])
    assert [p["number"] for p in make(make_app, "sqlite", upstream).test_client().get("/api/blog")
            .get_json()["posts"]] == [2]
    app = make(make_app, "sqlite", upstream, BLOG_AUTHOR="co-writer", BLOG_LABEL="Blog")
    upstream.script("GET", ISSUES, Reply(200, json=[issue(1, user="Co-Writer", labels=("blog", "x"))]))
    body = app.test_client().get("/api/blog").get_json()
    assert [(p["number"], p["tags"]) for p in body["posts"]] == [(1, ["x"])]
    assert upstream.calls("GET", ISSUES)[-1].query["labels"] == ["Blog"]


def test_a_transferred_issue_does_not_shift_a_reused_page(app, upstream, clock):
    """A post moved in from another repository has a new (high) number but its old date: GitHub lists it
    by date, on a later page; reusing a 304 page must still give every post exactly once."""
    transferred = {**issue(500, "Moved here"), "created_at": "2026-06-01T10:00:00Z"}
    pages = {1: [issue(n) for n in range(20, 10, -1)], 2: [transferred, *[issue(n) for n in range(10, 0, -1)]]}

    def answer(request):
        page = int(request.query["page"][0])
        if request.headers.get("if-none-match") == f'"p{page}"' and page == 1:
            return Reply(304)
        link = {"Link": f'<{upstream.url}{ISSUES}?page=2>; rel="next"'} if page == 1 else {}
        return Reply(200, json=pages[page], headers={"ETag": f'"p{page}"', **link})
    upstream.script("GET", ISSUES, answer)
    client = app.test_client()
    before = [p["number"] for p in client.get("/api/blog?per_page=50").get_json()["posts"]]
    clock.advance(TTL)
    after = [p["number"] for p in client.get("/api/blog?per_page=50").get_json()["posts"]]
    assert sorted(after) == sorted(before) == sorted([500, *range(1, 21)])
    assert after == before and after.index(500) == 10  # by date: after the newer posts of page 1


def test_cached_blog_answers_cost_a_bounded_few_storage_calls(app, upstream):
    serve(upstream, [issue(n, labels=("published", "notes")) for n in range(120, 0, -1)])
    client = app.test_client()
    for url in ("/api/blog", "/api/blog/7", "/api/blog/feed.xml"):  # fill the caches
        client.get(url)
    # the feed carries the full text of its newest posts: the list plus one cached entry per post
    feed = 1 + posts.FEED_ENTRIES
    for url, bound in (("/api/blog?per_page=50", (2, 51)), ("/api/blog?per_page=50&page=3&tag=notes&x=1", (2, 51)),
                       ("/api/blog?page=10000", (1, 1)), ("/api/blog/7", (3, 3)), ("/api/blog/feed.xml", (feed, feed)),
                       ("/blog/feed.json", (feed, feed))):
        with StorageCalls(app) as cost:
            assert client.get(url).status_code == 200, url
        assert cost.calls <= bound[0] and cost.items <= bound[1], (url, cost.calls, cost.items)


def test_list_pages_are_conditional_and_a_304_page_is_reused(app, upstream, clock):
    first = [issue(n) for n in range(200, 100, -1)]
    second = [issue(n) for n in range(100, 90, -1)]
    state = {"round": 0}

    def answer(request):
        page = int(request.query["page"][0])
        if state["round"] == 0:
            return Reply(200, json=first if page == 1 else second, headers={
                "ETag": f'"p{page}"', **({"Link": f'<{upstream.url}{ISSUES}?page=2>; rel="next"'} if page == 1
                                         else {})})
        if page == 1:
            assert request.headers["if-none-match"] == '"p1"'
            return Reply(304)
        assert request.headers["if-none-match"] == '"p2"'
        return Reply(200, json=[issue(100, "Edited"), *second[1:]], headers={"ETag": '"p2b"'})
    upstream.script("GET", ISSUES, answer)
    client = app.test_client()
    assert client.get("/api/blog?per_page=50").get_json()["total"] == 110
    state["round"] = 1
    clock.advance(TTL)
    body = client.get("/api/blog?per_page=50&page=3").get_json()
    assert (body["total"], body["stale"]) == (110, False)
    assert [p["title"] for p in body["posts"]][:2] == ["Edited", "Post 99"]
    assert client.get("/api/blog?per_page=50").get_json()["posts"][0]["number"] == 200
    assert upstream.count("GET", ISSUES) == 4


def test_a_post_is_revalidated_with_its_etag(app, upstream, clock):
    serve(upstream, [issue(5)], single=[])
    upstream.script("GET", f"{ISSUES}/5", Reply(200, json=issue(5, body="# Title"), headers={"ETag": '"i5"'}),
                    Reply(304))
    client = app.test_client()
    first = client.get("/api/blog/5").get_json()
    clock.advance(TTL)
    second = client.get("/api/blog/5").get_json()
    assert second["html"] == first["html"] == "<h1>Title</h1>\n"
    assert second["stale"] is False
    assert upstream.calls("GET", f"{ISSUES}/5")[1].headers["if-none-match"] == '"i5"'


def test_nothing_cached_and_github_down(app, upstream):
    upstream.script("GET", ISSUES, Reply(500, body="Internal detail"))
    client = app.test_client()
    for path in ("/api/blog", "/api/blog/5", "/api/blog/feed.xml"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.get_json()["error"] == "upstream_unavailable"
        assert b"Internal detail" not in response.data


def test_missing_repository_answers_not_configured(make_app, upstream):
    client = make_app("sqlite", GITHUB_API_URL=upstream.url).test_client()
    for path in ("/api/blog", "/api/blog/1", "/api/blog/feed.xml"):
        response = client.get(path)
        assert response.status_code == 503 and response.get_json()["error"] == "not_configured", path
    assert upstream.count() == 0


def test_the_atom_feed(app, upstream):
    serve(upstream, [issue(n, title=f"Post {n} & <friends>\x07", body=f"Body of {n}.",
                           labels=("published", "tag-a")) for n in range(25, 0, -1)])
    response = app.test_client().get("/api/blog/feed.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    assert response.headers["Cache-Control"] == f"public, max-age={TTL}"
    root = ET.fromstring(response.data)  # noqa: S314 - the service's own feed
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}").text
    assert root.find(f"{ATOM}author/{ATOM}name").text == "octo"
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == f"{SITE}/api/blog/feed.xml"
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 20
    first = entries[0]
    assert first.find(f"{ATOM}title").text == "Post 25 & <friends>"
    assert first.find(f"{ATOM}id").text == f"{SITE}/blog/25"
    assert first.find(f"{ATOM}link").get("href") == f"{SITE}/blog/25/post-25-friends"  # the canonical page
    assert first.find(f"{ATOM}id").text == f"{SITE}/blog/25"
    assert first.find(f"{ATOM}summary").text == "Body of 25."
    content = first.find(f"{ATOM}content")
    assert content.get("type") == "html" and content.text == "<p>Body of 25.</p>\n"  # the full sanitised post
    assert first.find(f"{ATOM}category").get("term") == "tag-a"
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    assert all(stamp.fullmatch(e.find(f"{ATOM}updated").text) for e in entries)
    assert stamp.fullmatch(root.find(f"{ATOM}updated").text)
    ids = [e.find(f"{ATOM}id").text for e in entries]
    assert len(set(ids)) == len(ids)


def test_odd_dates_and_lone_surrogates_keep_the_feed_valid(app, upstream):
    serve(upstream, [issue(3, title="Lone \ud800 surrogate", updated_at=1_800_000_000),
                     issue(2, updated_at="2027-01-03T12:00:00Z", created_at=["2027"]),
                     issue(1, updated_at="yesterday", created_at=None)])
    client = app.test_client()
    response = client.get("/api/blog/feed.xml")
    assert response.status_code == 200
    root = ET.fromstring(response.data)  # noqa: S314 - the service's own feed; raises if not well-formed
    assert root.find(f"{ATOM}updated").text == "2027-01-03T12:00:00Z"
    entries = root.findall(f"{ATOM}entry")
    assert entries[0].find(f"{ATOM}title").text == "Lone \ufffd surrogate"  # as it enters from GitHub
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    assert all(stamp.fullmatch(e.find(f"{ATOM}{name}").text) for e in entries for name in ("updated", "published"))
    listed = client.get("/api/blog").get_json()["posts"]
    assert [(p["created_at"], p["updated_at"]) for p in listed] == [
        ("2027-01-04T10:00:00Z", None), (None, "2027-01-03T12:00:00Z"), (None, None)]


def test_an_empty_feed_is_still_valid(app, upstream):
    serve(upstream, [])
    root = ET.fromstring(app.test_client().get("/api/blog/feed.xml").data)  # noqa: S314 - our own feed
    assert root.find(f"{ATOM}updated").text and root.findall(f"{ATOM}entry") == []


def test_the_blog_needs_only_the_deps_it_is_given(sqlite_app, upstream, clock):
    """Posts, views, comments and both feeds come from the app's `Deps` alone (storage, settings, clock, GitHub
    client): called with no app or request context, as a scheduled task would."""
    serve(upstream, [issue(2, body="*Two*", comments=1), issue(1)])
    upstream.script("GET", f"{ISSUES}/2/comments", Reply(200, json=[{"id": 9, "user": {"login": "ann"},
                                                                      "body": "**hi**"}]))
    response = sqlite_app.test_client().post("/api/visitors", json={"path": "/blog/2"},
                                             headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 200
    deps = sqlite_app.extensions["vitae.deps"]
    items, result = posts.posts(deps)
    assert [item["number"] for item in items] == [2, 1] and result.stale is False
    post, _ = posts.post(deps, 2)
    assert (post["views"], post["html"]) == (1, "<p><em>Two</em></p>\n")
    assert posts.page(deps, items, number=1, per_page=1, tag=None)["posts"][0]["views"] == 1
    found, _ = comments.comments(deps, post)
    assert [(c["author"], c["html"]) for c in found] == [("ann", "<p><strong>hi</strong></p>\n")]
    html = feeds.contents(deps, items)
    assert html == {2: "<p><em>Two</em></p>\n", 1: "<p>Some words here.</p>\n"}
    atom = ET.fromstring(posts.feed(deps, items, html))  # noqa: S314 - the service's own feed
    assert atom.find(f"{ATOM}entry/{ATOM}content").text == html[2]
    assert json.loads(feeds.json_feed(deps, items, html))["authors"] == [{"name": "octo"}]
    clock.advance(60)  # with no dated post, the feed is as new as the app's clock says
    assert ET.fromstring(posts.feed(deps, [])).find(f"{ATOM}updated").text == "2027-01-15T08:01:00Z"  # noqa: S314
    assert upstream.count("GET", f"{ISSUES}/2") == upstream.count("GET", f"{ISSUES}/2/comments") == 1


# -- sanitising: none of these survives --------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"javascript:alert(1)\">",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#09;script:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"https://ok.example\" onclick=\"alert(1)\" onmouseover=alert(2)>x</a>",
    "<a href=\"https://ok.example\" rel=\"opener\" target=\"_self\">x</a>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
    "<style>body{display:none}</style>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<math><mtext><img src=x onerror=alert(1)></mtext></math>",
    "<form action=\"https://evil.example\"><input name=q><button>go</button></form>",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "<base href=\"https://evil.example/\"><meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    "<input type=\"text\" autofocus onfocus=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    "```\"><script>alert(1)</script>\nx\n```",
    "<p id=\"x\" class=\"evil\" data-x=\"1\">x</p>",
    "<img src=\"http://ok.example/a.png\" srcset=\"javascript:alert(1) 1x\">",
    "<a href=\"//evil.example\">x</a><img src=\"//evil.example/a.png\">",
]

_SAFE_TAGS = markdown.TAGS


class _Audit(html.parser.HTMLParser):
    """Collects every problem a rendered body has: a tag or attribute off the allowlist, a bad URL."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _SAFE_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in ("style", "srcset", "background", "formaction", "id") and \
                    not (name == "style" and tag in ("th", "td") and re.fullmatch(r"text-align:\w+", value)):
                self.problems.append(f"attribute {name} on {tag}")
            if name in ("href", "src"):
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in ("", "http", "https", "mailto"):
                    self.problems.append(f"{name} scheme {scheme}")
                if tag == "img" and scheme not in ("http", "https"):
                    self.problems.append("image not over http(s)")
            if tag == "a" and name == "rel" and value != "noopener noreferrer nofollow":
                self.problems.append(f"rel {value}")
            if name == "class" and not re.fullmatch(r"(language-[\w+#.-]+|task-list-item(-checkbox)?|"
                                                    r"contains-task-list)", value):
                self.problems.append(f"class {value}")
        if tag == "a" and "rel" not in dict(attrs):
            self.problems.append("link without rel")
        if tag == "input" and (dict(attrs).get("type") != "checkbox" or "disabled" not in dict(attrs)):
            self.problems.append("input other than a disabled checkbox")


def audit(rendered: str) -> list[str]:
    parser = _Audit()
    parser.feed(rendered)
    parser.close()
    # Rejected Markdown links stay as harmless text ("[x](javascript:...)"); raw markup must not.
    if re.search(r"<\s*(script|style|iframe|object|embed|svg|math|form|base|meta|link)\b", rendered, re.I):
        parser.problems.append("raw dangerous markup")
    return parser.problems


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


@pytest.mark.parametrize("payload", XSS, ids=range(len(XSS)))
def test_no_xss_payload_in_an_issue_body_survives(sqlite_app, upstream, payload):
    serve(upstream, [issue(9, body=f"Before.\n\n{payload}\n\nAfter.")])
    post = sqlite_app.test_client().get("/api/blog/9").get_json()
    assert audit(post["html"]) == [], post["html"]
    assert "After." in post["html"]  # the rest of the post is still there


@pytest.mark.parametrize("link", [
    '<a href="//evil.example/x">x</a>', '<a href="/\\evil.example/x">x</a>', '<a href=" //evil.example/x">x</a>',
    '<a href="/\t/evil.example/x">x</a>', '<a href="\\\\evil.example/x">x</a>', "[x](//evil.example/x)",
], ids=["two-slashes", "slash-backslash", "leading-space", "slash-tab-slash", "two-backslashes", "markdown"])
def test_links_that_only_look_local_become_off_site_links(sqlite_app, upstream, link):
    # a browser opens each of these at evil.example: they get what every off-site link gets, an absolute URL
    serve(upstream, [issue(9, body=f"{link} and [home](/blog/2) and [top](#top)")])
    rendered = sqlite_app.test_client().get("/api/blog/9").get_json()["html"]
    rel = 'rel="noopener noreferrer nofollow"'
    assert f'<a href="https://evil.example/x" {rel}>x</a>' in rendered, rendered
    assert f'<a href="/blog/2" {rel}>home</a>' in rendered and f'<a href="#top" {rel}>top</a>' in rendered
    assert audit(rendered) == []


def test_the_audit_itself_catches_unsafe_html():
    assert audit('<a href="javascript:alert(1)">x</a>')
    assert audit('<img src="x.png" onerror="alert(1)">')
    assert audit("<script>alert(1)</script>")
    assert audit('<a href="https://ok.example">x</a>')  # no rel
    assert audit('<input type="text">')
    assert audit('<p><a href="https://ok.example" rel="noopener noreferrer nofollow">ok</a></p>') == []
