"""SQLite backend: the embedded default, one file, no server.

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``
(SQLAlchemy's convention: the path is what follows the third slash).

Safe across gunicorn worker processes and threads: every process and thread
opens its own connection (after the fork), the database runs in WAL mode with
``synchronous=FULL`` (a committed outbox message survives a power cut), and
every operation is one ``BEGIN IMMEDIATE`` transaction, so read-modify-write
steps are serialised by SQLite's write lock.

Writers take that lock first, an ``flock`` of a file beside the database
(``<path>-writer.lock``), one open file per connection. SQLite's own busy
handler waits too coarsely: a writer that finds the lock taken sleeps (up to
100 ms a time) and tries again, while writers that never had to wait take
the lock again and again, so under a burst one writer could lose every try
for its whole busy timeout although each transaction takes milliseconds
(measured: 1.3 s waits behind 5 ms transactions, "database is locked" at
2 s). The kernel instead hands a released ``flock`` to a blocked waiter.
A blocking ``flock`` cannot time out, so a writer that finds it taken waits
in a thread of its own for at most the busy timeout (1.5 s) and then gives
up with `StorageError` (`_take`): a writer stuck inside a transaction costs
the others a 503, never a hang (under gevent, a blocking ``flock`` in the
request's greenlet would also stop every other request of the worker
process). Each process's first connection
switches a new file to WAL and creates the tables under the same lock:
SQLite refuses concurrent WAL switches at once rather than wait. The busy
timeout also bounds SQLite's own wait for writers outside this lock (the
``sqlite3`` shell, another program).

SQLite has no TTL: values store ``expires_at`` and every read and
conditional write compares it with the clock; expired rows are purged now
and then.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from .base import (
    DEAD,
    DONE,
    LOG_TTL,
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
    batches,
    clock,
    daily_keys,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_items (
    id TEXT PRIMARY KEY, queue TEXT NOT NULL, state TEXT NOT NULL, payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    ready_at REAL NOT NULL, token TEXT, last_error TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tallies (
    key TEXT NOT NULL, member TEXT NOT NULL, n INTEGER NOT NULL, expires_at REAL, inherited INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, log TEXT NOT NULL, text TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_items_ready ON queue_items (queue, state, ready_at);
CREATE INDEX IF NOT EXISTS log_records_order ON log_records (log, seq);
"""

_QUEUE_COLUMNS = "id, queue, payload, state, attempts, created_at, updated_at, ready_at, token, last_error"
_PURGE_EVERY = 500  # writes between purges of expired values


def path_from_url(url: str) -> str:
    parts = urlsplit(url)
    if not url.startswith("sqlite:///") or parts.netloc or len(parts.path) < 2 or parts.query:
        raise ConfigurationError("malformed SQLite URL: expected sqlite:///path/to/file.db")
    return parts.path[1:]


_BUSY_TIMEOUT = 1.5  # under the API's 2 s bound for a 503


#: Every table and index `SCHEMA` makes.
_SCHEMA_NAMES = frozenset(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))


def _is_prepared(conn: sqlite3.Connection) -> bool:
    """Whether the file is in WAL mode and holds the whole schema (two reads, no lock)."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        return False
    found = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    return found >= _SCHEMA_NAMES


class _GaveUp(OSError):
    """Another writer held the lock for the whole wait; the open lock file is the late waiter's to close."""


def _take(lock_file, seconds: float) -> None:
    """Takes the ``flock`` of the open ``lock_file`` within ``seconds``; raises `_GaveUp` (an `OSError`, so a
    `StorageError` in `_tx`) when another writer held it all that time.

    Free, it is taken at once. Taken, the wait is a blocking ``flock`` in a thread of its own: the kernel gives
    the lock to a waiter as it is released, which keeps the queue fair (a waiter that polls comes back to find
    the releasing thread has taken it again). A blocking ``flock`` cannot time out, so the caller waits for the
    thread instead; when it gives up, the thread lets the lock go as soon as it gets it and closes the file, and
    the caller must go on with a new open file (a lock belongs to an open file).
    """
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    first: dict[str, str] = {}  # dict.setdefault is atomic: the first of the two to get here decides

    def wait() -> None:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if first.setdefault("who", "lock") != "lock":
            lock_file.close()  # the caller gave up: let the lock go

    if not _wait_in_thread(wait, seconds) and first.setdefault("who", "caller") == "caller":
        raise _GaveUp(f"the writer lock was held by another writer for more than {seconds:g} s")


