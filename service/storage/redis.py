"""Redis backend: the self-hosted store (docker compose).

URL: ``redis://[:password@]host:port/db`` or ``rediss://`` for TLS; optional
query ``?prefix=`` (default ``vitae:``) namespaces every key so one Redis can
serve several sites.

Keys (after the prefix): ``c:<key>`` counters (strings for INCRBY),
``v:<key>`` values (strings with a PX expiry: Redis expires them itself),
``t:<key>`` tallies (a hash of member -> estimate, with a PX expiry) and
``ti:<key>`` what members inherited (a hash, expiring with it; see `Tally`),
``l:<log>`` logs (streams; see `log_read`),
and per queue ``q:<queue>:i:<id>`` (a hash per record),
``q:<queue>:pending`` (sorted set scored by ``ready_at``) and
``q:<queue>:done`` / ``q:<queue>:dead`` (sorted sets scored by creation).
Multi-key steps run as Lua scripts, so each is atomic and one round trip.
Connect timeout 0.5 s, socket timeout 0.75 s, no retries; redis-py
reconnects on the next call after an outage.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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
    batches,
    clock,
    daily_keys,
)


def _script(name: str) -> str:
    """The Lua source of ``lua/<name>.lua`` beside this module (what each script takes and returns is
    written at the top of its file)."""
    with open(os.path.join(os.path.dirname(__file__), "lua", f"{name}.lua"), encoding="utf-8") as handle:
        return handle.read()


_LIMIT = _script("limit")
_HIT = _script("hit")
_CLAIM = _script("claim")
_SETTLE = _script("settle")


def client_from_url(url: str) -> tuple[redis.Redis, str]:
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigurationError("malformed Redis URL: expected redis://[:password@]host:port/db")
        parts.port  # noqa: B018 - raises on a non-numeric port
        prefix = parse_qs(parts.query).get("prefix", ["vitae:"])[0]
        base = url.split("?", 1)[0]
        # No retries (redis-py nests its default ones in connect and command: seconds of waiting) and
        # short timeouts: a Redis that hangs becomes a 503 in under a second; connections idle
        # for 30 s are pinged before use, so a restarted server is picked up again at once.
        client = redis.Redis.from_url(base, socket_timeout=0.75, socket_connect_timeout=0.5,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=30,
                                      decode_responses=True)
    except ConfigurationError:
        raise
    except ValueError as exc:  # urllib's and redis-py's messages quote a part at most, never the URL
        raise ConfigurationError(f"malformed Redis URL: {exc}") from None
    return client, prefix


def _stream_id(at: float) -> str:
    """The smallest stream id of an entry added at ``at`` (Unix seconds)."""
    return f"{int(at * 1000)}-0"


def _own_counts(counts: dict[str, str], inherited: dict[str, str]) -> dict[str, int]:
    """A tally's members with their own counts: the estimate less what the member inherited (see `Tally`)."""
    return {member: int(n) - int(inherited.get(member, 0)) for member, n in counts.items()}


def _fields(item: QueueItem) -> dict[str, str]:
    return {"id": item.id, "queue": item.queue, "payload": json.dumps(item.payload), "state": item.state,
            "attempts": str(item.attempts), "created_at": repr(item.created_at),
            "updated_at": repr(item.updated_at), "ready_at": repr(item.ready_at), "token": item.token or "",
            "last_error": item.last_error or ""}


def _item(fields: dict[str, str]) -> QueueItem:
    return QueueItem(id=fields["id"], queue=fields["queue"], payload=json.loads(fields["payload"]),
                     state=fields["state"], attempts=int(fields["attempts"]),
                     created_at=float(fields["created_at"]), updated_at=float(fields["updated_at"]),
                     ready_at=float(fields["ready_at"]), token=fields.get("token") or None,
                     last_error=fields.get("last_error") or None)


