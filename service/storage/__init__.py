"""Storage backends behind one contract (`base.Storage`), chosen by URL scheme.

Backends import their driver (redis, boto3) only when chosen, so an app on
SQLite never loads them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import (
    DEAD,
    DONE,
    OTHER,
    PENDING,
    QUEUE_STATES,
    ConfigurationError,
    Hit,
    HitResult,
    Limit,
    QueueItem,
    Storage,
    StorageError,
    Tally,
)

SCHEMES = ("sqlite", "redis", "rediss", "dynamodb")


def open_storage(url: str, *, counter_shards: int = 4, log_settle: float = 5.0) -> Storage:
    """The backend for ``url``; raises `ConfigurationError` for an unknown or malformed URL.

    Nothing is connected yet: backends connect on first use.
    """
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # a broken address, "[::1"; the message quotes nothing of the URL, which may hold a password
        raise ConfigurationError("malformed storage URL: it does not parse as a URL") from None
    if scheme == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(url)
    if scheme in ("redis", "rediss"):
        from .redis import RedisStorage

        return RedisStorage(url)
    if scheme == "dynamodb":
        from .dynamodb import DynamoDBStorage

        return DynamoDBStorage(url, shards=counter_shards, settle=log_settle)
    raise ConfigurationError(f"unknown storage URL scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")


__all__ = [
    "DEAD", "DONE", "OTHER", "PENDING", "QUEUE_STATES", "SCHEMES", "ConfigurationError", "Hit", "HitResult", "Limit",
    "QueueItem", "Storage", "StorageError", "Tally", "open_storage",
]
