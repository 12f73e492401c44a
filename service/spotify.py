"""What the owner is listening to on Spotify, and `flask spotify authorize` to get the refresh token.

`now_playing()` answers from the cache (`cache.cached`, ``SPOTIFY_CACHE_TTL``).
A refresh asks ``currently-playing`` for tracks and episodes; when nothing
plays (204, paused, or no item) it answers the most recently played track
with ``is_playing`` false and ``played_at``.

The access token is kept in storage until shortly before it expires, so
there is one token request per expiry (refreshes already run one at a
time under the cache's lock). A refresh token the accounts service rotates
is kept in storage too. When the refresh token is refused (``invalid_grant``)
the answer is a 503 ``reauthorization_required`` for `FAILURE_TTL` seconds,
with an ERROR log telling the owner to run ``flask spotify authorize``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
from flask import current_app
from flask.cli import AppGroup

from . import cache
from .clock import now as clock_now
from .db import get_storage
from .errors import APIError
from .upstream import UpstreamError
from .upstream import spotify as client
from .widgets import require, web_url

log = logging.getLogger(__name__)

#: Scopes the widget needs: the current track/episode and the recently played list.
SCOPES = ["user-read-currently-playing", "user-read-recently-played"]
#: Seconds before its expiry that an access token is replaced.
TOKEN_MARGIN = 60
IMAGE_WIDTH = 300
REAUTHORIZE = "spotify:reauthorize"
SETTINGS = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN")
FIELDS = ("is_playing", "type", "title", "artists", "album", "image_url", "url", "progress_ms", "duration_ms",
          "played_at")


def now_playing() -> tuple[dict[str, Any], cache.Cached]:
    """The widget's answer and its cache result; raises 503 `APIError` (not configured, reauthorize, down)."""
    client_id, _, _ = require(*SETTINGS)
    if cache.held_until(REAUTHORIZE) is not None:
        raise _reauthorization_required()
    result = cache.cached(f"spotify:now:{client_id}", current_app.config["SPOTIFY_CACHE_TTL"], _fetch)
    return result.value, result


def _reauthorization_required() -> APIError:
    return APIError(503, "reauthorization_required", "the Spotify authorization expired; the site owner must "
                    "renew it")


def _fetch(previous: cache.Entry | None) -> cache.Entry:
    cache.held("spotify")
    try:
        playing = _get("/me/player/currently-playing", {"additional_types": "track,episode"})
        if isinstance(playing, dict) and playing.get("is_playing") and isinstance(playing.get("item"), dict):
            return cache.Entry(_answer(playing["item"], True, progress_ms=playing.get("progress_ms")))
        recent = _get("/me/player/recently-played", {"limit": 1})
    except client.ReauthorizationRequired:
        log.error("Spotify refused the refresh token (it expired or was revoked): run `flask spotify authorize` "
                  "and set SPOTIFY_REFRESH_TOKEN to the token it prints")
        cache.hold(REAUTHORIZE, clock_now() + cache.FAILURE_TTL)
        from .stats.notify import alert

        alert("spotify_reauthorize", "Spotify refused the refresh token: run `flask spotify authorize` and set "
              "SPOTIFY_REFRESH_TOKEN")
        raise _reauthorization_required() from None
    except UpstreamError as exc:
        if exc.status == 429 or exc.retry_after:
            cache.hold("spotify", clock_now() + (exc.retry_after or cache.FAILURE_TTL))
        raise
    items = recent.get("items") if isinstance(recent, dict) else None
    if items is None:
        raise UpstreamError("Spotify recently-played answer has no items", status=200, transient=True)
    for played in items:
        if isinstance(played, dict) and isinstance(played.get("track"), dict):
            return cache.Entry(_answer(played["track"], False, played_at=played.get("played_at")))
    return cache.Entry(dict.fromkeys(FIELDS) | {"is_playing": False, "artists": []})


def _get(path: str, params: dict[str, Any]) -> Any:
    """A Web API GET with the stored access token; on a refused token, once more with a new one."""
    config = current_app.config
    try:
        return client.get(config["SPOTIFY_API_URL"], path, _access_token(), params=params,
                          read_timeout=config["UPSTREAM_TIMEOUT"])
    except client.Unauthorized:
        return client.get(config["SPOTIFY_API_URL"], path, _access_token(renew=True), params=params,
                          read_timeout=config["UPSTREAM_TIMEOUT"])


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _access_token(*, renew: bool = False) -> str:
    """The stored access token, or a new one when it is about to expire (or ``renew``)."""
    config = current_app.config
    storage, now = get_storage(), clock_now()
    configured = config["SPOTIFY_REFRESH_TOKEN"]
    # Keys carry a fingerprint of the configured refresh token: setting a new one starts afresh.
    token_key = f"spotify:token:{_fingerprint(config['SPOTIFY_CLIENT_ID'] + configured)}"
    rotated_key = f"spotify:refresh:{_fingerprint(configured)}"
    if not renew:
        try:
            stored = json.loads(storage.get(token_key) or "null")
            if stored and stored["expires_at"] - TOKEN_MARGIN > now:
                return stored["access_token"]
        except (ValueError, KeyError, TypeError):
            pass
    refresh_token = storage.get(rotated_key) or configured
    answer = client.refresh_access_token(config["SPOTIFY_ACCOUNTS_URL"], config["SPOTIFY_CLIENT_ID"],
                                         config["SPOTIFY_CLIENT_SECRET"], refresh_token,
                                         read_timeout=config["UPSTREAM_TIMEOUT"])
    if isinstance(answer.get("refresh_token"), str) and answer["refresh_token"] != refresh_token:
        storage.set(rotated_key, answer["refresh_token"])
    expires_in = float(answer["expires_in"])  # checked by the client: 0 < expires_in <= a day
    storage.set(token_key, json.dumps({"access_token": answer["access_token"], "expires_at": now + expires_in}),
                ttl=max(1.0, expires_in))
    return answer["access_token"]


