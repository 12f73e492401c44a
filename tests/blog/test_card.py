"""A post's share card (service/blog/card.py, the route in service/blog/pages.py) against a fake GitHub on loopback.

The PNGs are read back with Pillow (a development dependency; the function draws them without it).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from service.blog import card, glyphs, pages, png

from ..fakes import Reply
from .test_pages import meta
from .test_posts import ISSUES, SITE, TTL, issue, make, serve

POST = "/blog/7/hello-world"
CARD = "/blog/7/card.png"


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def card_address(html: str) -> str:
    """The path and query of the page's ``og:image``."""
    (url,) = meta(html)["og:image"]
    assert url.startswith(SITE)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_post_page_names_its_card_and_the_card_is_a_1200x630_png(sqlite_app, upstream):
    serve(upstream, [issue(7, "Hello, World!")])
    client = sqlite_app.test_client()
    html = client.get(POST).data.decode()
    tags = meta(html)
    address = card_address(html)
    assert address.startswith(f"{CARD}?v=") and tags["twitter:image"] == tags["og:image"]
    assert tags["twitter:card"] == ["summary_large_image"]
    assert (tags["og:image:width"], tags["og:image:height"], tags["og:image:type"]) == (["1200"], ["630"],
                                                                                        ["image/png"])
    assert tags["og:image:alt"] == ["Hello, World! · Mara Lindqvist"] == tags["twitter:image:alt"]
    response = client.get(address, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "Content-Encoding" not in response.headers  # a PNG is compressed already
    image = picture(response.data)
    assert (image.format, image.size) == ("PNG", (1200, 630))
    assert len(response.data) < 40_000
    assert response.headers["ETag"] == f'"{address.split("v=")[1]}"'
    assert response.headers["Cache-Control"].startswith("public, max-age=0, s-maxage=")
    assert response.headers["Last-Modified"] == "Fri, 08 Jan 2027 12:00:00 GMT"
    # the card itself: the dark background, the accent bar, light title pixels where the title is
    rgb = image.convert("RGB")
    assert rgb.getpixel((600, 20)) == card.BACKGROUND and rgb.getpixel((5, 300)) == card.ACCENT
    assert card.TEXT in {colour for _, colour in rgb.crop((88, 176, 1112, 500)).getcolors(1 << 16)}
    # the address without ?v= (or with any other) is the same card: the version only renews caches
    assert client.get(CARD).data == response.data == client.get(f"{CARD}?v=other&title=Pwned").data


def test_the_card_changes_with_the_title_and_is_revalidated_by_its_etag(sqlite_app, upstream, clock):
    serve(upstream, [issue(7, "Hello, World!")])
    client = sqlite_app.test_client()
    first = client.get(CARD)
    etag = first.headers["ETag"]
    assert client.get(CARD, headers={"If-None-Match": etag}).status_code == 304
    serve(upstream, [issue(7, "Hello again, World", updated_at="2027-01-09T08:00:00Z")])
    clock.advance(TTL)
    second = client.get(CARD, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["ETag"] != etag
    assert picture(second.data).size == (1200, 630) and second.data != first.data
    assert second.headers["Last-Modified"] == "Sat, 09 Jan 2027 08:00:00 GMT"
    assert card_address(client.get("/blog/7/hello-again-world").data.decode()) == (
        f"{CARD}?v={second.headers['ETag'].strip(chr(34))}")


@pytest.mark.parametrize("backend", ["sqlite", "redis", "dynamodb"])
def test_a_card_is_drawn_once_and_kept_in_storage(make_app, upstream, monkeypatch, backend):
    app = make(make_app, backend, upstream)
    serve(upstream, [issue(7, "Hello, World!")])
    drawn = []
    real = card.render
    monkeypatch.setattr(card, "render", lambda *args: drawn.append(args) or real(*args))
    client = app.test_client()
    first = client.get(CARD)
    name = first.headers["ETag"].strip('"')
    with app.app_context():
        from service.core.deps import current
        assert current().storage.get(f"blog:card:{name}") is not None
    pages.setup(app)  # as in a new process: an empty memo of rendered pages and cards
    assert client.get(CARD).data == first.data
    assert client.get(CARD, headers={"If-None-Match": f'"{name}"'}).status_code == 304
    assert len(drawn) == 1 and drawn[0][0] == "Hello, World!"


HOSTILE = {
    "rtl": "مرحبا بالعالم — שלום עולם",
    "emoji": "🎉" * 300 + " party",
    "controls": "\x00\x1b[31mred\x1b[0m \u202eevil\u202c\u200b\ufeff\t\r\n title",
    "huge": "W" * 10_000,
    "many words": "word " * 2_000,
    "combining": "Z" + "\u0301" * 5_000,
    "markup": "<script>alert(1)</script> & ' \"",
}


@pytest.mark.parametrize("title", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_titles_still_make_a_card(sqlite_app, upstream, title):
    serve(upstream, [issue(7, title)])
    client = sqlite_app.test_client()
    response = client.get(CARD)
    assert response.status_code == 200 and picture(response.data).size == (1200, 630)
    html = client.get("/blog/7/", follow_redirects=True).data.decode()
    assert card_address(html).startswith(f"{CARD}?v=")


def test_what_the_glyphs_cannot_draw_is_left_out_and_an_empty_title_reads_post_n():
    args = ("Mara Lindqvist", "5 Jan 2027")
    assert card.render("🎉 世界 مرحبا", *args, "Post 5") == card.render("Post 5", *args, "unused")
    assert card.render("مرحبا — שלום!", *args, "Post 5") == card.render("Post 5", *args, "unused")
    assert card.render("Hello 🎉 世界", *args, "Post 5") == card.render("Hello", *args, "Post 5")
    assert card.render("Hello\u202e\x00 world", *args, "x") == card.render("Hello world", *args, "x")
    assert card.render("One title", *args, "x") != card.render("Another title", *args, "x")


def test_long_titles_wrap_and_are_cut_with_an_ellipsis():
    title = glyphs.face("title")
    lines, cut = title.wrap("Short title", 1024, 3)
    assert (lines, cut) == (["Short title"], False)
    lines, cut = title.wrap("word " * 100, 1024, 3)
    assert len(lines) == 3 and cut and lines[-1].endswith("…")
    assert all(title.width(line) <= 1024 for line in lines)
    lines, cut = title.wrap("W" * 300, 1024, 2)  # one word wider than a line is broken where it must be
    assert len(lines) == 2 and cut and all(title.width(line) <= 1024 for line in lines)
    assert card.clean("a\u202e\x00b \t\n c" + "x" * 500, 10) == "ab cx"  # the limit applies first: bounded work


@pytest.mark.parametrize(("path", "status"), [
    ("/blog/99/card.png", 404), ("/blog/abc/card.png", 404), ("/blog/0/card.png", 404),
    ("/blog/99999999999/card.png", 404), ("/blog/5/card.png", 404),
])
def test_only_published_posts_have_a_card(sqlite_app, upstream, path, status):
    serve(upstream, [issue(7), issue(5, state="closed")], single=[issue(7)])
    upstream.script("GET", f"{ISSUES}/5", Reply(200, json=issue(5, state="closed")))
    response = sqlite_app.test_client().get(path)
    assert response.status_code == status and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "public, max-age=0, s-maxage=60"


def test_no_blog_no_card(make_app):
    response = make_app("sqlite").test_client().get(CARD)
    assert response.status_code == 404


def test_the_png_writer_checks_its_input():
    data = png.palette_png(2, 1, bytes([0, 1]), [(255, 0, 0), (0, 0, 255)])
    assert picture(data).convert("RGB").getpixel((1, 0)) == (0, 0, 255)
    for width, pixels, palette in ((2, b"\0", [(0, 0, 0)]), (1, b"\0", []), (1, b"\0", [(0, 0, 0)] * 257)):
        with pytest.raises(ValueError):
            png.palette_png(width, 1, pixels, palette)


def test_the_glyph_file_is_what_the_tool_builds_from_the_fonts(tmp_path):
    """The committed glyphs are rebuilt from Debian's DejaVu fonts with the pinned Pillow: byte for byte."""
    root = Path(__file__).resolve().parents[2]
    built = tmp_path / "glyphs.bin"
    subprocess.run([sys.executable, str(root / "tools" / "card_glyphs.py"), "--output", str(built)], check=True,
                   capture_output=True, timeout=120)
    assert built.read_bytes() == glyphs.GLYPHS_FILE.read_bytes()
    title = glyphs.face("title")
    assert title.drawable("Résumé — Ελληνικά, Кириллица, Șt 🎉 世界") == "Résumé — Ελληνικά, Кириллица, Șt  "
