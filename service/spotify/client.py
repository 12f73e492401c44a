"""Spotify clients: the accounts service's token endpoint (`SpotifyAccounts`) and GETs on the Web API (`SpotifyAPI`).

Both are `core.upstream.Client` objects built from the settings (``from_settings``) and kept one per app
(``deps.client("spotify-accounts", ...)``, ``deps.client("spotify-api", ...)``). Every method raises
`UpstreamError` and nothing else: `ReauthorizationRequired` when the token endpoint answers
``invalid_grant`` (the refresh token expired or was revoked: the owner must run ``flask spotify
authorize``), `Unauthorized` when the Web API refuses an access token (get a new one), transient errors
(with ``retry_after`` from ``Retry-After``) for 429, timeouts, connection failures, 5xx and malformed
JSON, and non-transient ones for other refusals (wrong client id or secret). Messages never carry
tokens, secrets or the upstream's body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:  # requests loads lazily: a cold start that calls no upstream never pays for it
    import requests

from ..core.upstream import TIMEOUT, Client, UpstreamError, header_seconds, json_body

#: Longest access-token lifetime believed (Spotify's are an hour); a larger ``expires_in`` is a malformed answer.
MAX_TOKEN_SECONDS = 86400


class ReauthorizationRequired(UpstreamError):
    """The refresh token is no longer valid (``invalid_grant``)."""


class Unauthorized(UpstreamError):
    """The Web API refused the access token (expired early or revoked)."""


def _json(response: requests.Response) -> Any:
    try:
        return json_body(response)
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


class SpotifyAccounts(Client):
    """The accounts (OAuth) service at ``SPOTIFY_ACCOUNTS_URL`` for the app ``client_id`` / ``client_secret``.

    The credentials travel only in the token request's ``Authorization: Basic`` header.
    """

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, read_timeout: float = TIMEOUT[1]):
        super().__init__(base_url, read_timeout=read_timeout)
        self.client_id = client_id
        self._client_secret = client_secret

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SpotifyAccounts:
        return cls(settings["SPOTIFY_ACCOUNTS_URL"], settings["SPOTIFY_CLIENT_ID"], settings["SPOTIFY_CLIENT_SECRET"],
                   read_timeout=settings["UPSTREAM_TIMEOUT"])

    def authorize_url(self, redirect_uri: str, scopes: list[str], state: str) -> str:
        """The page where the owner grants the app access (authorization code flow)."""
        query = urlencode({"client_id": self.client_id, "response_type": "code", "redirect_uri": redirect_uri,
                           "scope": " ".join(scopes), "state": state, "show_dialog": "true"})
        return f"{self.base_url}/authorize?{query}"

    def refresh_access_token(self, refresh_token: str) -> dict[str, Any]:
        """A new access token: ``{"access_token", "expires_in", ...}`` (maybe a new ``refresh_token`` too).

        ``expires_in`` is a number of seconds in 0 < n <= `MAX_TOKEN_SECONDS` (3600 when Spotify leaves it
        out); any other value is a malformed answer (transient `UpstreamError`).
        """
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def exchange_code(self, code: str, redirect_uri: str) -> dict[str, Any]:
        """Trade an authorization code for tokens: ``{"access_token", "refresh_token", ...}``."""
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        response = self.request("POST", "/api/token", data=form, auth=(self.client_id, self._client_secret))
        _common_failures(response)
        status = response.status_code
        if status != 200:
            try:
                error = json_body(response).get("error")
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


class SpotifyAPI(Client):
    """The Web API at ``SPOTIFY_API_URL``; each call carries the access token it is given."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SpotifyAPI:
        return cls(settings["SPOTIFY_API_URL"], read_timeout=settings["UPSTREAM_TIMEOUT"])

    def get(self, path: str, access_token: str, *, params: dict[str, Any] | None = None) -> Any:
        """GET a Web API path: its JSON, or None for 204 (nothing to report). Raises `UpstreamError`."""
        response = self.request("GET", path, params=params, headers={"Authorization": f"Bearer {access_token}"})
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