def _image(images: Any) -> str | None:
    """The smallest image at least `IMAGE_WIDTH` px wide, else the largest; None without artwork."""
    usable = [i for i in images or [] if isinstance(i, dict) and web_url(i.get("url"))]
    if not usable:
        return None
    by_width = sorted(usable, key=lambda i: i.get("width") or 0)
    wide = [i for i in by_width if (i.get("width") or 0) >= IMAGE_WIDTH]
    return (wide[0] if wide else by_width[-1])["url"]


def _answer(item: dict[str, Any], is_playing: bool, *, progress_ms: Any = None, played_at: Any = None) -> dict:
    """The widget's fields for a track or an episode (local files have no URL and no artwork)."""
    if item.get("type") == "episode":
        show = item.get("show") if isinstance(item.get("show"), dict) else {}
        artists = [name for name in (show.get("publisher") or show.get("name"),) if isinstance(name, str) and name]
        album = show.get("name")
        image = _image(item.get("images")) or _image(show.get("images"))
        kind = "episode"
    else:
        artists = [a["name"] for a in item.get("artists") or []
                   if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"]]
        album_data = item.get("album") if isinstance(item.get("album"), dict) else {}
        album = album_data.get("name") or None
        image = _image(album_data.get("images"))
        kind = "track"
    urls = item.get("external_urls") if isinstance(item.get("external_urls"), dict) else {}
    return {
        "is_playing": is_playing,
        "type": kind,
        "title": item.get("name") if isinstance(item.get("name"), str) else None,
        "artists": artists,
        "album": album if isinstance(album, str) else None,
        "image_url": image,
        "url": web_url(urls.get("spotify")),
        "progress_ms": progress_ms if isinstance(progress_ms, int) else None,
        "duration_ms": item.get("duration_ms") if isinstance(item.get("duration_ms"), int) else None,
        "played_at": played_at if isinstance(played_at, str) else None,
    }


# -- flask spotify authorize -----------------------------------------------------------------

spotify_cli = AppGroup("spotify", help="Connect the Spotify widget to your account.")
_ENV_LINE = re.compile(r"^\s*(export\s+)?SPOTIFY_REFRESH_TOKEN=.*$", re.M)


@spotify_cli.command("authorize")
@click.option("--redirect-uri", default="http://127.0.0.1:8888/callback", show_default=True,
              help="A Redirect URI registered in your Spotify app's settings.")
@click.option("--env-file", type=click.Path(dir_okay=False), default=None,
              help="Also write SPOTIFY_REFRESH_TOKEN into this env file (otherwise nothing is written).")
def authorize_command(redirect_uri: str, env_file: str | None):
    """Get a refresh token: open the printed address, approve, paste back where Spotify sent you."""
    config = current_app.config
    client_id = config["SPOTIFY_CLIENT_ID"] or click.prompt("Client ID of your Spotify app").strip()
    client_secret = config["SPOTIFY_CLIENT_SECRET"] or click.prompt("Client secret", hide_input=True).strip()
    state = secrets.token_urlsafe(16)
    url = client.authorize_url(config["SPOTIFY_ACCOUNTS_URL"], client_id, redirect_uri, SCOPES, state)
    click.echo("1. In your app at developer.spotify.com add this Redirect URI (Settings):")
    click.echo(f"     {redirect_uri}")
    click.echo("2. Open this address, log in and approve:")
    click.echo(f"     {url}")
    click.echo("3. Your browser then goes to the Redirect URI (the page may fail to load: that is fine).")
    pasted = click.prompt("Paste that whole address (or just its code)").strip()
    code = _code_from(pasted, state)
    try:
        answer = client.exchange_code(config["SPOTIFY_ACCOUNTS_URL"], client_id, client_secret, code, redirect_uri,
                                      read_timeout=config["UPSTREAM_TIMEOUT"])
    except UpstreamError as exc:
        raise click.ClickException(f"Spotify did not give a token: {exc}") from None
    refresh_token = answer.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise click.ClickException("Spotify's answer has no refresh token; run the command again")
    if env_file:
        _write_env(env_file, refresh_token)
        click.echo(f"SPOTIFY_REFRESH_TOKEN written to {env_file}.")
    else:
        click.echo("Set this in your environment (.env, Lambda settings), then restart the service:")
        click.echo(f"SPOTIFY_REFRESH_TOKEN={refresh_token}")


def _code_from(pasted: str, state: str) -> str:
    """The authorization code from a pasted redirect address (its state must match) or a bare code."""
    if "://" in pasted or pasted.startswith("?") or "code=" in pasted:
        query = parse_qs(urlsplit(pasted).query if "://" in pasted else pasted.lstrip("?"))
        if "error" in query:
            raise click.ClickException(f"Spotify answered: {query['error'][0]} (access not granted)")
        if query.get("state", [state])[0] != state:
            raise click.ClickException("the address belongs to another authorization attempt (state differs); "
                                       "use the address printed above")
        codes = query.get("code")
        if not codes:
            raise click.ClickException("no code= in that address")
        return codes[0]
    if not re.fullmatch(r"[A-Za-z0-9_\-]{10,1024}", pasted):
        raise click.ClickException("that is neither the redirect address nor a code")
    return pasted


def _write_env(path: str, refresh_token: str) -> None:
    """Set SPOTIFY_REFRESH_TOKEN in an env file (replacing any previous line; new files are 0600)."""
    line = f"SPOTIFY_REFRESH_TOKEN={refresh_token}"
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    text = _ENV_LINE.sub(lambda _: line, text, count=1) if _ENV_LINE.search(text) else (
        text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
