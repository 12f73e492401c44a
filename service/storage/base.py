"""The storage contract every backend implements.

The service stores four kinds of things, and nothing else:

* **counters** — integers that only grow (`incr`, `counters`); a missing
  counter reads as 0. Counters whose key starts with ``site:`` are the hot,
  site-wide ones: a backend may spread their writes (DynamoDB shards them)
  but must read them back as one exact number.
* **values** with an optional time to live (`get`, `set`, `add`, `delete`):
  caches, locks, unique-visitor markers, tokens. ``add`` is set-if-absent;
  an expired value is absent on every backend, whether or not the backend
  has physically removed it yet.
* **rate-limit windows** (`limit`): a fixed-window counter that refuses
  instead of counting once the window is full.
* **tallies** — bounded per-key breakdowns (`Tally`, `tallies`): a key
  holds at most ``cap`` distinct members with a count each, so junk cannot
  grow storage; a member that arrives once the key is full takes the place
  of the member ranked lowest, whose count moves to `OTHER` (the
  space-saving heavy-hitters scheme, see `Tally`), so a flood of values
  seen once cannot shut out a value with more. A tally key expires ``ttl``
  seconds after its first write (the retention of daily detail). A tally keyed
  ``<series>:<YYYY-MM-DD>:<name>`` (no ``:`` in series or name) is a *daily*
  tally: `daily_tallies` reads a range of its days for several names at a
  cost that does not grow with the number of days.
* **queues** of JSON records with leases (`enqueue`, `claim`, `ack`,
  `release`, `bury`, `items`, `queue_counts`): the durable outbox.

* **logs** of JSON records (`Hit.record`, `log_read`, `fold_position`,
  `fold`): a counted page view is recorded in one, and folded later, in
  batches, into counters, markers and tallies exactly once.

`hit` combines a rate limit, a once key, a unique marker, several counters,
tallies and a log record into one atomic step, so that a backend can do a
counted page view in a single round trip (a Redis script, one SQLite
transaction, concurrent DynamoDB requests). `fold` applies a batch of log
records (as hits) exactly once: a fold that dies at any point and runs
again, or two folds at once, change nothing twice.

Every operation is atomic on its own. Backends raise `StorageError`
(chained to the driver's exception) and nothing else; they connect lazily
and reconnect by themselves after an outage. Times are Unix seconds (float);
operations that depend on the clock take an optional ``now`` so callers can
inject time, and use ``time.time()`` otherwise.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

#: Queue record states.
PENDING, DONE, DEAD = "pending", "done", "dead"
QUEUE_STATES = (PENDING, DONE, DEAD)

#: Prefix of counters that every page view touches (see module docstring).
HOT_PREFIX = "site:"

#: Seconds a log record is kept after it is written (it is folded long before: at most 48 h after its fold).
LOG_TTL = 47 * 3600

#: The member a full tally counts new values under (never a valid value: parentheses are refused in them).
OTHER = "(other)"


class StorageError(Exception):
    """Any failure of the storage backend: unreachable, timed out, refused."""


class ConfigurationError(ValueError):
    """A storage URL that names no backend or cannot be parsed."""


@dataclasses.dataclass(frozen=True)
class Limit:
    """A fixed window: at most ``max`` calls per ``window`` seconds for ``key``.

    The caller puts the window's start into ``key`` (so a new window is a new
    key); ``window`` is the key's time to live.
    """

    key: str
    max: int
    window: int


@dataclasses.dataclass(frozen=True)
class Tally:
    """Count one ``member`` of the bounded breakdown ``key``.

    The member's count grows by one if it is already there (`OTHER` always
    is) or the key holds fewer than ``cap`` members (`OTHER` not included).
    Otherwise the key is full and the member takes the place of the member
    ranked lowest (Metwally et al.'s space-saving: each member keeps an
    estimate ``n`` and what it ``inherited``; ranked by ``n``, then by its
    own count ``n - inherited``, then by name): that member's own count moves
    to `OTHER`, and the newcomer starts with ``n`` = the evicted ``n`` + 1,
    having inherited the evicted ``n``. A value counted more than
    (everything counted in the key) / ``cap`` times keeps its place. Reads
    show each member's own count (``n - inherited``), so the counts shown
    still add up to everything counted. A new key expires ``ttl`` seconds
    after this write.
    """

    key: str
    member: str
    cap: int
    ttl: int


@dataclasses.dataclass(frozen=True)
class Hit:
    """One atomic step: rate-limit, then count, then read.

    If ``once`` (key, ttl seconds) is set and its key is present, the step was
    done before (a retry of the same page view): nothing is written, the rate
    limit included, and the result says ``repeated=True``. If ``limit`` is set
    and its window is full, nothing is written (``once`` included, so a later
    retry can still count) and the result says ``allowed=False``. Otherwise
    ``once`` is stored, every counter in ``incr`` grows by one and every
    `Tally` in ``tally`` is counted; if ``unique`` (key, ttl seconds) is set
    and absent it is stored and every counter in ``unique_incr`` grows by one
    and every tally in ``unique_tally`` is counted too; ``record`` (log, JSON
    text) is appended to that log. Finally the counters in ``read`` are read
    (after the writes).
    """

    incr: Sequence[str] = ()
    limit: Limit | None = None
    once: tuple[str, int] | None = None
    unique: tuple[str, int] | None = None
    unique_incr: Sequence[str] = ()
    read: Sequence[str] = ()
    tally: Sequence[Tally] = ()
    unique_tally: Sequence[Tally] = ()
    record: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class HitResult:
    allowed: bool
    new_unique: bool
    counts: dict[str, int]
    repeated: bool = False


@dataclasses.dataclass
class QueueItem:
    """One record of a queue, as stored.

    ``ready_at`` is when the item may next be claimed: its retry time while
    pending, or the end of its lease while a worker holds it. ``token`` is the
    current lease's proof of ownership; ``ack``/``release``/``bury`` only act
    when the caller still holds it.
    """

    id: str
    queue: str
    payload: dict[str, Any]
    state: str = PENDING
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    ready_at: float = 0.0
    token: str | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def new(cls, queue: str, payload: dict[str, Any], now: float) -> QueueItem:
        """A fresh pending record, claimable at once."""
        return cls(id=new_id(now), queue=queue, payload=payload, created_at=now, updated_at=now, ready_at=now)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueItem:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def count_member(counts: dict[str, int], inherited: dict[str, int], tally: Tally) -> None:
    """Count ``tally.member`` in a tally held as ``counts`` (member -> estimate ``n``) and ``inherited``
    (member -> what it inherited), in place, by the rules of `Tally` (for backends that hold a tally as one
    value)."""
    member = tally.member
    if member in counts or member == OTHER or sum(1 for m in counts if m != OTHER) < tally.cap:
        counts[member] = counts.get(member, 0) + 1
        return
    victim = min((m for m in counts if m != OTHER), key=lambda m: (counts[m], counts[m] - inherited.get(m, 0), m))
    n = counts.pop(victim)
    counts[OTHER] = counts.get(OTHER, 0) + n - inherited.pop(victim, 0)
    counts[member], inherited[member] = n + 1, n


def new_id(now: float) -> str:
    """A unique id that sorts by creation time (ms) then randomly."""
    return f"{int(now * 1000):013x}{uuid.uuid4().hex[:16]}"


def clock(now: float | None) -> float:
    return time.time() if now is None else now


def daily_keys(series: str, names: Sequence[str], first: str, last: str) -> list[str]:
    """The daily tally keys `Storage.daily_tallies` reads, day by day (``first``..``last``, ISO dates)."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    days = [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    return [f"{series}:{day}:{name}" for day in days for name in names]


