"""The owner's stats: top pages, referrers and campaigns per UTC day, a private /stats page,
/api/stats (JSON, CSV), ``flask stats``, and the weekly Telegram digest and alerts.

Counting (`counting`) happens inside the visitor counter's one storage step;
reading (`report`) is bounded per request; access (`access`) is the owner's
token unless ``STATS_PUBLIC``; `notify` sends the digest and alerts through
the outbox.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the page, the API (under ``/api``) and the ``flask stats`` commands."""
    from .cli import stats_cli
    from .routes import api, page

    app.register_blueprint(page)
    app.register_blueprint(api, url_prefix="/api")
    app.cli.add_command(stats_cli)
