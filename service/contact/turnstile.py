"""Cloudflare Turnstile: check a widget's token with the siteverify endpoint.

The secret travels in the POST body, never in a URL; the visitor's address
is sent along (``remoteip``) as Cloudflare recommends. `Turnstile` is the
client, one per app (``deps.client("turnstile", Turnstile.from_settings)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.upstream import Client, UpstreamError, json_body

#: (connect, read) seconds: the visitor is waiting for this answer.
TIMEOUT = (2.0, 3.0)
#: Longest token Cloudflare issues; anything longer is refused without a call.
MAX_TOKEN_LENGTH = 2048

#: The error codes Cloudflare documents for siteverify: the only ones passed on to a visitor. Anything
#: else an answer carries (an echo of the request, with the secret in it) is dropped.
ERROR_CODES = frozenset({"missing-input-secret", "invalid-input-secret", "missing-input-response",
                         "invalid-input-response", "bad-request", "timeout-or-duplicate", "internal-error"})

class Turnstile(Client):
    """Cloudflare's siteverify at ``TURNSTILE_VERIFY_URL``, asked with the secret ``TURNSTILE_SECRET``."""

    def __init__(self, verify_url: str, secret: str):
        super().__init__(verify_url)
        self.timeout = TIMEOUT
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Turnstile:
        return cls(settings["TURNSTILE_VERIFY_URL"], settings["TURNSTILE_SECRET"] or "")

    def verify(self, token: str, remote_ip: str | None = None) -> tuple[bool, list[str]]:
        """``(passed, error codes)`` for ``token``; an empty or oversized token fails without a call.

        The codes are Cloudflare's documented ones only (`ERROR_CODES`), each once, in the answer's order.

        Raises `UpstreamError` (transient) when siteverify cannot be asked or
        gives no readable answer: the check did not happen, which is not the
        same as a failed check.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return False, ["missing-input-response" if not token else "invalid-input-response"]
        form = {"secret": self._secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        response = self.request("POST", "", data=form)
        try:
            answer = json_body(response)
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict) or not isinstance(answer.get("success"),
                                                                                         bool):
            raise UpstreamError(f"siteverify answered {response.status_code} without a verdict",
                                status=response.status_code, transient=True)
        codes = answer.get("error-codes")
        codes = codes if isinstance(codes, list) else []
        return answer["success"], list(dict.fromkeys(code for code in codes if isinstance(code, str)
                                                     and code in ERROR_CODES))
