"""What the owner is listening to on Spotify: ``GET /api/spotify`` and ``flask spotify authorize``.

`nowplaying` holds the logic (cached, refreshed through `client`), `client` the Spotify Web API and
accounts client, `cli` the authorization walk-through, `routes` the endpoint.
"""

from __future__ import annotations

from ..core.config import Setting, http_url, integer, matching, text
from ..core.feature import Feature
from . import cli, routes

SETTINGS = (
    Setting("SPOTIFY_API_URL", "https://api.spotify.com/v1", http_url, "Spotify Web API base URL."),
    Setting("SPOTIFY_ACCOUNTS_URL", "https://accounts.spotify.com", http_url, "Spotify accounts (OAuth) base URL."),
    Setting("SPOTIFY_CLIENT_ID", "", matching(r"[A-Za-z0-9]{1,64}", "a Spotify app's client id"),
            "Client id of your Spotify app (empty: no Spotify widget)."),
    Setting("SPOTIFY_CLIENT_SECRET", "", text, "Client secret of your Spotify app.", secret=True),
    Setting("SPOTIFY_REFRESH_TOKEN", "", text, "Refresh token from `flask spotify authorize`.", secret=True),
    Setting("SPOTIFY_CACHE_TTL", "30", integer(5, 86400), "Seconds /api/spotify answers from cache."),
)

FEATURE = Feature("spotify", blueprints=((routes.bp, "/api"),), settings=SETTINGS, cli=cli.spotify_cli,
                  card="spotify", requires=("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN"))
