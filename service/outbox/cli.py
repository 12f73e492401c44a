"""``flask outbox deliver|list|status|requeue``: run and inspect the outbox (contact messages, the owner's notices)."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from typing import Any

import click
from flask.cli import AppGroup

from ..channels import CHANNELS
from ..core import cache, deps
from ..core.redaction import redact
from ..storage import DEAD, DONE, PENDING, QUEUE_STATES, QueueItem, Storage, StorageError

log = logging.getLogger(__name__)

outbox_cli = AppGroup("outbox", help="Deliver, list and inspect the outbox (contact messages, the owner's notices), "
                      "one record per channel.")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _summary_line(summary: dict[str, Any]) -> str:
    if not summary["configured"]:
        return ("no channel is configured (Telegram, e-mail, webhook: all not configured): messages stay in the "
                "outbox; read them with `flask outbox list`")
    line = ("delivered {delivered}, retrying {retrying}, dead-lettered {dead}, waiting behind an earlier "
            "message {deferred}".format(**summary))
    for channel, until in sorted(summary["paused"].items()):
        line += f"; {channel} delivery paused until {_when(until)}"
    return line


def _storage_or_fail() -> Storage:
    storage = deps.current().storage
    try:
        storage.check()
    except StorageError as exc:
        raise click.ClickException(f"storage is not answering: {exc}") from None
    return storage


@outbox_cli.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until SIGTERM or Ctrl-C (a compose worker); "
              "without it, deliver what is ready and exit (cron).")
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=None,
              help="Seconds between looks when idle (default: OUTBOX_POLL_SECONDS).")
def deliver_command(loop: bool, interval: float | None):
    """Send ready outbox messages, each to its channel."""
    from .delivery import deliver, work
    if not loop:
        _storage_or_fail()
        try:
            summary = deliver(deps.current())
        except StorageError as exc:
            raise click.ClickException(f"storage stopped answering: {exc}") from None
        click.echo(_summary_line(summary))
        return
    stop = threading.Event()

    def request_stop(signum, frame):  # finish the message in flight, then leave
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    log.info("outbox worker started")
    app_deps = deps.current()
    work(app_deps, stop, interval if interval is not None else app_deps.settings["OUTBOX_POLL_SECONDS"])
    log.info("outbox worker stopped")


def _error(item: QueueItem) -> str | None:
    """The record's last error as shown: redacted again, since a record stored by an older version may
    still quote a secret."""
    return redact(item.last_error) if item.last_error else None


def _item_view(item: QueueItem) -> dict[str, Any]:
    from .delivery import channel_of

    payload = item.payload
    return {"id": item.id, "state": item.state, "channel": channel_of(item), "kind": payload.get("notice") or
            payload.get("kind") or "contact", "received": _when(item.created_at), "attempts": item.attempts,
            "name": payload.get("name"), "email": payload.get("email"), "subject": payload.get("subject") or "",
            "page": payload.get("page") or "",
            "message": payload.get("message") if "message" in payload else payload.get("text"),
            "next_try": _when(item.ready_at) if item.state == PENDING else None,
            "last_error": _error(item)}


@outbox_cli.command("list")
@click.option("--state", type=click.Choice(["pending", "done", "dead", "all"]), default="all", show_default=True,
              help="pending: not delivered yet; done: delivered; dead: dead-lettered.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many messages per state, oldest first.")
@click.option("--channel", type=click.Choice(CHANNELS), default=None, help="Only this channel's records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(state: str, limit: int, channel: str | None, as_json: bool):
    """Print outbox records in full, one per channel a message went to (how you read your mail without a
    channel)."""
    from .delivery import QUEUE, channel_of
    storage = _storage_or_fail()
    states = QUEUE_STATES if state == "all" else (state,)
    items = sorted((item for s in states for item in storage.items(QUEUE, s, limit=limit)
                    if channel is None or channel_of(item) == channel), key=lambda item: (item.created_at, item.id))
    for item in items:
        view = _item_view(item)
        if as_json:
            click.echo(json.dumps(view, ensure_ascii=False))
            continue
        click.echo(f"── {view['id']}  {view['state']}  {view['channel']}  {view['received']}  "
                   f"attempts {view['attempts']}")
        if view["kind"] == "contact":
            click.echo(f"{'From:':<9} {view['name']} <{view['email']}>")
        else:
            click.echo(f"{'Notice:':<9} {item.payload.get('title') or view['kind']}")
        for label, key in (("Subject", "subject"), ("Page", "page"), ("Next try", "next_try"),
                           ("Error", "last_error")):
            if view[key]:
                click.echo(f"{label + ':':<9} {view[key]}")
        click.echo("")
        click.echo(str(view["message"]))
        click.echo("")
    if not as_json:
        click.echo(f"{len(items)} message{'' if len(items) == 1 else 's'}", err=True)


@outbox_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status_command(as_json: bool):
    """Counts per state and per channel, the oldest undelivered record, pauses and the dead letters."""
    from . import routing
    from .delivery import PENDING_SCAN, QUEUE, channel_of
    storage = _storage_or_fail()
    app_deps = deps.current()
    at = app_deps.now()
    counts = storage.queue_counts(QUEUE)
    pending = storage.items(QUEUE, PENDING, limit=PENDING_SCAN)
    dead = storage.items(QUEUE, DEAD, limit=PENDING_SCAN)
    configured = routing.configured(app_deps.settings)
    channels = {}
    for name in CHANNELS:
        pause = cache.held_until(app_deps, name)
        channels[name] = {
            "configured": name in configured,
            "pending": sum(channel_of(item) == name for item in pending),
            "dead": sum(channel_of(item) == name for item in dead),
            "paused_until": _when(pause) if pause else None,
        }
    pauses = [cache.held_until(app_deps, name) for name in CHANNELS]
    soonest_pause = min((pause for pause in pauses if pause), default=None)
    status = {
        "telegram_configured": channels["telegram"]["configured"],
        "counts": counts,
        "channels": channels,
        "paused_until": _when(soonest_pause) if soonest_pause else None,
        "oldest_pending": _item_view(pending[0]) if pending else None,
        "next_try": _when(min(item.ready_at for item in pending)) if pending else None,
        "dead": [{"id": item.id, "channel": channel_of(item), "received": _when(item.created_at),
                  "reason": _error(item)} for item in dead[:50]],
    }
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False))
        return
    click.echo(f"pending {counts[PENDING]}, delivered {counts[DONE]}, dead-lettered {counts[DEAD]}")
    if not configured:
        click.echo("channels: none configured (Telegram, e-mail, webhook: all not configured): messages stay here; "
                   "read them with `flask outbox list`")
    for name, view in channels.items():
        if not (view["configured"] or view["pending"] or view["dead"]):
            continue
        line = (f"{name}: {'configured' if view['configured'] else 'not configured'}, pending {view['pending']}, "
                f"dead-lettered {view['dead']}")
        if view["paused_until"]:
            line += f", paused until {view['paused_until']} (it failed or asked to wait)"
        click.echo(line)
    if pending:
        oldest = pending[0]
        click.echo(f"oldest pending: {oldest.id} ({channel_of(oldest)}), received "
                   f"{_duration(at - oldest.created_at)} ago, attempts {oldest.attempts}"
                   + (f", last error: {_error(oldest)}" if oldest.last_error else ""))
        soonest = min(item.ready_at for item in pending)
        click.echo("next try: " + ("now" if soonest <= at else f"in {_duration(soonest - at)}"))
    for item in dead[:50]:
        click.echo(f"dead: {item.id}  {channel_of(item)}  received {_when(item.created_at)}  {_error(item)}")


@outbox_cli.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--all-dead", is_flag=True, help="Every dead-lettered message (of --channel, if given).")
@click.option("--channel", type=click.Choice(CHANNELS), default=None,
              help="Only this channel's dead letters (after fixing its settings).")
def requeue_command(ids: tuple[str, ...], all_dead: bool, channel: str | None):
    """Send dead-lettered records again, each to the channel it failed on (after fixing its settings).

    A pending copy is made; the dead letter itself is kept. Each one is
    requeued at most once.
    """
    from .delivery import QUEUE, channel_of
    if not ids and not all_dead:
        raise click.UsageError("name message ids or use --all-dead")
    storage = _storage_or_fail()
    dead = {item.id: item for item in storage.items(QUEUE, DEAD, limit=100_000)
            if channel is None or channel_of(item) == channel}
    unknown = [item_id for item_id in ids if item_id not in dead]
    if unknown:
        where = f" on {channel}" if channel else ""
        raise click.ClickException(f"not dead-lettered{where}: {', '.join(unknown)}")
    requeued = 0
    for item_id in (sorted(dead) if all_dead else ids):
        marker = f"outbox:requeued:{item_id}"
        if not storage.add(marker, "1"):
            click.echo(f"{item_id}: requeued before, skipped", err=True)
            continue
        try:
            copy = storage.enqueue(QUEUE, {**dead[item_id].payload, "requeued_from": item_id},
                                 now=deps.current().now())
        except StorageError:
            storage.delete(marker)
            raise
        click.echo(f"{item_id}: requeued as {copy.id} ({channel_of(copy)})")
        requeued += 1
    click.echo(f"requeued {requeued}", err=True)