class RedisStorage(Storage):
    scheme = "redis"

    def __init__(self, url: str):
        self.client, self.prefix = client_from_url(url)
        self._limit_script = self.client.register_script(_LIMIT)
        self._hit_script = self.client.register_script(_HIT)
        self._claim_script = self.client.register_script(_CLAIM)
        self._settle_script = self.client.register_script(_SETTLE)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StorageError(f"Redis: {exc}") from exc

    def _c(self, key: str) -> str:
        return f"{self.prefix}c:{key}"

    def _v(self, key: str) -> str:
        return f"{self.prefix}v:{key}"

    def _t(self, key: str) -> str:
        return f"{self.prefix}t:{key}"

    def _ti(self, key: str) -> str:
        return f"{self.prefix}ti:{key}"

    def _l(self, log: str) -> str:
        return f"{self.prefix}l:{log}"

    def _q(self, queue: str, part: str) -> str:
        return f"{self.prefix}q:{queue}:{part}"

    # -- counters ------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        return int(self._call(self.client.incrby, self._c(key), amount))

    def counters(self, keys: Sequence[str], *, consistent: bool = True) -> dict[str, int]:
        if not keys:
            return {}
        values = self._call(self.client.mget, [self._c(k) for k in keys])
        return {key: int(value or 0) for key, value in zip(keys, values, strict=True)}

    # -- values --------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        return self._call(self.client.get, self._v(key))

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._call(self.client.set, self._v(key), value, px=None if ttl is None else max(1, int(ttl * 1000)))

    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        px = None if ttl is None else max(1, int(ttl * 1000))
        return bool(self._call(self.client.set, self._v(key), value, nx=True, px=px))

    def delete(self, key: str) -> None:
        self._call(self.client.delete, self._v(key))

    # -- rate limits and page views -----------------------------------------------
    def limit(self, limit: Limit) -> tuple[bool, int]:
        allowed, count = self._call(self._limit_script, keys=[self._v(limit.key)],
                                    args=[limit.max, limit.window * 1000])
        return bool(allowed), int(count)

    def hit(self, hit: Hit) -> HitResult:
        allowed, new, repeated, *values = self._call(self._hit_script, *self._hit_call(hit))
        return HitResult(bool(allowed), bool(new), dict(zip(hit.read, (int(v) for v in values), strict=True)),
                         repeated=bool(repeated))

    def _hit_call(self, hit: Hit) -> tuple[list[str], list]:
        """The hit script's keys and arguments for ``hit``."""
        keys = [self._v(hit.limit.key) if hit.limit else self._v(""),
                self._v(hit.unique[0]) if hit.unique else self._v(""),
                *(self._c(k) for k in hit.incr), *(self._c(k) for k in hit.unique_incr),
                *(self._c(k) for k in hit.read), *(self._t(t.key) for t in (*hit.tally, *hit.unique_tally)),
                *(self._ti(t.key) for t in (*hit.tally, *hit.unique_tally)),
                self._l(hit.record[0]) if hit.record else self._l(""),
                self._v(hit.once[0]) if hit.once else self._v("")]
        args = [1 if hit.limit else 0, hit.limit.max if hit.limit else 0,
                hit.limit.window * 1000 if hit.limit else 0, 1 if hit.unique else 0,
                hit.unique[1] * 1000 if hit.unique else 0, len(hit.incr), len(hit.unique_incr), len(hit.read),
                len(hit.tally), len(hit.unique_tally), 1 if hit.once else 0,
                hit.once[1] * 1000 if hit.once else 0, OTHER]
        for tally in (*hit.tally, *hit.unique_tally):
            args += [tally.member, tally.cap, tally.ttl * 1000]
        args += [1 if hit.record else 0, hit.record[1] if hit.record else "", _stream_id(time.time() - LOG_TTL)]
        return keys, args

    # -- logs and folds ------------------------------------------------------------------
    # A log is a Redis stream: the server gives ids in the order entries are added, so a record is
    # readable at once and never appears behind one already read; entries older than LOG_TTL are
    # trimmed as new ones are added.
    def log_read(self, log: str, after: str | None, limit: int, *, until: str | None = None,
                 now: float | None = None) -> list[tuple[str, str]]:
        entries = self._call(self.client.xrange, self._l(log), f"({after}" if after else "-", until or "+",
                             count=limit)
        oldest = _stream_id(clock(now) - LOG_TTL)
        return [(entry_id, fields["p"]) for entry_id, fields in entries
                if tuple(map(int, entry_id.split("-"))) >= tuple(map(int, oldest.split("-")))]

    def fold_position(self, log: str) -> tuple[str | None, str | None]:
        return self.get(f"fold:{log}"), None

    def fold(self, log: str, start: str | None, end: str, hits: Sequence[Hit]) -> bool:
        """One MULTI/EXEC transaction of hit-script calls and the new position, under WATCH of the
        position: it all applies or, when another fold moved the position first, nothing does."""
        position = self._v(f"fold:{log}")
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(position)
                if pipe.get(position) != start:
                    return False
                pipe.multi()
                for hit in hits:
                    keys, args = self._hit_call(hit)
                    self._hit_script(keys=keys, args=args, client=pipe)
                pipe.set(position, end)
                pipe.execute()
            except redis.WatchError:
                return False
            except redis.RedisError as exc:
                raise StorageError(f"Redis: {exc}") from exc
        return True

    # -- tallies -----------------------------------------------------------------------
    def tallies(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        if not keys:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._t(key))
            pipe.hgetall(self._ti(key))
        answers = self._call(pipe.execute)
        return {key: _own_counts(counts, inherited)
                for key, counts, inherited in zip(keys, answers[::2], answers[1::2], strict=True)}

    def daily_tallies(self, series: str, names: Sequence[str], first: str, last: str) -> dict[str, dict[str, int]]:
        return self.tallies(daily_keys(series, names, first, last))  # one pipelined round trip

    # -- queues ----------------------------------------------------------------------
    def enqueue(self, queue: str, payload: dict[str, Any], *, now: float | None = None) -> QueueItem:
        item = QueueItem.new(queue, payload, clock(now))
        self._store(item)
        return item

    def _store(self, item: QueueItem) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._q(item.queue, f"i:{item.id}"), mapping=_fields(item))
        for state in QUEUE_STATES:
            pipe.zrem(self._q(item.queue, state), item.id)
        score = item.ready_at if item.state == PENDING else item.created_at
        pipe.zadd(self._q(item.queue, item.state), {item.id: score})
        self._call(pipe.execute)

    def _load(self, queue: str, ids: Sequence[str]) -> list[QueueItem]:
        pipe = self.client.pipeline(transaction=False)
        for item_id in ids:
            pipe.hgetall(self._q(queue, f"i:{item_id}"))
        return [_item(fields) for fields in self._call(pipe.execute) if fields]

    def claim(self, queue: str, *, lease: float, limit: int = 1, now: float | None = None) -> list[QueueItem]:
        now = clock(now)
        tokens = [uuid.uuid4().hex for _ in range(limit)]
        ids = self._call(self._claim_script, keys=[self._q(queue, PENDING)],
                         args=[repr(now), repr(now + lease), limit, self._q(queue, "i:"), *tokens])
        return self._load(queue, ids)

    def _settle(self, queue: str, item_id: str, token: str, state: str, now: float | None,
                ready_at: float | None = None, error: str | None = None) -> bool:
        keys = [self._q(queue, f"i:{item_id}"), self._q(queue, PENDING), self._q(queue, state)]
        args = [item_id, token, state, repr(clock(now)), "" if ready_at is None else repr(ready_at), error or ""]
        return bool(self._call(self._settle_script, keys=keys, args=args))

    def ack(self, queue: str, item_id: str, token: str, *, now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, DONE, now)

    def release(self, queue: str, item_id: str, token: str, *, ready_at: float, error: str | None = None,
                now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, PENDING, now, ready_at=ready_at, error=error)

    def bury(self, queue: str, item_id: str, token: str, *, reason: str, now: float | None = None) -> bool:
        return self._settle(queue, item_id, token, DEAD, now, error=reason)

    def items(self, queue: str, state: str = PENDING, limit: int = 100) -> list[QueueItem]:
        if state == PENDING:  # scored by ready_at: sort by id (creation) instead
            ids = sorted(self._call(self.client.zrange, self._q(queue, state), 0, -1))[:limit]
        else:
            ids = self._call(self.client.zrange, self._q(queue, state), 0, limit - 1)
        return self._load(queue, ids)

    def queue_counts(self, queue: str) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for state in QUEUE_STATES:
            pipe.zcard(self._q(queue, state))
        return dict(zip(QUEUE_STATES, self._call(pipe.execute), strict=True))

    # -- operations ------------------------------------------------------------------
    def check(self) -> None:
        self._call(self.client.ping)

    def _scan(self, pattern: str) -> Iterator[str]:
        return self._call(lambda: list(self.client.scan_iter(match=pattern, count=500)))

    def export(self) -> Iterator[dict[str, Any]]:
        skip = len(self.prefix) + 2
        for key in sorted(self._scan(f"{self.prefix}c:*")):
            value = self._call(self.client.get, key)
            if value is not None:
                yield {"type": "counter", "key": key[skip:], "value": int(value)}
        now = time.time()
        for key in sorted(self._scan(f"{self.prefix}v:*")):
            pipe = self.client.pipeline(transaction=True)
            pipe.get(key)
            pipe.pttl(key)
            value, pttl = self._call(pipe.execute)
            if value is not None:
                expires_at = None if pttl < 0 else now + pttl / 1000
                yield {"type": "value", "key": key[skip:], "value": value, "expires_at": expires_at}
        for key in sorted(self._scan(f"{self.prefix}t:*")):
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(key)
            pipe.pttl(key)
            pipe.hgetall(self._ti(key[skip:]))
            counts, pttl, inherited = self._call(pipe.execute)
            if counts:
                own = dict(sorted(_own_counts(counts, inherited).items()))
                yield {"type": "tally", "key": key[skip:], "counts": own,
                       "expires_at": None if pttl < 0 else now + pttl / 1000}
        for key in sorted(self._scan(f"{self.prefix}q:*:i:*")):
            fields = self._call(self.client.hgetall, key)
            if fields:
                yield {"type": "queue", "item": _item(fields).to_dict()}

    def import_(self, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        now = time.time()
        for batch in batches(records, 500):
            pipe = self.client.pipeline(transaction=False)
            for record in batch:
                kind = record.get("type")
                if kind == "counter":
                    pipe.set(self._c(record["key"]), int(record["value"]))
                elif kind == "value":
                    expires_at = record.get("expires_at")
                    if expires_at is not None and expires_at <= now:
                        continue
                    px = None if expires_at is None else max(1, int((expires_at - now) * 1000))
                    pipe.set(self._v(record["key"]), str(record["value"]), px=px)
                elif kind == "tally":
                    expires_at = record.get("expires_at")
                    if expires_at is not None and expires_at <= now:
                        continue
                    pipe.delete(self._t(record["key"]), self._ti(record["key"]))
                    pipe.hset(self._t(record["key"]), mapping={m: int(n) for m, n in record["counts"].items()})
                    if expires_at is not None:
                        pipe.pexpireat(self._t(record["key"]), int(expires_at * 1000))
                elif kind == "queue":
                    self._call(pipe.execute)
                    self._store(QueueItem.from_dict(record["item"]))
                    pipe = self.client.pipeline(transaction=False)
                else:
                    raise StorageError(f"unknown record type {kind!r}")
                count += 1
            self._call(pipe.execute)
        return count

    def close(self) -> None:
        self.client.close()