def _wait_in_thread(work, seconds: float) -> bool:
    """Runs ``work()`` in an operating-system thread; whether it finished within ``seconds``. Under gevent that is
    the hub's thread pool (a blocking call in a greenlet would stop every request of the worker process)."""
    if "gevent" in sys.modules:
        from gevent import get_hub, monkey

        if monkey.is_module_patched("threading"):
            from gevent import Timeout

            try:
                get_hub().threadpool.spawn(work).get(timeout=seconds)
                return True
            except Timeout:
                return False
    finished = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            finished.set()

    # A thread per wait, not a pool: waits happen only under contention, and a pool made before a fork has no
    # threads in the child.
    threading.Thread(target=run, name="sqlite-writer-lock", daemon=True).start()
    if not finished.wait(seconds):
        return False
    if failure:
        raise failure[0]
    return True


class SQLiteStorage(Storage):
    scheme = "sqlite"

    def __init__(self, url: str, *, busy_timeout: float = _BUSY_TIMEOUT):
        self.path = path_from_url(url)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._writes = 0
        self._prepared_pid = 0  # the process that switched the file to WAL and made the tables (`_prepare`)

    # -- connections ------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            # per connection: flock locks belong to an open file, so threads queue like processes do
            writer_lock = open(f"{self.path}-writer.lock", "a")  # noqa: SIM115 - lives as long as the connection
            if self._prepared_pid != os.getpid():
                self._prepare(conn, writer_lock)  # a _GaveUp leaves this connection unused
                self._prepared_pid = os.getpid()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._local.conn, self._local.pid, self._local.writer_lock = conn, os.getpid(), writer_lock
        return conn

    @staticmethod
    def _prepare(conn: sqlite3.Connection, writer_lock) -> None:
        """Switch the file to WAL (the file keeps it) and create the tables: once per process, not per connection
        (under gevent every greenlet opens its own). Both are writes, so they queue on the writer lock: unqueued,
        processes opening a new file at once were refused at once with "database is locked" (SQLite does not
        wait when waiting could deadlock). A file already in WAL mode with every table and index is left
        alone without the lock: a process's first request may be a read (health), which must not wait for a
        writer."""
        if _is_prepared(conn):
            return
        _take(writer_lock, 2 * _BUSY_TIMEOUT)  # another process may be in the middle of the file's first write
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            if "inherited" not in {row[1] for row in conn.execute("PRAGMA table_info(tallies)")}:
                conn.execute("ALTER TABLE tallies ADD COLUMN inherited INTEGER NOT NULL DEFAULT 0")  # older files
        finally:
            fcntl.flock(writer_lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite error becomes StorageError."""
        try:
            conn = self._connection()
            writer_lock = self._local.writer_lock
            try:
                _take(writer_lock, self.busy_timeout)  # wait here, not in SQLite's coarse busy handler
            except _GaveUp:
                self._local.writer_lock = open(writer_lock.name, "a")  # noqa: SIM115 - as in _connection
                raise
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                fcntl.flock(writer_lock, fcntl.LOCK_UN)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"SQLite: {exc}") from exc
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._purge()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite: {exc}") from exc

    def _purge(self) -> None:
        with contextlib.suppress(StorageError, sqlite3.Error):
            conn, now = self._connection(), time.time()
            conn.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            conn.execute("DELETE FROM tallies WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            conn.execute("DELETE FROM log_records WHERE expires_at <= ?", (now,))

    # -- counters ------------------------------------------------------------------
    @staticmethod
    def _incr(conn: sqlite3.Connection, key: str, amount: int) -> int:
        return conn.execute(
            "INSERT INTO counters (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value RETURNING value",
            (key, amount),
        ).fetchone()[0]

    @staticmethod
    def _counters(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, int]:
        result = dict.fromkeys(keys, 0)
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # stay under SQLite's variable limit
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in conn.execute(f"SELECT key, value FROM counters WHERE key IN ({marks})", chunk):
                result[key] = value
        return result

    def incr(self, key: str, amount: int = 1) -> int:
        with self._tx() as conn:
            return self._incr(conn, key, amount)

    def counters(self, keys: Sequence[str], *, consistent: bool = True) -> dict[str, int]:
        try:
            return self._counters(self._connection(), keys)
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite: {exc}") from exc

    # -- values ----------------------------------------------------------------------
    @staticmethod
    def _live(conn: sqlite3.Connection, key: str, now: float) -> tuple[str, float | None] | None:
        row = conn.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            return None
        return row

    @staticmethod
    def _put(conn: sqlite3.Connection, key: str, value: str, expires_at: float | None) -> None:
        conn.execute(
            "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            (key, value, expires_at),
        )

    def get(self, key: str) -> str | None:
        rows = self._read("SELECT value, expires_at FROM kv WHERE key = ?", (key,))
        if not rows or (rows[0][1] is not None and rows[0][1] <= time.time()):
            return None
        return rows[0][0]

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        with self._tx() as conn:
            self._put(conn, key, value, None if ttl is None else time.time() + ttl)

    def _add(self, conn: sqlite3.Connection, key: str, value: str, ttl: float | None) -> bool:
        now = time.time()
        if self._live(conn, key, now) is not None:
            return False
        self._put(conn, key, value, None if ttl is None else now + ttl)
        return True

    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        with self._tx() as conn:
            return self._add(conn, key, value, ttl)

    def delete(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    # -- rate limits and page views --------------------------------------------------------
    def _limit(self, conn: sqlite3.Connection, limit: Limit) -> tuple[bool, int]:
        now = time.time()
        row = self._live(conn, limit.key, now)
        count, expires_at = (int(row[0]), row[1]) if row else (0, now + limit.window)
        if count >= limit.max:
            return False, count
        self._put(conn, limit.key, str(count + 1), expires_at)
        return True, count + 1

    def limit(self, limit: Limit) -> tuple[bool, int]:
        with self._tx() as conn:
            return self._limit(conn, limit)

    def hit(self, hit: Hit) -> HitResult:
        with self._tx() as conn:
            return self._hit(conn, hit)

    def _hit(self, conn: sqlite3.Connection, hit: Hit) -> HitResult:
        if hit.once is not None and self._live(conn, hit.once[0], time.time()) is not None:
            return HitResult(True, False, self._counters(conn, hit.read), repeated=True)
        if hit.limit is not None and not self._limit(conn, hit.limit)[0]:
            return HitResult(False, False, self._counters(conn, hit.read))
        if hit.once is not None:
            self._add(conn, hit.once[0], "1", hit.once[1])
        for key in hit.incr:
            self._incr(conn, key, 1)
        for tally in hit.tally:
            self._tally(conn, tally)
        new = False
        if hit.unique is not None:
            new = self._add(conn, hit.unique[0], "1", hit.unique[1])
            if new:
                for key in hit.unique_incr:
                    self._incr(conn, key, 1)
                for tally in hit.unique_tally:
                    self._tally(conn, tally)
        if hit.record is not None:
            conn.execute("INSERT INTO log_records (log, text, expires_at) VALUES (?, ?, ?)",
                         (hit.record[0], hit.record[1], time.time() + LOG_TTL))
        return HitResult(True, new, self._counters(conn, hit.read))

    # -- logs and folds ----------------------------------------------------------------------
    # A record's id is its row's AUTOINCREMENT number, given inside the writer's transaction: ids grow in
    # commit order, so a record is readable at once and never appears behind one already read.
    def log_read(self, log: str, after: str | None, limit: int, *, until: str | None = None,
                 now: float | None = None) -> list[tuple[str, str]]:
        rows = self._read("SELECT seq, text FROM log_records WHERE log = ? AND seq > ? AND seq <= ? "
                          "AND expires_at > ? ORDER BY seq LIMIT ?",
                          (log, int(after or 0), int(until) if until else 2**62, clock(now), limit))
        return [(f"{seq:020d}", text) for seq, text in rows]

    def fold_position(self, log: str) -> tuple[str | None, str | None]:
        return self.get(f"fold:{log}"), None

    def fold(self, log: str, start: str | None, end: str, hits: Sequence[Hit]) -> bool:
        """One transaction: the position is checked, the hits applied and the position moved together."""
        with self._tx() as conn:
            position = self._live(conn, f"fold:{log}", time.time())
            if (position[0] if position else None) != start:
                return False
            for hit in hits:
                self._hit(conn, hit)
            self._put(conn, f"fold:{log}", end, None)
            return True

    # -- tallies ---------------------------------------------------------------------------
    @staticmethod
    def _tally(conn: sqlite3.Connection, tally: Tally) -> None:
        now, key, member = time.time(), tally.key, tally.member
        conn.execute("DELETE FROM tallies WHERE key = ? AND expires_at <= ?", (key, now))
        expires_at = conn.execute("SELECT MIN(expires_at) FROM tallies WHERE key = ?", (key,)).fetchone()[0]
        expires_at = expires_at if expires_at is not None else now + tally.ttl
        known = member == OTHER or conn.execute("SELECT 1 FROM tallies WHERE key = ? AND member = ?",
                                                (key, member)).fetchone() is not None
        if not known:
            held = conn.execute("SELECT COUNT(*) FROM tallies WHERE key = ? AND member != ?",
                                (key, OTHER)).fetchone()[0]
            if held >= tally.cap:  # full: the member ranked lowest gives its place up (see `Tally`)
                victim, n, inherited = conn.execute(
                    "SELECT member, n, inherited FROM tallies WHERE key = ? AND member != ? "
                    "ORDER BY n, n - inherited, member LIMIT 1", (key, OTHER)).fetchone()
                conn.execute("DELETE FROM tallies WHERE key = ? AND member = ?", (key, victim))
                conn.execute("INSERT INTO tallies (key, member, n, expires_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (key, member) DO UPDATE SET n = n + excluded.n",
                             (key, OTHER, n - inherited, expires_at))
                conn.execute("INSERT INTO tallies (key, member, n, expires_at, inherited) VALUES (?, ?, ?, ?, ?)",
                             (key, member, n + 1, expires_at, n))
                return
        conn.execute("INSERT INTO tallies (key, member, n, expires_at) VALUES (?, ?, 1, ?) "
                     "ON CONFLICT (key, member) DO UPDATE SET n = n + 1", (key, member, expires_at))

    def tallies(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {key: {} for key in keys}
        unique, now = list(dict.fromkeys(keys)), time.time()
        for start in range(0, len(unique), 500):  # stay under SQLite's variable limit
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, member, n in self._read(f"SELECT key, member, n - inherited FROM tallies WHERE key IN ({marks}) "
                                             "AND (expires_at IS NULL OR expires_at > ?)", (*chunk, now)):
                result[key][member] = n
        return result

    def daily_tallies(self, series: str, names: Sequence[str], first: str, last: str) -> dict[str, dict[str, int]]:
        # one range scan of the primary key: the keys of these days sort together (``;`` follows ``:``)
        result: dict[str, dict[str, int]] = {key: {} for key in daily_keys(series, names, first, last)}
        for key, member, n in self._read("SELECT key, member, n - inherited FROM tallies WHERE key >= ? AND key < ? "
                                         "AND (expires_at IS NULL OR expires_at > ?)",
                                         (f"{series}:{first}:", f"{series}:{last};", time.time())):
            if key in result:
                result[key][member] = n
        return result

    # -- queues ----------------------------------------------------------------------------
    @staticmethod
    def _item(row: tuple) -> QueueItem:
        (id_, queue, payload, state, attempts, created_at, updated_at, ready_at, token, last_error) = row
        return QueueItem(id=id_, queue=queue, payload=json.loads(payload), state=state, attempts=attempts,
                         created_at=created_at, updated_at=updated_at, ready_at=ready_at, token=token,
                         last_error=last_error)

    @staticmethod
    def _insert(conn: sqlite3.Connection, item: QueueItem) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO queue_items ({_QUEUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.id, item.queue, json.dumps(item.payload), item.state, item.attempts, item.created_at,
             item.updated_at, item.ready_at, item.token, item.last_error),
        )

    def enqueue(self, queue: str, payload: dict[str, Any], *, now: float | None = None) -> QueueItem:
        item = QueueItem.new(queue, payload, clock(now))
        with self._tx() as conn:
            self._insert(conn, item)
        return item

    def claim(self, queue: str, *, lease: float, limit: int = 1, now: float | None = None) -> list[QueueItem]:
        now = clock(now)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {_QUEUE_COLUMNS} FROM queue_items WHERE queue = ? AND state = ? AND ready_at <= ? "
                "ORDER BY created_at, id LIMIT ?", (queue, PENDING, now, limit)).fetchall()
            claimed = []
            for row in rows:
                item = self._item(row)
                item.token, item.attempts, item.ready_at, item.updated_at = (
                    uuid.uuid4().hex, item.attempts + 1, now + lease, now)
                conn.execute("UPDATE queue_items SET token = ?, attempts = ?, ready_at = ?, updated_at = ? "
                             "WHERE id = ?", (item.token, item.attempts, item.ready_at, now, item.id))
                claimed.append(item)
            return claimed

    def _settle(self, queue: str, item_id: str, token: str, sets: str, params: tuple) -> bool:
        with self._tx() as conn:
            cursor = conn.execute(
                f"UPDATE queue_items SET {sets} WHERE id = ? AND queue = ? AND state = ? AND token = ?",
                (*params, item_id, queue, PENDING, token))
            return cursor.rowcount == 1

    def ack(self, queue: str, item_id: str, token: str, *, now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, "state = ?, token = NULL, updated_at = ?", (DONE, clock(now)))

    def release(self, queue: str, item_id: str, token: str, *, ready_at: float, error: str | None = None,
                now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, "ready_at = ?, last_error = ?, token = NULL, updated_at = ?",
                            (ready_at, error, clock(now)))

    def bury(self, queue: str, item_id: str, token: str, *, reason: str, now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, "state = ?, last_error = ?, token = NULL, updated_at = ?",
                            (DEAD, reason, clock(now)))

    def items(self, queue: str, state: str = PENDING, limit: int = 100) -> list[QueueItem]:
        rows = self._read(f"SELECT {_QUEUE_COLUMNS} FROM queue_items WHERE queue = ? AND state = ? "
                          "ORDER BY created_at, id LIMIT ?", (queue, state, limit))
        return [self._item(row) for row in rows]

    def queue_counts(self, queue: str) -> dict[str, int]:
        counts = dict.fromkeys(QUEUE_STATES, 0)
        rows = self._read("SELECT state, COUNT(*) FROM queue_items WHERE queue = ? GROUP BY state", (queue,))
        counts.update(dict(rows))
        return counts

    # -- operations ------------------------------------------------------------------------
    def check(self) -> None:
        self._read("SELECT 1")

    def init(self) -> None:
        self._connection()

    def export(self) -> Iterator[dict[str, Any]]:
        for key, value in self._read("SELECT key, value FROM counters ORDER BY key"):
            yield {"type": "counter", "key": key, "value": value}
        now = time.time()
        for key, value, expires_at in self._read("SELECT key, value, expires_at FROM kv ORDER BY key"):
            if expires_at is None or expires_at > now:
                yield {"type": "value", "key": key, "value": value, "expires_at": expires_at}
        tallies: dict[str, dict[str, Any]] = {}
        for key, member, n, expires_at in self._read("SELECT key, member, n - inherited, expires_at FROM tallies "
                                                     "WHERE expires_at IS NULL OR expires_at > ? ORDER BY key, member",
                                                     (now,)):
            record = tallies.setdefault(key, {"type": "tally", "key": key, "counts": {}, "expires_at": expires_at})
            record["counts"][member] = n
        yield from tallies.values()
        for row in self._read(f"SELECT {_QUEUE_COLUMNS} FROM queue_items ORDER BY queue, created_at, id"):
            yield {"type": "queue", "item": self._item(row).to_dict()}

    def import_(self, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        for batch in batches(records, 500):
            with self._tx() as conn:
                for record in batch:
                    kind = record.get("type")
                    if kind == "counter":
                        conn.execute("INSERT OR REPLACE INTO counters (key, value) VALUES (?, ?)",
                                     (record["key"], int(record["value"])))
                    elif kind == "value":
                        self._put(conn, record["key"], str(record["value"]), record.get("expires_at"))
                    elif kind == "tally":
                        conn.execute("DELETE FROM tallies WHERE key = ?", (record["key"],))
                        conn.executemany("INSERT INTO tallies (key, member, n, expires_at) VALUES (?, ?, ?, ?)",
                                         [(record["key"], member, int(n), record.get("expires_at"))
                                          for member, n in record["counts"].items()])
                    elif kind == "queue":
                        self._insert(conn, QueueItem.from_dict(record["item"]))
                    else:
                        raise StorageError(f"unknown record type {kind!r}")
                    count += 1
        return count

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.writer_lock.close()
            self._local.conn = None
