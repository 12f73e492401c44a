"""``flask stats``: the owner's tables in a terminal, and the digest on demand."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from ..core.deps import current
from ..core.errors import ServiceError
from ..storage import StorageError
from . import report

stats_cli = AppGroup("stats", help="The owner's stats: top pages, referrers, campaigns; the weekly digest.")


@stats_cli.command("show")
@click.option("--range", "name", type=click.Choice(list(report.PRESETS)), default="7d", show_default=True)
@click.option("--from", "start", help="First day (YYYY-MM-DD), with --to for a custom range.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD); default today.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Compare with the previous period of the same length.")
@click.option("--top", type=click.IntRange(1, 100), default=10, show_default=True, help="Rows per table.")
@click.option("--json", "as_json", is_flag=True, help="The same report as GET /api/stats.")
def show_command(name: str, start: str | None, end: str | None, compare: bool, top: int, as_json: bool):
    """Totals, the series and the top values of every dimension, in the days of STATS_TIMEZONE.

    Values are printed with control and invisible characters escaped (a stored value cannot drive the
    terminal)."""
    from . import display
    config = current_app.config
    zone = config["STATS_TIMEZONE"]
    args = {"range": name, "compare": "previous" if compare else "none", **({"from": start} if start else {}),
            **({"to": end} if end else {})}
    try:
        span = report.parse_range(args, report.today(current().now(), zone), config["STATS_RETENTION_DAYS"], zone)
        data = report.build(current().storage, span, top=top)
    except ServiceError as exc:
        raise click.UsageError(exc.message) from None
    except StorageError as exc:
        raise click.ClickException(f"storage not answering: {exc}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2))  # JSON escapes control characters itself
        return
    compared = data["comparison"]

    def versus(change: dict | None) -> str:
        return f"  {display.short(change)}" if change else ""

    click.echo(f"{data['from']} to {data['to']} ({data['timezone']}): {data['totals']['views']:,} views, "
               f"{data['totals']['visitors']:,} visitors")
    if compared:
        click.echo(f"  against {compared['from']} to {compared['to']}: views{versus(compared['totals']['views'])}, "
                   f"visitors{versus(compared['totals']['visitors'])}"
                   + ("" if compared["complete"] else " (partly older than the retention)"))
    for bucket in data["series"]:
        days = bucket["from"] if bucket["days"] == 1 else f"{bucket['from']} to {bucket['to']}"
        click.echo(f"  {days}  {bucket['views']:>8,} views  {bucket['visitors']:>8,} visitors")
    for dimension, rows in data["tables"].items():
        click.echo(f"\n{dimension} ({data['counts'].get(dimension, 'count')})")
        for row in rows:
            click.echo(f"  {row['count']:>8,}  {display.printable(row['value'])}"
                       f"{versus(row.get('comparison', {}).get('count'))}")
        if not rows:
            click.echo("  (none)")
    click.echo("\nevents (count, visitors, conversion)")
    for row in data["events"]:
        click.echo(f"  {row['count']:>8,}  {row['visitors']:>8,}  {row['conversion']:>6.1%}  "
                   f"{display.printable(row['value'])}{versus(row.get('comparison', {}).get('count'))}")
    if not data["events"]:
        click.echo("  (none)")
    click.echo("\nreading (readings, median seconds, reached 25/50/75/100 %)")
    for row in data["reading"]:
        shares = " ".join(f"{share:>4.0%}" for share in row["scroll"].values())
        click.echo(f"  {row['readings']:>8,}  {row['median_seconds']:>7.1f}  {shares}  "
                   f"{display.printable(row['value'])}")
    if not data["reading"]:
        click.echo("  (none)")



@stats_cli.command("digest")
@click.option("--force", is_flag=True, help="Queue the latest week's now even if it was sent or is not due.")
def digest_command(force: bool):
    """Queue the weekly digest for Telegram when it is due (the worker and the schedule do this too)."""
    from . import notify
    try:
        queued = notify.send_digest(current(), force=force)
    except StorageError as exc:
        raise click.ClickException(f"storage not answering: {exc}") from None
    click.echo("digest queued" if queued else "nothing queued (not due, already sent, switched off or Telegram "
               "not configured)")


share_cli = AppGroup("share", help="Read-only share links to /stats: create, list, revoke.")
stats_cli.add_command(share_cli)


@share_cli.command("create")
@click.option("--label", default="", help="A note to tell links apart (at most 60 characters).")
def share_create_command(label: str):
    """Make a share link and print it (shown once: only its hash is kept)."""
    from . import sharing
    try:
        link, secret = sharing.create(current().storage, current().now(), label)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    except StorageError as exc:
        raise click.ClickException(f"storage not answering: {exc}") from None
    click.echo(f"{sharing.url(current_app.config['SITE_URL'], secret)}  (id {link.id})")


@share_cli.command("list")
def share_list_command():
    """The live share links: id, when made, label (never the links themselves)."""
    from . import sharing
    try:
        found = sharing.links(current().storage)
    except StorageError as exc:
        raise click.ClickException(f"storage not answering: {exc}") from None
    for link in found:
        shown = link.public()
        click.echo(f"{shown['id']}  {shown['created']}  {shown['label']}")
    if not found:
        click.echo("no share links")


@share_cli.command("revoke")
@click.argument("link_id", metavar="ID")
def share_revoke_command(link_id: str):
    """Revoke the share link ID (see `list`): it answers 404 from now on."""
    from . import sharing
    try:
        sharing.revoke(current().storage, link_id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    except StorageError as exc:
        raise click.ClickException(f"storage not answering: {exc}") from None
    click.echo(f"revoked {link_id}")
