"""The resume's languages, and the site's own words in each of them.

A resume is ``resume.json``, the default language, served at ``/``, plus any
``resume.<code>.json`` beside it: ``resume.de.json`` is served at ``/de/``.
``<code>`` is a BCP 47 tag in lower case (``de``, ``pt-br``); other names
(``resume.schema.json``, ``resume.old.json``) are not languages. A page's
``lang`` and ``hreflang`` are the file's ``meta.lang`` when it has one
(``de-CH`` in ``resume.de.json``), else the code; the default resume's
language is its ``meta.lang``, else ``en``. `editions` reads and validates
them all and raises `ResumeError` naming the file for a clash (two files of
one language, a ``meta.lang`` of another language than the file's name).

The words the templates put around the resume (section headings, month
names, navigation, the contact form's labels) come from the translation
tables ``site/translations/<tag>.json`` (``de-ch.json``, else ``de.json``).
`words` fills what a table lacks with English and says so: a language
without a table, a missing word or one whose ``{placeholders}`` differ from
the English is a warning, never a failure. The tables are plain JSON so an
owner adds a language by adding a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import string
from typing import Any

from .resume import ResumeError, load_resume

#: The language of the words every other table is measured against, and of a resume without ``meta.lang``.
FALLBACK = "en"
_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
#: Codes whose pages would shadow the app's own addresses.
_RESERVED = frozenset({"api"})


@dataclasses.dataclass(frozen=True)
class Edition:
    """The resume in one language: its file, its data and where its page lives."""

    #: The BCP 47 tag of ``lang`` and ``hreflang`` (``de``, ``de-CH``).
    tag: str
    #: The code from the file's name (``de``); None for the default resume, served at ``/``.
    code: str | None
    resume_path: str
    resume: dict

    @property
    def path(self) -> str:
        """The page's address: ``/`` or ``/de/``."""
        return f"/{self.code}/" if self.code else "/"

    @property
    def output(self) -> str:
        """The page's file in the build: ``index.html`` or ``de/index.html``."""
        return f"{self.code}/index.html" if self.code else "index.html"


def language_files(resume_path: str) -> list[tuple[str, str]]:
    """(code, path) of each ``resume.<code>.json`` beside ``resume_path``, by code (the default not included)."""
    folder = os.path.dirname(os.path.abspath(resume_path))
    stem = os.path.splitext(os.path.basename(resume_path))[0]
    found = []
    for name in os.listdir(folder):
        match = re.fullmatch(rf"{re.escape(stem)}\.(.+)\.json", name)
        if match and _CODE.fullmatch(match.group(1)):
            found.append((match.group(1), os.path.join(folder, name)))
    return sorted(found)


def editions(resume_path: str) -> list[Edition]:
    """The default resume and every translation beside it, default first, each read and validated.

    Raises `ResumeError` naming the file: a bad resume, a ``meta.lang`` that is not the file's language,
    two files of one language, or a code that would shadow the app (``api``).
    """
    default = load_resume(resume_path)
    found = [Edition(_lang(default) or FALLBACK, None, resume_path, default)]
    for code, path in language_files(resume_path):
        name = os.path.basename(path)
        if code in _RESERVED:
            raise ResumeError(f"{name}: /{code}/ is the app's own address; name the file for another language")
        resume = load_resume(path)
        tag = _lang(resume) or code
        if tag.lower() != code and not tag.lower().startswith(code + "-"):
            raise ResumeError(f"{name}: meta.lang {tag!r} is not the file's language {code!r}")
        clash = next((e for e in found if e.tag.lower() == tag.lower()), None)
        if clash:
            raise ResumeError(f"{name}: {os.path.basename(clash.resume_path)} is already in {clash.tag}")
        found.append(Edition(tag, code, path, resume))
    return found


def _lang(resume: dict) -> str | None:
    meta = resume.get("meta")
    return meta.get("lang") if isinstance(meta, dict) else None


def _table(source: str, tag: str) -> dict[str, Any] | None:
    """The translation table ``<source>/translations/<tag>.json`` or None; `ResumeError` if it is not JSON."""
    path = os.path.join(source, "translations", f"{tag.lower()}.json")
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"translations/{tag.lower()}.json cannot be read: {exc}") from None
    if not isinstance(table, dict):
        raise ResumeError(f"translations/{tag.lower()}.json: must be an object of words")
    return table


def _placeholders(value: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}


def _fits(english: Any, value: Any) -> bool:
    """Whether ``value`` can stand in for ``english``: a text with the same placeholders, or as many texts."""
    if isinstance(english, str):
        return isinstance(value, str) and bool(value.strip()) and _placeholders(value) == _placeholders(english)
    return (isinstance(value, list) and len(value) == len(english)
            and all(_fits(e, v) for e, v in zip(english, value, strict=True)))


def words(tag: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """(the site's words in language ``tag``, warnings): English fills every gap, and each gap is a warning.

    The table is ``translations/<tag>.json``, else the one of the tag's first part (``de`` for ``de-CH``).
    A language without a table is English but for its name, which is then the tag itself.
    """
    english = _table(source, FALLBACK)
    if english is None:
        raise ResumeError(f"translations/{FALLBACK}.json is missing: it holds the words every page needs")
    primary = tag.lower().split("-")[0]
    name, table = tag.lower(), _table(source, tag) if tag.lower() != primary else None
    if table is None:
        name, table = primary, _table(source, primary)
    if table is None:
        return {**english, "language_name": tag}, [
            f"no translation table for {tag} (translations/{primary}.json): its pages use English words"]
    chosen, missing = {}, []
    for key, value in english.items():
        if _fits(value, table.get(key)):
            chosen[key] = table[key]
        else:
            chosen[key] = value
            missing.append(key)
    warnings = [f"translations/{name}.json lacks {', '.join(missing)} (or their placeholders differ): "
                f"English is used for them"] if missing else []
    return chosen, warnings


def all_words(found: list[Edition], source: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """({tag: its words} for every edition in ``found``, the warnings of them all) (`words`)."""
    chosen, warnings = {}, []
    for edition in found:
        chosen[edition.tag], missing = words(edition.tag, source)
        warnings += missing
    return chosen, warnings
