"""Cloudflare Turnstile: check a widget's token with the siteverify endpoint.

The secret travels in the POST body, never in a URL; the visitor's address
is sent along (``remoteip``) as Cloudflare recommends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from ..core.upstream import UpstreamError, classify, session

#: Cloudflare's endpoint (the ``TURNSTILE_VERIFY_URL`` default).
VERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
#: (connect, read) seconds: the visitor is waiting for this answer.
TIMEOUT = (2.0, 3.0)
#: Longest token Cloudflare issues; anything longer is refused without a call.
MAX_TOKEN_LENGTH = 2048

#: The error codes Cloudflare documents for siteverify: the only ones passed on to a visitor. Anything
#: else an answer carries (an echo of the request, with the secret in it) is dropped.
ERROR_CODES = frozenset({"missing-input-secret", "invalid-input-secret", "missing-input-response",
                         "invalid-input-response", "bad-request", "timeout-or-duplicate", "internal-error"})

_session: requests.Session | None = None


def verify(verify_url: str, secret: str, token: str, remote_ip: str | None = None) -> tuple[bool, list[str]]:
    """``(passed, error codes)`` for ``token``; an empty or oversized token fails without a call.

    The codes are Cloudflare's documented ones only (`ERROR_CODES`), each once, in the answer's order.

    Raises `UpstreamError` (transient) when siteverify cannot be asked or
    gives no readable answer: the check did not happen, which is not the
    same as a failed check.
    """
    import requests
    global _session
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return False, ["missing-input-response" if not token else "invalid-input-response"]
    form = {"secret": secret, "response": token}
    if remote_ip:
        form["remoteip"] = remote_ip
    if _session is None:
        _session = session()
    try:
        response = _session.post(verify_url, data=form, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise classify(exc) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
        raise UpstreamError(f"siteverify answered {response.status_code} without a verdict",
                            status=response.status_code, transient=True)
    codes = answer.get("error-codes")
    codes = codes if isinstance(codes, list) else []
    return answer["success"], list(dict.fromkeys(code for code in codes if isinstance(code, str)
                                                 and code in ERROR_CODES))
