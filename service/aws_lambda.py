"""AWS Lambda glue for Zappa: the entry point behind CloudFront, and the bytecode build step.

`lambda_handler` (zappa_settings.json ``lambda_handler``) answers every
event through Zappa's own handler after two fixes for function-URL events:

* The host. A function URL answers only to its own host name, so CloudFront
  sends ``Host: <id>.lambda-url.<region>.on.aws`` and adds ``cloudfront-host:
  <site domain>`` (terraform/cloudfront.tf; a custom origin header overwrites
  any viewer header of that name). Zappa 0.63 restores Host from it for
  payload-1.0 events only, and function URLs send payload 2.0, so it is done
  here: redirects and absolute URLs name the site, never the function.
* The visitor's address. CloudFront appends it to ``X-Forwarded-For``; the
  function URL may append the connecting edge (``requestContext.http.
  sourceIp``). The header is reduced to ``<viewer>, <edge>``, and Zappa makes
  the second-to-last entry ``REMOTE_ADDR``: addresses a visitor writes in
  front are ignored, so ``TRUSTED_PROXIES`` stays 0 on Lambda.

Other events (the outbox schedule) pass through unchanged.

`compile_bytecode` (zappa_settings.json ``prebuild_script``) runs in the
``zappa`` command before it packs the virtualenv and the project. Lambda's
code folder is read-only and unzipped files carry the zip's timestamps, so
ordinary timestamp-checked ``.pyc`` files would be ignored and every cold
start would compile every module again. Third-party packages get
unchecked hash-based ``.pyc`` files (pip rewrites them on any reinstall);
the ``service`` package gets checked ones (validated against the source's
hash, so an edited module is never run stale, here or there).

This module imports nothing from the app at load time: Zappa's command loads
it by file path for the build step.
"""

from __future__ import annotations

import os
from typing import Any

_FUNCTION_URL_HOST = ".lambda-url."


def adapt_function_url_event(event: dict[str, Any]) -> dict[str, Any]:
    """Restore the viewer's host and address in a function-URL event (in place; also returned)."""
    headers = event.get("headers")
    if event.get("version") != "2.0" or not isinstance(headers, dict):
        return event
    if _FUNCTION_URL_HOST in headers.get("host", "") and headers.get("cloudfront-host"):
        headers["host"] = headers["cloudfront-host"]
    edge = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp", "")
    chain = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    if len(chain) > 1 and chain[-1] == edge:
        chain.pop()
    viewer = chain[-1] if chain else edge
    if viewer and edge:
        headers["x-forwarded-for"] = f"{viewer}, {edge}"
    return event


def lambda_handler(event: Any, context: Any) -> Any:
    """Answer one Lambda event through Zappa's handler."""
    from zappa.handler import lambda_handler as zappa_handler

    if isinstance(event, dict):
        adapt_function_url_event(event)
    return zappa_handler(event, context)


def compile_bytecode() -> None:
    """Write hash-based ``.pyc`` files for the active virtualenv and the ``service`` package.

    Files whose ``.pyc`` already matches are left alone, so a second build
    only reads and hashes. Third-party files that do not compile are skipped
    (they are never imported); raises `RuntimeError` when a module of the
    service does not compile or no virtualenv is active.
    """
    import sys
    import sysconfig
    from py_compile import PycInvalidationMode

    if sys.prefix == sys.base_prefix:
        raise RuntimeError("activate the virtualenv Zappa packs before building")
    _compile_tree(sysconfig.get_paths()["purelib"], PycInvalidationMode.UNCHECKED_HASH)
    broken = _compile_tree(os.path.dirname(os.path.abspath(__file__)), PycInvalidationMode.CHECKED_HASH)
    if broken:
        raise RuntimeError(f"these modules do not compile: {', '.join(broken)}")


def _compile_tree(folder: str, mode) -> list[str]:
    """Compile every ``.py`` under ``folder`` whose ``.pyc`` is missing or stale; the ones that fail."""
    import importlib.util
    import py_compile

    flags = (0b01 if mode is py_compile.PycInvalidationMode.UNCHECKED_HASH else 0b11).to_bytes(4, "little")
    broken = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            source = os.path.join(root, name)
            cached = importlib.util.cache_from_source(source)
            with open(source, "rb") as handle:
                expected = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(handle.read())
            try:
                with open(cached, "rb") as handle:
                    if handle.read(16) == expected:
                        continue
            except OSError:
                pass
            try:
                py_compile.compile(source, cfile=cached, doraise=True, invalidation_mode=mode)
            except (py_compile.PyCompileError, SyntaxError, ValueError):
                broken.append(source)
    return broken
