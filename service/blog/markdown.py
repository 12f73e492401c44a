"""Markdown to safe HTML (GitHub-flavoured), and to plain text for excerpts.

`render` parses with markdown-it (CommonMark + tables, strikethrough,
autolinks, task lists; fenced code keeps its ``language-*`` class and, in a
language Pygments knows, is highlighted as ``<span class="hl-…">`` tokens by
`service.blog.highlight`; raw HTML is parsed) and then sanitises with an nh3 allowlist, which is what makes the
output safe: no script/style/iframe/object/embed/form elements, no event
handlers or other unlisted attributes, links only to http(s)/mailto or
relative addresses and always with ``rel="noopener noreferrer nofollow"``
(an address that only looks relative but leaves the site, ``//host`` or
``/\\host``, is rewritten to the absolute ``https://host`` it opens),
images only from absolute http(s) addresses, inputs only as disabled
checkboxes. `plain` gives the text a reader sees (for excerpts and word
counts).
"""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import urlsplit

from . import highlight

_LANGUAGE = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_CLASSES = {"li": {"task-list-item"}, "ul": {"contains-task-list"}, "ol": {"contains-task-list"},
            "input": {"task-list-item-checkbox"}}
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "input", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
#: Elements removed together with everything inside them.
DROPPED = {"script", "style", "iframe", "object", "embed", "applet", "frame", "frameset", "noscript", "noembed",
           "template", "svg", "math", "textarea", "select", "title", "xmp"}
ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height"}, "abbr": {"title"},
    "code": {"class"}, "li": {"class"}, "ul": {"class"}, "ol": {"class", "start"}, "input": {"class", "checked"},
    "th": {"style"}, "td": {"style"}, "details": {"open"}, "span": {"class"},
}


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        allowed = _CLASSES.get(tag, set())
        kept = [c for c in value.split() if c in allowed or (tag == "code" and _LANGUAGE.fullmatch(c))
                or (tag == "span" and highlight.is_token_class(c))]
        return " ".join(kept) or None
    if tag == "img" and attribute == "src":
        parts = urlsplit(value.strip())
        return value if parts.scheme in ("http", "https") and parts.netloc else None
    if tag == "a" and attribute == "href":
        return _off_site(value)
    return value


_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def _off_site(href: str) -> str:
    """``href`` as a browser reads it when that is another site: ``//host`` and ``/\\host`` (and the
    same with tabs, newlines or leading spaces, which browsers drop) become ``https://host``, an
    ordinary off-site link; anything else is kept as written."""
    # what a browser's URL parser removes before reading: leading/trailing C0 and spaces, every tab and newline
    read = re.sub(r"[\t\n\r]", "", href.strip(_C0_AND_SPACE))
    if len(read) >= 2 and read[0] in "/\\" and read[1] in "/\\":
        return "https://" + read.lstrip("/\\").replace("\\", "/")
    return href


@functools.cache
def _cleaner():
    import nh3

    return nh3.Cleaner(
        tags=TAGS, clean_content_tags=DROPPED, attributes=ATTRIBUTES, attribute_filter=_filter,
        link_rel="noopener noreferrer nofollow", url_schemes={"http", "https", "mailto"},
        # The only inputs Markdown makes are task-list boxes: whatever a body writes becomes one, read-only.
        set_tag_attribute_values={"input": {"type": "checkbox", "disabled": "disabled"}},
        filter_style_properties={"text-align"},
    )


@functools.cache
def _parser(highlighted: bool = True):
    from markdown_it import MarkdownIt
    from mdit_py_plugins.tasklists import tasklists_plugin

    options = {"typographer": False, **({"highlight": _highlight} if highlighted else {})}
    return MarkdownIt("gfm-like", options).use(tasklists_plugin)


def _highlight(source: str, language: str, _attributes: str) -> str:
    # markdown-it wraps what this returns in <pre><code class="language-…">, or escapes the text itself on ""
    return highlight.code(source, language) if _LANGUAGE.fullmatch(f"language-{language}") else ""


def render(source: str) -> str:
    """Safe HTML for Markdown ``source`` (see the module docstring for what survives)."""
    return _cleaner().clean(_parser().render(source or ""))


def plain(source: str) -> str:
    """The visible text of Markdown ``source``, whitespace collapsed."""
    import nh3

    # no highlighting: its spans would be thrown away with every other tag
    text = nh3.clean(_parser(highlighted=False).render(source or ""), tags=set(), clean_content_tags=DROPPED)
    return " ".join(html.unescape(text).split())
