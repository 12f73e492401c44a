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

    Raises `RuntimeError` when no virtualenv is active or a module does not compile.
    """
    import compileall
    import os
    import py_compile
    import sys
    import sysconfig

    if sys.prefix == sys.base_prefix:
        raise RuntimeError("activate the virtualenv Zappa packs before building")
    project = os.path.dirname(os.path.abspath(__file__))
    jobs = [(sysconfig.get_paths()["purelib"], py_compile.PycInvalidationMode.UNCHECKED_HASH),
            (project, py_compile.PycInvalidationMode.CHECKED_HASH)]
    for folder, mode in jobs:
        if not compileall.compile_dir(folder, quiet=2, force=True, workers=0, invalidation_mode=mode):
            raise RuntimeError(f"some modules under {folder} do not compile")
