"""Fixed-window rate limits held in shared storage (so they hold across workers and Lambda instances), and
`LocalWindows` held in one process's memory where a storage write would cost too much.

A window is ``period`` seconds long and starts at a multiple of it; its key
names the window, so a new window is a new key and the old one just expires.
"""

from __future__ import annotations

import math
import threading

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


class LocalWindows:
    """Fixed windows counted in this process's memory, for a limit that must cost no storage write (a
    beacon's budget is its one log record). Each process (gunicorn worker, warm Lambda instance) counts on
    its own, so the limit a client meets is ``rate`` per process it reaches. At most ``size`` subjects are
    held: when full, the windows that ended are dropped, and if every one is current a new subject is
    refused until the window ends (a flood of addresses cannot grow memory).
    """

    def __init__(self, size: int = 10_000):
        self.size = size
        self._windows: dict[str, list[int]] = {}  # subject -> [window index, calls]
        self._lock = threading.Lock()

    def allow(self, rate: Rate, subject: str, now: float) -> bool:
        """Count one call of ``subject`` in the window ``now`` falls in; False (not counted) when it is full."""
        index = int(now // rate.period)
        with self._lock:
            entry = self._windows.get(subject)
            if entry is None or entry[0] != index:
                if entry is None and len(self._windows) >= self.size:
                    self._windows = {s: w for s, w in self._windows.items() if w[0] == index}
                    if len(self._windows) >= self.size:
                        return False
                entry = self._windows[subject] = [index, 0]
            if entry[1] >= rate.count:
                return False
            entry[1] += 1
            return True
