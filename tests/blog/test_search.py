"""Searching the blog (service/blog/search.py): /blog/?q= and /api/blog?q=, from the cached list alone."""

from __future__ import annotations

import json
import re

import pytest

from service.blog import posts as blog
from service.blog import search
from service.core.deps import current

from ..fakes import Reply
from .test_posts import ISSUES, issue, make, serve

REDIS_BODY = "Redis keeps the queue. " + "We measured redis latency. " * 6


@pytest.fixture(params=["sqlite", "redis"])
def app(request, make_app, upstream):
    return make(make_app, request.param, upstream)


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


def blog_posts():
    return [
        issue(9, "Notes on gardening", body="Tomatoes and basil. Redis once, in passing, near the end."),
        issue(8, "A Redis-backed queue", body="How the queue works."),
        issue(7, "Measuring", body=REDIS_BODY),
        issue(6, "Queues", body="Nothing about it.", labels=("published", "redis")),
        issue(5, "Unrelated", body="Pie recipes."),
    ]


def found(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/blog/(\d+)/', html)


def test_results_are_ranked_title_then_label_then_body(app, upstream):
    serve(upstream, blog_posts())
    client = app.test_client()
    response = client.get("/blog/?q=REDIS")
    assert response.status_code == 200
    html = response.data.decode()
    assert found(html) == ["8", "7", "6", "9"]  # title 10, body 7 times, label 6, body once
    assert "4 posts match “REDIS”" in html and 'value="REDIS"' in html
    # indexable (Lighthouse's SEO audit fails a noindex page), with itself as canonical
    assert "noindex" not in html and "<title>Search: REDIS · Blog" in html
    assert '<link rel="canonical" href="https://octo.example/blog/?q=REDIS">' in html
    # more of the words matched beats a higher score on one word
    assert found(client.get("/blog/?q=redis+tomatoes").data.decode())[0] == "9"
    api = client.get("/api/blog?q=redis").get_json()
    assert [p["number"] for p in api["posts"]] == [8, 7, 6, 9] and api["total"] == 4
    assert all("terms" not in p for p in api["posts"])


def test_a_search_costs_no_call_beyond_the_cached_list(sqlite_app, upstream):
    serve(upstream, blog_posts())
    client = sqlite_app.test_client()
    client.get("/blog/")
    calls = len(upstream.calls())
    for query in ("redis", "queue", "pie", "nothing-here", "basil tomatoes"):
        assert client.get(f"/blog/?q={query}").status_code == 200
        assert client.get(f"/api/blog?q={query}").status_code == 200
    assert len(upstream.calls()) == calls == 1


def test_a_search_page_is_cached_like_the_others(sqlite_app, upstream):
    serve(upstream, blog_posts())
    client = sqlite_app.test_client()
    first = client.get("/blog/?q=redis", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and "s-maxage=" in first.headers["Cache-Control"]
    again = client.get("/blog/?q=redis", headers={"If-None-Match": first.headers["ETag"], "Accept-Encoding": "gzip"})
    assert again.status_code == 304
    other = client.get("/blog/?q=queue", headers={"Accept-Encoding": "gzip"})
    assert other.headers["ETag"] != first.headers["ETag"]


def test_no_match_says_so_and_paging_keeps_the_query(sqlite_app, upstream):
    serve(upstream, [issue(n, f"Redis part {n}") for n in range(15, 0, -1)])
    client = sqlite_app.test_client()
    html = client.get("/blog/?q=pie").data.decode()
    assert "No posts match “pie”." in html and found(html) == []
    first = client.get("/blog/?q=redis").data.decode()
    assert '<link rel="next" href="/blog/?q=redis&amp;page=2">' in first
    second = client.get("/blog/?q=redis&page=2").data.decode()
    assert len(found(second)) == 5 and '<link rel="prev" href="/blog/?q=redis">' in second
    assert client.get("/blog/?q=redis&page=3").status_code == 404


@pytest.mark.parametrize("query", ['"><script>alert(1)</script>', "<img src=x onerror=alert(1)>",
                                   "{{ 7*7 }}", "' OR 1=1 --", "%00", "\\u202e"])
def test_hostile_queries_are_escaped(sqlite_app, upstream, query):
    serve(upstream, blog_posts())
    response = sqlite_app.test_client().get("/blog/", query_string={"q": query})
    assert response.status_code == 200
    html = response.data.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "49" not in html
    assert query.replace('"', "&#34;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;") in html


def test_long_or_control_queries_are_refused(sqlite_app, upstream):
    serve(upstream, blog_posts())
    client = sqlite_app.test_client()
    assert client.get("/blog/", query_string={"q": "a" * search.MAX_QUERY}).status_code == 200
    for query in ("a" * (search.MAX_QUERY + 1), "x" * 100_000, "redis\x00", "line\nbreak"):
        page = client.get("/blog/", query_string={"q": query})
        assert page.status_code == 400 and page.mimetype == "text/html", query[:20]
        assert "A search is at most 100 printable characters." in page.data.decode()
        assert page.headers["Cache-Control"] == "no-store"
        api = client.get("/api/blog", query_string={"q": query})
        assert api.status_code == 400 and api.get_json()["error"] == "invalid_q", api.get_json()


def test_stop_words_and_duplicates_are_dropped_and_terms_bounded():
    assert search.parse("The Redis and the redis QUEUE") == ["redis", "queue"]
    assert search.parse("   ") is None and search.parse("the a of") == []
    assert len(search.parse(" ".join(f"w{n}" for n in range(20)))) == search.MAX_TERMS
    terms = search.index_terms(" ".join(f"word{n} " * (n % 5 + 1) for n in range(2000)))
    assert len(terms) <= search.TERMS_CHARS and terms.startswith("word4*5 ")


def test_the_list_of_400_long_posts_stays_one_storage_value(sqlite_app, upstream):
    body = " ".join(f"term{n % 900} detail{n % 37}" for n in range(6000))
    title = "A rather long post title about queues, caches and measuring " * 2
    issues = [issue(n, title[:120], body=body, labels=("published", "python", "performance"))
              for n in range(400, 0, -1)]
    upstream.script("GET", ISSUES, Reply(200, json=issues))
    with sqlite_app.app_context():
        items, _ = blog.posts(current())
    assert len(items) == 400 and all(item["terms"] for item in items)
    # room left under 400 KB for the entry's other fields (the pages' ETags, its times)
    assert len(json.dumps(items, ensure_ascii=False).encode()) < 380_000
