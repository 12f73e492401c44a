"""Fixed-window rate limits held in shared storage (so they hold across workers and Lambda instances).

A window is ``period`` seconds long and starts at a multiple of it; its key
names the window, so a new window is a new key and the old one just expires.
"""

from __future__ import annotations

import math

from ..storage import Limit, Storage
from .config import Rate
from .errors import RateLimited


def window(rate: Rate, name: str, subject: str, now: float) -> Limit:
    """The `Limit` of the window ``now`` falls in, for ``subject`` under rule ``name``."""
    index = int(now // rate.period)
    return Limit(key=f"rl:{name}:{subject}:{index}", max=rate.count, window=rate.period)


def retry_after(rate: Rate, now: float) -> int:
    """Whole seconds until the current window ends (at least 1)."""
    return max(1, math.ceil((int(now // rate.period) + 1) * rate.period - now))


def too_many(rate: Rate, now: float, message: str) -> RateLimited:
    seconds = retry_after(rate, now)
    return RateLimited(message, retry_after=seconds)


def enforce(storage: Storage, rate: Rate | None, name: str, subject: str, now: float, message: str) -> None:
    """Count one call; raise a `RateLimited` error with ``Retry-After`` when the window is full."""
    if rate is None:
        return
    allowed, _ = storage.limit(window(rate, name, subject, now))
    if not allowed:
        raise too_many(rate, now, message)
