"""``flask spotify authorize``: walk the owner through getting the refresh token the widget needs."""

from __future__ import annotations

import os
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import click
from flask.cli import AppGroup

from ..core.deps import current

spotify_cli = AppGroup("spotify", help="Connect the Spotify widget to your account.")
_ENV_LINE = re.compile(r"^\s*(export\s+)?SPOTIFY_REFRESH_TOKEN=.*$", re.M)


@spotify_cli.command("authorize")
@click.option("--redirect-uri", default="http://127.0.0.1:8888/callback", show_default=True,
              help="A Redirect URI registered in your Spotify app's settings.")
@click.option("--env-file", type=click.Path(dir_okay=False), default=None,
              help="Also write SPOTIFY_REFRESH_TOKEN into this env file (otherwise nothing is written).")
def authorize_command(redirect_uri: str, env_file: str | None):
    """Get a refresh token: open the printed address, approve, paste back where Spotify sent you."""
    from ..core.upstream import UpstreamError
    from .client import SpotifyAccounts
    from .nowplaying import SCOPES, accounts
    deps = current()
    settings = deps.settings
    if settings["SPOTIFY_CLIENT_ID"] and settings["SPOTIFY_CLIENT_SECRET"]:
        spotify = accounts(deps)
    else:  # the app's accounts address and timeout, with the credentials asked for here
        client_id = settings["SPOTIFY_CLIENT_ID"] or click.prompt("Client ID of your Spotify app").strip()
        client_secret = settings["SPOTIFY_CLIENT_SECRET"] or click.prompt("Client secret", hide_input=True).strip()
        spotify = SpotifyAccounts.from_settings(
            {**settings, "SPOTIFY_CLIENT_ID": client_id, "SPOTIFY_CLIENT_SECRET": client_secret})
    state = secrets.token_urlsafe(16)
    url = spotify.authorize_url(redirect_uri, SCOPES, state)
    click.echo("1. In your app at developer.spotify.com add this Redirect URI (Settings):")
    click.echo(f"     {redirect_uri}")
    click.echo("2. Open this address, log in and approve:")
    click.echo(f"     {url}")
    click.echo("3. Your browser then goes to the Redirect URI (the page may fail to load: that is fine).")
    pasted = click.prompt("Paste that whole address (or just its code)").strip()
    code = _code_from(pasted, state)
    try:
        answer = spotify.exchange_code(code, redirect_uri)
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
