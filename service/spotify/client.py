"""Spotify client: the accounts service's token endpoint and GETs on the Web API.

Every function raises `UpstreamError` and nothing else: `ReauthorizationRequired`
when the token endpoint answers ``invalid_grant`` (the refresh token expired
or was revoked: the owner must run ``flask spotify authorize``),
`Unauthorized` when the Web API refuses an access token (get a new one),
transient errors (with ``retry_after`` from ``Retry-After``) for 429,
timeouts, connection failures, 5xx and malformed JSON, and non-transient
ones for other refusals (wrong client id or secret). Messages never carry
tokens, secrets or the upstream's body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from ..core.upstream import TIMEOUT, UpstreamError, classify, header_seconds, session

_session: requests.Session | None = None
#: Longest access-token lifetime believed (Spotify's are an hour); a larger ``expires_in`` is a malformed answer.
MAX_TOKEN_SECONDS = 86400


class ReauthorizationRequired(UpstreamError):
    """The refresh token is no longer valid (``invalid_grant``)."""


class Unauthorized(UpstreamError):
    """The Web API refused the access token (expired early or revoked)."""


def _session_() -> requests.Session:
    global _session
    if _session is None:
        _session = session()
    return _session


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"Spotify answered malformed JSON (HTTP {response.status_code})",
                            status=response.status_code, transient=True) from None


def _common_failures(response: requests.Response) -> None:
    status = response.status_code
    if status == 429:
        raise UpstreamError("Spotify rate limit reached (HTTP 429)", status=429, transient=True,
                            retry_after=header_seconds(response.headers.get("Retry-After")))
    if status >= 500:
        raise UpstreamError(f"Spotify answered HTTP {status}", status=status, transient=True,
                            retry_after=header_seconds(response.headers.get("Retry-After")))


def authorize_url(accounts_url: str, client_id: str, redirect_uri: str, scopes: list[str], state: str) -> str:
    """The page where the owner grants the app access (authorization code flow)."""
    query = urlencode({"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
                       "scope": " ".join(scopes), "state": state, "show_dialog": "true"})
    return f"{accounts_url}/authorize?{query}"


def _token(accounts_url: str, client_id: str, client_secret: str, form: dict[str, str],
           read_timeout: float) -> dict[str, Any]:
    import requests
    try:
        response = _session_().post(f"{accounts_url}/api/token", data=form, auth=(client_id, client_secret),
                                    timeout=(TIMEOUT[0], read_timeout), allow_redirects=False)
    except requests.RequestException as exc:
        raise classify(exc) from None
    _common_failures(response)
    status = response.status_code
    if status != 200:
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):
            error = None
        if error == "invalid_grant":
            raise ReauthorizationRequired("Spotify refused the refresh token (invalid_grant)", status=status,
                                          transient=False)
        code = error if isinstance(error, str) and error.isidentifier() else "no error code"
        raise UpstreamError(f"Spotify token endpoint answered HTTP {status} ({code})", status=status,
                            transient=False)
    data = _json(response)
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise UpstreamError("Spotify token answer has no access token", status=status, transient=True)
    expires_in = data.setdefault("expires_in", 3600)
    # bool is an int too; nan, inf and 1e300 fail the range check
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not (
            0 < expires_in <= MAX_TOKEN_SECONDS):
        raise UpstreamError("Spotify token answer has an unusable expires_in", status=status, transient=True)
    return data


def refresh_access_token(accounts_url: str, client_id: str, client_secret: str, refresh_token: str, *,
                         read_timeout: float = TIMEOUT[1]) -> dict[str, Any]:
    """A new access token: ``{"access_token", "expires_in", ...}`` (maybe a new ``refresh_token`` too).

    ``expires_in`` is a number of seconds in 0 < n <= `MAX_TOKEN_SECONDS` (3600 when Spotify leaves it out);
    any other value is a malformed answer (transient `UpstreamError`).
    """
    return _token(accounts_url, client_id, client_secret,
                  {"grant_type": "refresh_token", "refresh_token": refresh_token}, read_timeout)


def exchange_code(accounts_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str, *,
                  read_timeout: float = TIMEOUT[1]) -> dict[str, Any]:
    """Trade an authorization code for tokens: ``{"access_token", "refresh_token", ...}``."""
    return _token(accounts_url, client_id, client_secret,
                  {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}, read_timeout)


def get(api_url: str, path: str, access_token: str, *, params: dict[str, Any] | None = None,
        read_timeout: float = TIMEOUT[1]) -> Any:
    """GET a Web API path: its JSON, or None for 204 (nothing to report). Raises `UpstreamError`."""
    import requests
    try:
        response = _session_().get(f"{api_url}{path}", params=params, timeout=(TIMEOUT[0], read_timeout),
                                   headers={"Authorization": f"Bearer {access_token}"}, allow_redirects=False)
    except requests.RequestException as exc:
        raise classify(exc) from None
    _common_failures(response)
    status = response.status_code
    if status == 401:
        raise Unauthorized("Spotify refused the access token (HTTP 401)", status=401, transient=False)
    if status == 204:
        return None
    if status != 200:
        raise UpstreamError(f"Spotify answered HTTP {status}", status=status, transient=False)
    if not response.content.strip():
        return None
    return _json(response)
