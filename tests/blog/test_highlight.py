"""Highlighted code in posts (service/blog/highlight.py through service/blog/markdown.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.blog import highlight, markdown

from .test_pages import POST, serve_post
from .test_posts import audit, make

ROOT = Path(__file__).resolve().parents[2]
CSS = (ROOT / "site" / "assets" / "site.css").read_text()
CODE = '```python\ndef greet(name):\n    return f"<b>{name}</b>"  # hi\n```'


def test_fenced_code_is_highlighted_with_classes_only():
    html = markdown.render(CODE)
    assert html.startswith('<pre><code class="language-python"><span class="hl-k">def</span>')
    assert '<span class="hl-nf">greet</span>' in html and '<span class="hl-c1"># hi</span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html  # the code's text stays escaped
    assert "style=" not in html and audit(html.replace("hl-", "language-hl-")) == []


def test_unknown_languages_plain_blocks_and_long_blocks_stay_plain():
    for source in ("```nosuchlanguage\nx = 1\n```", "```\nx = 1\n```", "    x = 1",
                   "```python\n" + "x = 1\n" * (highlight.MAX_CHARS // 6 + 1) + "```"):
        html = markdown.render(source)
        assert "<span" not in html and "x = 1" in html, source[:40]


def test_the_sanitiser_keeps_token_classes_and_nothing_more():
    html = markdown.render('<span class="hl-k hl-nosuch evil" id="main" style="color:red">k</span> '
                           '<div class="hl-k">d</div> <code class="hl-s">c</code>')
    assert '<span class="hl-k">k</span>' in html
    assert "<div>d</div>" in html and "<code>c</code>" in html
    assert not re.search(r"nosuch|evil|id=|style=", html)


def test_every_coloured_token_class_is_one_pygments_writes():
    styled = set(re.findall(r"\.hl-([a-z0-9]+)\b", CSS))
    assert styled and all(highlight.is_token_class(f"hl-{name}") for name in styled), styled


def test_light_and_dark_palettes_have_enough_contrast():
    def luminance(colour):
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def ratio(a, b):
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    blocks = re.findall(r"\{([^{}]*--hl-keyword:[^{}]*)\}", CSS)
    assert len(blocks) == 4  # light, dark by the system, dark by the toggle, print
    for block in blocks:
        values = {name: colour if len(colour) == 7 else "#" + "".join(c * 2 for c in colour[1:])
                  for name, colour in re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6}|#[0-9a-f]{3})\b", block)}
        colours = {k: v for k, v in values.items() if k.startswith("hl-")}
        assert len(colours) == 8
        for name, colour in colours.items():
            for background in (values["bg"], values["surface"]):
                assert ratio(colour, background) >= 4.5, (name, colour, background)


@pytest.fixture
def sqlite_app(make_app, upstream):
    return make(make_app, "sqlite", upstream)


def test_a_post_page_shows_highlighted_code(sqlite_app, upstream):
    serve_post(upstream, body=f"Intro.\n\n{CODE}\n")
    html = sqlite_app.test_client().get(POST).data.decode()
    assert '<code class="language-python"><span class="hl-k">def</span>' in html


_LOADS = """
import json, sys
from service.blog import markdown
markdown.render("# Title\\n\\nText with `inline code`.\\n\\n    indented code\\n")
before = "pygments" in sys.modules
markdown.render("```python\\nx = 1\\n```")
print(json.dumps([before, "pygments" in sys.modules]))
"""


def test_pygments_loads_only_for_a_fenced_block():
    found = subprocess.run([sys.executable, "-c", _LOADS], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           check=True)
    assert json.loads(found.stdout) == [False, True]