def batches(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split an iterable into lists of at most ``size`` items."""
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Storage(abc.ABC):
    """The contract. See the module docstring for the model."""

    #: URL scheme this backend serves (``sqlite``, ``redis``, ``dynamodb``).
    scheme: str = ""

    # -- counters ---------------------------------------------------------
    @abc.abstractmethod
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` (>= 0) to a counter; return its new total."""

    @abc.abstractmethod
    def counters(self, keys: Sequence[str], *, consistent: bool = True) -> dict[str, int]:
        """Read many counters at once; missing ones are 0.

        ``consistent=False`` allows a read that may miss the last second of writes (DynamoDB's
        eventually consistent read, half the cost); reads for display use it.
        """

    # -- values -------------------------------------------------------------
    @abc.abstractmethod
    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None if absent or expired."""

    @abc.abstractmethod
    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value`` (replacing any), expiring after ``ttl`` seconds if given."""

    @abc.abstractmethod
    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired; True if stored."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a value (no error if absent)."""

    # -- rate limits and page views ------------------------------------------
    @abc.abstractmethod
    def limit(self, limit: Limit) -> tuple[bool, int]:
        """Count one call against ``limit``; return (allowed, calls in window).

        A refused call is not counted.
        """

    def calls(self, limit: Limit) -> int:
        """The calls counted in ``limit``'s window now, without counting one (0 when it has none or it
        expired): e.g. how many sign-ins succeeded in a window, counted there with `limit`.

        Every backend keeps a window's count as the value under its key, which `get` reads.
        """
        return int(self.get(limit.key) or 0)

    @abc.abstractmethod
    def hit(self, hit: Hit) -> HitResult:
        """Perform a `Hit` atomically (see its docstring)."""

    # -- tallies ------------------------------------------------------------------
    @abc.abstractmethod
    def tallies(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        """Read many tallies at once: ``{key: {member: count}}``; missing or expired ones are ``{}``."""

    @abc.abstractmethod
    def daily_tallies(self, series: str, names: Sequence[str], first: str, last: str) -> dict[str, dict[str, int]]:
        """Read the daily tallies ``<series>:<day>:<name>`` of every ``name`` and every day from ``first`` to
        ``last`` (ISO dates, inclusive): ``{key: {member: count}}`` with every such key (`daily_keys`), missing
        or expired ones ``{}``.

        The number of storage calls does not grow with the days: one statement on SQLite, one round trip on
        Redis, one eventually consistent ``Query`` per name on DynamoDB (more only past 1 MB of items).
        """

    # -- logs and folds ---------------------------------------------------------
    @abc.abstractmethod
    def log_read(self, log: str, after: str | None, limit: int, *, until: str | None = None,
                 now: float | None = None) -> list[tuple[str, str]]:
        """Up to ``limit`` records ``(id, text)`` of ``log`` after the id ``after`` (None: from the
        oldest), oldest first, none past the id ``until`` if given.

        Ids are opaque strings that only grow in the order records become readable: a record never
        appears before one already read, so a fold's position is the last id it folded. (DynamoDB
        shows a record once it is a few seconds old, when no earlier write can still land.) A
        record is kept `LOG_TTL` seconds.
        """

    @abc.abstractmethod
    def fold_position(self, log: str) -> tuple[str | None, str | None]:
        """``(position, planned)``: the last id folded from ``log`` (None: nothing yet), and the end of
        a fold that started and did not finish, which the next fold must end at too (None if none)."""

    @abc.abstractmethod
    def fold(self, log: str, start: str | None, end: str, hits: Sequence[Hit]) -> bool:
        """Apply ``hits`` (the records of ``log`` after ``start`` up to ``end``, made into hits with no
        ``limit``, ``once`` or ``record``) exactly once, and move the position from ``start`` to ``end``.

        False, having changed nothing it had not already changed, when the position was not ``start``
        (another fold got there first). A fold that stopped part-way is finished by the next call with
        the same ``start`` and ``end``: what it applied is not applied again.
        """

    # -- queues ---------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, queue: str, payload: dict[str, Any], *, now: float | None = None) -> QueueItem:
        """Durably append a pending record; it is stored when this returns."""

    @abc.abstractmethod
    def claim(self, queue: str, *, lease: float, limit: int = 1, now: float | None = None) -> list[QueueItem]:
        """Lease up to ``limit`` ready pending records, oldest first.

        A record is ready when its ``ready_at`` has passed (a new record, a
        retry whose time has come, or a lease that ran out). Each claimed
        record gets a new ``token``, ``attempts`` + 1, and ``ready_at`` =
        now + ``lease``. Two concurrent claims never return the same record.
        """

    @abc.abstractmethod
    def ack(self, queue: str, item_id: str, token: str, *, now: float | None = None) -> bool:
        """Mark a leased record done; False if the lease was lost."""

    @abc.abstractmethod
    def release(
        self, queue: str, item_id: str, token: str, *, ready_at: float, error: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Give a leased record back, claimable again at ``ready_at``; False if the lease was lost.

        ``last_error`` becomes ``error`` (None clears it); `ack` keeps it, `bury` sets the reason.
        """

    @abc.abstractmethod
    def bury(self, queue: str, item_id: str, token: str, *, reason: str, now: float | None = None) -> bool:
        """Dead-letter a leased record (kept, never claimed again); False if the lease was lost."""

    @abc.abstractmethod
    def items(self, queue: str, state: str = PENDING, limit: int = 100) -> list[QueueItem]:
        """Records of ``queue`` in ``state``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    def queue_counts(self, queue: str) -> dict[str, int]:
        """Number of records per state: ``{"pending": n, "done": n, "dead": n}``."""

    # -- operations -----------------------------------------------------------
    @abc.abstractmethod
    def check(self) -> None:
        """Raise `StorageError` unless the backend answers right now."""

    @abc.abstractmethod
    def export(self) -> Iterator[dict[str, Any]]:
        """Every live record, as JSON-ready dicts (see `import_`)."""

    @abc.abstractmethod
    def import_(self, records: Iterable[dict[str, Any]]) -> int:
        """Store records produced by any backend's `export`; return how many.

        Record shapes: ``{"type": "counter", "key", "value"}`` (the counter is
        set to ``value``), ``{"type": "value", "key", "value", "expires_at"}``
        (``expires_at`` absolute or None), ``{"type": "tally", "key",
        "counts": {member: n}, "expires_at"}`` and ``{"type": "queue", "item":
        QueueItem.to_dict()}``. Importing the same export twice gives the same
        data.
        """

    def init(self) -> None:  # noqa: B027 - an optional step with a default, not part of the abstract contract
        """Create tables or schema if needed; idempotent. Default: nothing."""

    def close(self) -> None:  # noqa: B027 - an optional step with a default
        """Release connections. Default: nothing."""
