"""The one cached-response helper (`service.theme.responses`): the memo's bounds and gzip negotiation."""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

from service.theme.responses import MIN_GZIP_BYTES, Memo, Rendered, negotiate_gzip


def test_the_memo_keeps_the_most_recently_used_within_its_count():
    memo = Memo(max_items=2)
    made = []

    def make(value):
        return lambda: made.append(value) or value

    assert memo.get("a", make("A")) == "A" and memo.get("b", make("B")) == "B"
    assert memo.get("a", make("again")) == "A"  # a hit: not made again, and now the most recent
    memo.get("c", make("C"))  # pushes out b, the least recently used
    assert memo.get("b", make("B2")) == "B2" and made == ["A", "B", "C", "B2"] and len(memo) == 2


def test_the_memo_keeps_within_its_bytes_but_always_one_entry():
    memo = Memo(max_bytes=10)
    memo.get("a", lambda: b"x" * 6)
    memo.get("b", lambda: b"y" * 6)  # 12 bytes: a goes
    assert len(memo) == 1 and memo.get("b", lambda: b"other") == b"y" * 6
    memo.get("big", lambda: b"z" * 50)  # larger than the bound on its own: kept, alone
    assert len(memo) == 1 and memo.get("big", lambda: b"") == b"z" * 50


def test_gzip_only_for_a_client_that_takes_it_with_a_weak_etag_and_vary():
    app = Flask(__name__)
    page = Rendered.of("<p>" + "hello " * MIN_GZIP_BYTES + "</p>")

    @app.get("/")
    def answer():
        response = Response(page.data, mimetype="text/html")
        response.set_etag(page.etag)
        return negotiate_gzip(response.make_conditional(request), len(page.data), page.gzipped)

    client = app.test_client()
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert plain.data == page.data and "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding" and plain.headers["ETag"] == f'"{page.etag}"'
    zipped = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data) == page.data
    assert zipped.headers["ETag"] == f'W/"{page.etag}"'
    again = client.get("/", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == f'W/"{page.etag}"'
