"""``flask visitors fold``: fold recorded views now (cron, or before an export)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..core.deps import current
from ..storage import StorageError
from . import counter

visitors_cli = AppGroup("visitors", help="The visitor counter: fold recorded views.")


@visitors_cli.command("fold")
def fold_command():
    """Fold every recorded view into unique visitors, the daily series and the stats (the worker and the
    Lambda schedule do this every few seconds or every minute)."""
    try:
        folded = counter.fold(current(), rounds=10_000)
    except StorageError as exc:
        raise click.ClickException(f"storage stopped answering: {exc}") from None
    click.echo(f"folded {folded} recorded views")
