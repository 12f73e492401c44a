"""The resume: reading ``resume.json`` and validating it against the bundled JSON Resume schema.

`load_resume` reads and validates; `ResumeError` names each bad field
(``work[1].startDate: ...``); `photo_paths` resolves ``basics.image`` to the
address the pages use and the local file the build copies; `sections` is
the order of the page's sections, ``meta.sections`` when the resume sets it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from .templates import source_dir

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: The resume page's sections in their default order: ``meta.sections`` lists some of them, in its own order.
#: ``recognition`` shows awards, certificates and publications; ``personal`` languages and interests.
SECTIONS = ("about", "work", "projects", "volunteer", "education", "skills", "recognition", "personal",
            "references")


class ResumeError(Exception):
    """The resume cannot be read or does not match the schema; the message names each bad field."""


def field_name(path: Iterable[Any]) -> str:
    """``["work", 1, "startDate"]`` -> ``work[1].startDate`` (``(top level)`` for the root)."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _schema_problem(error) -> str:
    """One schema violation as ``field: what is wrong`` in plain words."""
    where = list(error.absolute_path)
    kind, expected = error.validator, error.validator_value
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "; ".join(f"{field_name([*where, name])}: unknown field (not in the JSON Resume schema)"
                         for name in extra)
    if kind == "type":
        article = "an" if str(expected)[0] in "aeiou" else "a"
        return f"{field_name(where)}: must be {article} {expected}, not {json.dumps(error.instance)[:40]}"
    if kind == "pattern" and "[1-2][0-9]{3}" in str(expected):
        return f"{field_name(where)}: {error.instance!r} is not a date like 2021-03-15, 2021-03 or 2021"
    if kind == "format" and expected == "email":
        return f"{field_name(where)}: {error.instance!r} is not an email address"
    if kind == "enum" and where[:2] == ["meta", "sections"]:
        return f"{field_name(where)}: unknown section {error.instance!r}; expected one of {', '.join(expected)}"
    if kind == "uniqueItems":
        return f"{field_name(where)}: lists an item twice"
    if kind == "format" and expected == "uri":
        return f"{field_name(where)}: {error.instance!r} is not an absolute http(s) URL"
    return f"{field_name(where)}: {error.message}"


def _format_checker():
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())

    @checker.checks("email")
    def is_email(value: object) -> bool:
        return not isinstance(value, str) or bool(_EMAIL.fullmatch(value))

    @checker.checks("uri")
    def is_web_url(value: object) -> bool:
        # Only http(s): a javascript: URL in resume.json would become a link on the page.
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    return checker


def validate(resume: object, schema_path: str | None = None, name: str = "resume.json") -> None:
    """Check ``resume`` (the file ``name``) against the bundled schema; raise `ResumeError` listing every
    bad field."""
    from jsonschema import Draft7Validator

    with open(schema_path or os.path.join(source_dir(), "resume.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    validator = Draft7Validator(schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(resume), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        problems = "\n".join(f"  {_schema_problem(error)}" for error in errors)
        raise ResumeError(f"{name} does not match the JSON Resume schema:\n{problems}")


def load_resume(path: str) -> dict:
    """Read and validate the resume at ``path``; raise `ResumeError` naming the problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ResumeError(f"cannot read {path}: {exc.strerror}") from None
    try:
        resume = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResumeError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(resume, dict):
        raise ResumeError(f"{path}: (top level): must be an object")
    validate(resume, name=os.path.basename(path))
    return resume


def sections(resume: dict) -> tuple[str, ...]:
    """The names of the page's sections in order (`SECTIONS`): ``meta.sections`` when set, the rest hidden."""
    chosen = (resume.get("meta") or {}).get("sections")
    return tuple(chosen) if chosen is not None else SECTIONS


def photo_paths(resume: dict, resume_dir: str) -> tuple[str | None, str | None]:
    """(URL the pages use, local path relative to the resume) for ``basics.image``; `ResumeError` if missing."""
    image = (resume.get("basics") or {}).get("image")
    if not image:
        return None, None
    parts = urlsplit(image)
    if parts.scheme in ("http", "https") and parts.netloc:
        return image, None
    if parts.scheme or parts.netloc or image.startswith("/") or ".." in image.split("/"):
        raise ResumeError("basics.image: must be an http(s) URL or a file name next to resume.json")
    local = os.path.join(resume_dir, image)
    if not os.path.isfile(local):
        raise ResumeError(f"basics.image: file {image!r} not found next to resume.json")
    return "/" + image, image
