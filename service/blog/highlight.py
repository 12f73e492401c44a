"""Server-side syntax highlighting of fenced code (Pygments), as CSS classes only.

`code(source, language)` returns the block's inner HTML: Pygments' tokens as ``<span class="hl-…">``
(short token names with the ``hl-`` prefix, coloured by the site's stylesheet in light and dark mode;
no inline style, so the CSP needs no ``style-src 'unsafe-inline'``), or ``""`` when the language is
unknown or the block is longer than `MAX_CHARS` (markdown-it then writes the escaped text). Pygments is
imported on the first highlighted block, never at start-up. `is_token_class` tells the sanitiser
which classes a ``<span>`` may keep.
"""

from __future__ import annotations

import functools

#: Longest block highlighted (a comment is anyone's text: its cost stays bounded); longer ones stay plain.
MAX_CHARS = 20_000
PREFIX = "hl-"


def code(source: str, language: str) -> str:
    """Highlighted inner HTML of a fenced block in ``language`` (a Pygments alias), or ``""`` (see module)."""
    if not language or len(source) > MAX_CHARS:
        return ""
    from pygments import highlight
    from pygments.util import ClassNotFound

    try:
        lexer = _lexer(language.lower())
    except ClassNotFound:
        return ""
    return highlight(source, lexer, _formatter())


@functools.lru_cache(maxsize=64)
def _lexer(alias: str):
    from pygments.lexers import get_lexer_by_name

    return get_lexer_by_name(alias, stripnl=False, ensurenl=False)


@functools.cache
def _formatter():
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True, classprefix=PREFIX)


def is_token_class(name: str) -> bool:
    """Whether ``name`` is a class `code` writes (``hl-`` and a Pygments short token name)."""
    return name.startswith(PREFIX) and name[len(PREFIX):] in _token_names()


@functools.cache
def _token_names() -> frozenset[str]:
    from pygments.token import STANDARD_TYPES

    return frozenset(name for name in STANDARD_TYPES.values() if name)
