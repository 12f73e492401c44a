"""``flask storage init|check|export|import``: create, check and move the configured storage."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from ..storage import StorageError
from .db import get_storage

storage_cli = AppGroup("storage", help="Create, check, export and import the configured storage.")


def _fail(message: str) -> None:
    raise click.ClickException(message)


@storage_cli.command("init")
def init_command():
    """Create the SQLite schema or the DynamoDB table (with TTL); safe to run again."""
    storage = get_storage()
    try:
        storage.init()
        storage.check()
    except StorageError as exc:
        _fail(f"storage init failed: {exc}")
    click.echo(f"storage ready ({storage.scheme})", err=True)


@storage_cli.command("check")
def check_command():
    """Exit 0 when the storage answers, 1 otherwise."""
    storage = get_storage()
    try:
        storage.check()
    except StorageError as exc:
        _fail(f"storage does not answer: {exc}")
    click.echo(f"storage ok ({storage.scheme})")


@storage_cli.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8"))
def export_command(file):
    """Write every record as JSON Lines to FILE (- for stdout)."""
    count = 0
    try:
        for record in get_storage().export():
            file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
            if count % 1000 == 0:
                click.echo(f"exported {count} records...", err=True)
    except StorageError as exc:
        _fail(f"export failed after {count} records: {exc}")
    click.echo(f"exported {count} records", err=True)


@storage_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def import_command(file):
    """Read JSON Lines from FILE (- for stdin), as written by `export`, into the storage."""
    def records():
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                _fail(f"line {number}: not JSON ({exc.msg})")
            if not isinstance(record, dict) or record.get("type") not in ("counter", "value", "tally", "queue"):
                _fail(f"line {number}: not an exported record")
            if number % 1000 == 0:
                click.echo(f"read {number} lines...", err=True)
            yield record
    try:
        count = get_storage().import_(records())
    except (StorageError, KeyError, TypeError, ValueError) as exc:
        _fail(f"import failed: {exc}")
    click.echo(f"imported {count} records", err=True)
