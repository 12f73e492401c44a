"""What the owner is listening to on Spotify, and `flask spotify authorize` to get the refresh token.

`now_playing(deps)` answers from the cache (`cache.cached`, ``SPOTIFY_CACHE_TTL``).
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
from typing import TYPE_CHECKING, Any

from ..core import cache
from ..core.config import require
from ..core.errors import ReauthorizationRequired
from ..core.upstream import UpstreamError, web_url
from . import client

if TYPE_CHECKING:
    from ..core.deps import Deps

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


def now_playing(deps: Deps) -> tuple[dict[str, Any], cache.Cached]:
    """The widget's answer and its cache result; raises `Unavailable` (not configured, reauthorize, down)."""
    client_id, _, _ = require(deps.settings, *SETTINGS)
    if cache.held_until(deps, REAUTHORIZE) is not None:
        raise _reauthorization_required()
    result = cache.cached(deps, f"spotify:now:{client_id}", deps.settings["SPOTIFY_CACHE_TTL"],
                          lambda previous: _fetch(deps, previous))
    return result.value, result


def _reauthorization_required() -> ReauthorizationRequired:
    return ReauthorizationRequired("the Spotify authorization expired; the site owner must "
                    "renew it")


def _fetch(deps: Deps, previous: cache.Entry | None) -> cache.Entry:
    cache.held(deps, "spotify")
    try:
        playing = _get(deps, "/me/player/currently-playing", {"additional_types": "track,episode"})
        if isinstance(playing, dict) and playing.get("is_playing") and isinstance(playing.get("item"), dict):
            return cache.Entry(_answer(playing["item"], True, progress_ms=playing.get("progress_ms")))
        recent = _get(deps, "/me/player/recently-played", {"limit": 1})
    except client.ReauthorizationRequired:
        log.error("Spotify refused the refresh token (it expired or was revoked): run `flask spotify authorize` "
                  "and set SPOTIFY_REFRESH_TOKEN to the token it prints")
        cache.hold(deps, REAUTHORIZE, deps.now() + cache.FAILURE_TTL)
        deps.emit("alert", "spotify_reauthorize", "Spotify refused the refresh token: run `flask spotify authorize` "
                  "and set SPOTIFY_REFRESH_TOKEN")
        raise _reauthorization_required() from None
    except UpstreamError as exc:
        if exc.status == 429 or exc.retry_after:
            cache.hold(deps, "spotify", deps.now() + (exc.retry_after or cache.FAILURE_TTL))
        raise
    items = recent.get("items") if isinstance(recent, dict) else None
    if items is None:
        raise UpstreamError("Spotify recently-played answer has no items", status=200, transient=True)
    for played in items:
        if isinstance(played, dict) and isinstance(played.get("track"), dict):
            return cache.Entry(_answer(played["track"], False, played_at=played.get("played_at")))
    return cache.Entry(dict.fromkeys(FIELDS) | {"is_playing": False, "artists": []})


def _get(deps: Deps, path: str, params: dict[str, Any]) -> Any:
    """A Web API GET with the stored access token; on a refused token, once more with a new one."""
    api = deps.client("spotify-api", client.SpotifyAPI.from_settings)
    try:
        return api.get(path, _access_token(deps), params=params)
    except client.Unauthorized:
        return api.get(path, _access_token(deps, renew=True), params=params)


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _access_token(deps: Deps, *, renew: bool = False) -> str:
    """The stored access token, or a new one when it is about to expire (or ``renew``)."""
    config = deps.settings
    storage, now = deps.storage, deps.now()
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
    answer = accounts(deps).refresh_access_token(refresh_token)
    if isinstance(answer.get("refresh_token"), str) and answer["refresh_token"] != refresh_token:
        storage.set(rotated_key, answer["refresh_token"])
    expires_in = float(answer["expires_in"])  # checked by the client: 0 < expires_in <= a day
    storage.set(token_key, json.dumps({"access_token": answer["access_token"], "expires_at": now + expires_in}),
                ttl=max(1.0, expires_in))
    return answer["access_token"]


def accounts(deps: Deps) -> client.SpotifyAccounts:
    """The app's accounts client, built from its settings (client id and secret)."""
    return deps.client("spotify-accounts", client.SpotifyAccounts.from_settings)


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
