"""DynamoDB backend: the AWS Lambda store.

URL: ``dynamodb://table-name?region=eu-west-1&endpoint_url=http://127.0.0.1:5000``
(``endpoint_url`` for a local emulator; credentials come from the usual AWS
environment). ``shards=N`` (or the ``DYNAMODB_COUNTER_SHARDS`` setting)
sets how many items a hot counter is spread over; ``settle`` (the
``DYNAMODB_LOG_SETTLE`` setting) the seconds a log record waits before it is
read (`SETTLE`).

Single-table design — partition key ``pk`` (S), sort key ``sk`` (S), TTL
attribute ``expires_at`` (N, Unix seconds), on-demand billing, no indexes:

==============================  ==================  ================================
item                            pk                  sk / attributes
==============================  ==================  ================================
counter                         ``c#<key>``         ``-``; ``n`` (N)
hot counter (``site:*``) shard  ``c#<key>#<i>``     ``-``; ``n`` (N), i in 0..N-1
value (cache, lock, marker)     ``v#<key>``         ``-``; ``v`` (S), ``expires_at``, ``w``
rate-limit window               ``v#<key>``         ``-``; ``n`` (N), ``expires_at``, ``w``
tally                           ``t#<key>``         ``-``; ``m``, ``i`` (M), ``expires_at``, ``ver``, ``lb``
daily tally                     ``td#<series>:<n>`` ``<day>``; the same attributes
log record (a recorded view)    ``l#<log>``         ``<id>``; ``p`` (S), ``expires_at``
fold position                   ``f#<log>``         ``-``; ``at`` (S), ``plan`` (S)
queue record                    ``q#<queue>#<st>``  ``<id>``; ``payload`` (S), ..., ``w``
==============================  ==================  ================================

Hot counters take writes on a random shard, so one counter is not capped
by a partition's ~1,000 writes/s; reads sum the shards with one
``BatchGetItem`` (strongly consistent, or eventually consistent for reads
that only display counts: half the read units). Increments are ``UpdateItem ADD``:
atomic, but a call retried after a lost answer may count twice.

DynamoDB deletes expired items lazily (often days later) and emulators
never do, so every read and conditional write treats an item whose
``expires_at`` has passed as absent (``attribute_not_exists(pk) OR
expires_at < :now``).

The client retries a call once when its answer is lost (a read timeout or
a dropped connection). A conditional write whose first attempt succeeded
then meets its own result and fails its condition on the retry. So every
conditional write marks the item with a value only that call writes (the
claim's new token, else a random write id in ``w``) and asks for the item
as the failed condition saw it (``ReturnValuesOnConditionCheckFailure=
ALL_OLD``): carrying our mark, the write was ours and it succeeded. A
queue move (a transaction) looks its mark up in the record it wrote.

A tally is one item: ``m`` maps each member to its estimate, ``i`` to
what it inherited (`Tally`); counting is a strongly consistent read and a
``PutItem`` conditional on the write id ``ver`` it read (retried when a
concurrent writer changed it). Reading tallies is one ``BatchGetItem``. A
daily tally (``<series>:<day>:<name>``, see `Storage.daily_tallies`) keeps
all its days in one partition per series and name, sorted by day, so a
range of days is one ``Query`` (``sk BETWEEN``) however many days it spans.
The product writes tallies only from the fold, a few items per batch.

A counted page view (`hit` without unique marker or tallies) sends its
requests at once: the once key, the rate limit, the counters' ``ADD``s,
the log record's ``PutItem`` and the reads; when the once key was there
or the window full, what the others wrote is taken back. `fold` is exactly
once without a transaction: its plan (the end it folds to) is written to
the position item first, so a fold run again folds the same records;
every item it writes carries ``lb``, the end of the last fold applied to
it, and is written only while ``lb`` is below the fold's end.

Queue records live in one partition per state (``pending``, ``done``,
``dead``) so claiming only reads pending ones; a claim is a conditional
``UpdateItem`` on the token it saw, and moving a record to done or dead is
one ``TransactWriteItems`` (delete + put, conditional on the lease token).

IAM: the running service calls only `RUNTIME_IAM_ACTIONS` on the table;
`flask storage init/export/import/check` also use `ADMIN_IAM_ACTIONS`.
Item limits: 400 KB per item (a queue payload is a contact message, far
below), BatchGetItem 100 keys per call (chunked here).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .base import (
    DEAD,
    DONE,
    HOT_PREFIX,
    LOG_TTL,
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
    count_member,
    daily_keys,
    new_id,
)

#: The DynamoDB actions the running service performs (the Lambda role's grant).
#: TransactWriteItems is authorised per item, through PutItem, DeleteItem and UpdateItem.
RUNTIME_IAM_ACTIONS = frozenset({
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:Query", "dynamodb:BatchGetItem",
})
#: Further actions of the operator's CLI (`flask storage init/export/import`).
ADMIN_IAM_ACTIONS = frozenset({
    "dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive",
    "dynamodb:DescribeTimeToLive", "dynamodb:Scan", "dynamodb:BatchWriteItem",
})
#: boto3 operation -> IAM actions it needs (how the tests check the two sets above).
OPERATION_ACTIONS = {
    "GetItem": {"dynamodb:GetItem"}, "PutItem": {"dynamodb:PutItem"},
    "UpdateItem": {"dynamodb:UpdateItem"}, "DeleteItem": {"dynamodb:DeleteItem"},
    "Query": {"dynamodb:Query"}, "BatchGetItem": {"dynamodb:BatchGetItem"},
    "TransactWriteItems": {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"},
    "CreateTable": {"dynamodb:CreateTable"}, "DescribeTable": {"dynamodb:DescribeTable"},
    "UpdateTimeToLive": {"dynamodb:UpdateTimeToLive"}, "DescribeTimeToLive": {"dynamodb:DescribeTimeToLive"},
    "Scan": {"dynamodb:Scan"}, "BatchWriteItem": {"dynamodb:BatchWriteItem"},
}

SK = "-"
_MULTI_TABLE = ("batch_get_item", "batch_write_item", "transact_write_items")
TTL_ATTRIBUTE = "expires_at"
_NOT_LIVE = "attribute_not_exists(pk) OR expires_at < :now"
#: Seconds before a log record is read (see `DynamoDBStorage.log_read`).
SETTLE = 5.0


_DAILY = re.compile(r"(?P<series>[^:]+):(?P<day>\d{4}-\d{2}-\d{2}):(?P<name>[^:]+)")


def _tally_place(key: str) -> tuple[str, str]:
    """(partition, sort key) of a tally's item: a daily tally's partition holds every day of its series and
    name, sorted by day; any other tally has a partition of its own."""
    daily = _DAILY.fullmatch(key)
    if daily is None:
        return f"t#{key}", SK
    return f"td#{daily['series']}:{daily['name']}", daily["day"]


def _tally_key(pk: str, sk: str) -> str:
    """The tally key of a tally item: the inverse of `_tally_place`."""
    if pk.startswith("td#"):
        series, name = pk[3:].split(":", 1)
        return f"{series}:{sk}:{name}"
    return pk[2:]


def _keep_larger(counts: dict[str, int], member: str, n: int) -> None:
    # A day counted under both layouts (the day of the move) keeps the larger count: the items of the earlier
    # layout stay until their TTL, so a sum would grow with every export and import.
    counts[member] = max(counts.get(member, n), n)


def parse_url(url: str) -> dict[str, Any]:
    """``dynamodb://table?region=..&endpoint_url=..&shards=..`` -> its parts."""
    parts = urlsplit(url)
    table = parts.netloc
    if parts.scheme != "dynamodb" or not table or parts.path not in ("", "/"):
        raise ConfigurationError("malformed DynamoDB URL: expected dynamodb://table-name?region=...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"region", "endpoint_url", "shards"}
    if unknown:
        raise ConfigurationError(f"malformed DynamoDB URL: unknown option(s) {', '.join(sorted(unknown))}")
    shards = query.get("shards", "")
    if shards and (not shards.isdigit() or not 1 <= int(shards) <= 100):
        raise ConfigurationError("malformed DynamoDB URL: shards must be 1..100")
    return {"table": table, "region": query.get("region"), "endpoint_url": query.get("endpoint_url"),
            "shards": int(shards) if shards else None}


def _n(value: Any) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoDBStorage(Storage):
    scheme = "dynamodb"

    def __init__(self, url: str, *, shards: int = 4, settle: float = SETTLE):
        options = parse_url(url)
        self.settle = settle
        self.table = options["table"]
        self.shards = options["shards"] or shards
        self._options = options
        self._client = None
        self._pool = None
        self._pool_pid = 0

    # -- the client ---------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            import boto3  # only this backend needs boto3: keep it off other cold starts
            from botocore.config import Config

            # Short timeouts and one retry with legacy mode's 50 ms backoff (standard mode waits up to 1 s;
            # legacy counts retries, not attempts): an unreachable table is a 503 in under 2 s.
            config = Config(connect_timeout=0.5, read_timeout=0.8, retries={"mode": "legacy", "max_attempts": 1})
            self._client = boto3.client("dynamodb", region_name=self._options["region"],
                                        endpoint_url=self._options["endpoint_url"], config=config)
        return self._client

    def _call(self, operation: str, **kwargs) -> dict[str, Any]:
        """Call a client operation (on this table unless it names tables itself).

        Raises `_ConditionFailed` for a false condition and `StorageError` for
        everything else.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if operation not in _MULTI_TABLE:
            kwargs["TableName"] = self.table
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(code, exc.response.get("Item")) from exc
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in error.get("Message", ""):
                raise _ConditionFailed(code) from exc
            raise StorageError(f"DynamoDB {operation}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"DynamoDB {operation}: {exc}") from exc

    def _write(self, operation: str, mark: tuple[str, str], **kwargs) -> tuple[bool, dict[str, Any] | None]:
        """A conditional write marked with ``mark`` (an attribute and a value only this call writes).

        Returns (True, the attributes it returned) when it succeeded, also when botocore's retry after
        a lost answer found the write already done: the item the failed condition saw carries our
        mark. Otherwise (False, that item, None if there was none).
        """
        try:
            answer = self._call(operation, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)
        except _ConditionFailed as failed:
            attribute, value = mark
            return (failed.item or {}).get(attribute, {}).get("S") == value, failed.item
        return True, answer.get("Attributes", {})

    @staticmethod
    def _key(pk: str, sk: str = SK) -> dict[str, dict[str, str]]:
        return {"pk": _s(pk), "sk": _s(sk)}

    # -- counters -----------------------------------------------------------------------
    def _counter_keys(self, key: str) -> list[str]:
        if key.startswith(HOT_PREFIX):
            return [f"c#{key}#{i}" for i in range(self.shards)]
        return [f"c#{key}"]

    def _add_to(self, key: str, amount: int) -> int:
        """ADD to one item of the counter; the item's new value."""
        pk = random.choice(self._counter_keys(key))  # noqa: S311 - spreading load, not security
        answer = self._call("update_item", Key=self._key(pk), UpdateExpression="ADD n :a",
                            ExpressionAttributeValues={":a": _n(amount)}, ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["n"]["N"])

    def incr(self, key: str, amount: int = 1) -> int:
        value = self._add_to(key, amount)
        if key.startswith(HOT_PREFIX):
            return self.counters([key])[key]
        return value

    def _batch_get(self, pks: Sequence[str], consistent: bool = True) -> dict[str, dict[str, Any]]:
        """The items of partitions ``pks`` (sort key ``-``) that exist, by partition key."""
        return {pk: item for (pk, _), item in self._batch_get_items([(pk, SK) for pk in pks], consistent).items()}

    def _batch_get_items(self, keys: Sequence[tuple[str, str]], consistent: bool = True
                         ) -> dict[tuple[str, str], dict[str, Any]]:
        """The items of ``keys`` (partition, sort key) that exist, by key."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for chunk in batches(dict.fromkeys(keys), 100):
            request = {self.table: {"Keys": [self._key(*key) for key in chunk], "ConsistentRead": consistent}}
            for _ in range(8):  # unprocessed keys come back under throttling: retry them
                answer = self._call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05)
            else:
                raise StorageError("DynamoDB: BatchGetItem left keys unprocessed")
        return found

    def counters(self, keys: Sequence[str], *, consistent: bool = True) -> dict[str, int]:
        if not keys:
            return {}
        items = self._batch_get([pk for key in keys for pk in self._counter_keys(key)], consistent)
        return {key: sum(int(items[pk]["n"]["N"]) for pk in self._counter_keys(key) if pk in items)
                for key in keys}

    # -- values ---------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        item = self._call("get_item", Key=self._key(f"v#{key}"), ConsistentRead=True).get("Item")
        if not item or (TTL_ATTRIBUTE in item and float(item[TTL_ATTRIBUTE]["N"]) <= time.time()):
            return None
        return item["n"]["N"] if "n" in item else item["v"]["S"]

    def _value_item(self, key: str, value: str, ttl: float | None) -> dict[str, Any]:
        item = {**self._key(f"v#{key}"), "v": _s(value)}
        if ttl is not None:
            item[TTL_ATTRIBUTE] = _n(time.time() + ttl)
        return item

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._call("put_item", Item=self._value_item(key, value, ttl))

    def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        # An UpdateItem, not a PutItem, with the same effect: a counted view then needs only UpdateItem
        # and BatchGetItem, and each operation a cold Lambda first uses costs it a few milliseconds.
        now, write_id = time.time(), uuid.uuid4().hex
        values = {":v": _s(value), ":now": _n(now), ":w": _s(write_id)}
        if ttl is None:
            expression = "SET v = :v, w = :w REMOVE n, expires_at"
        else:
            expression, values[":exp"] = "SET v = :v, w = :w, expires_at = :exp REMOVE n", _n(now + ttl)
        return self._write("update_item", ("w", write_id), Key=self._key(f"v#{key}"), UpdateExpression=expression,
                           ConditionExpression=_NOT_LIVE, ExpressionAttributeValues=values)[0]

    def delete(self, key: str) -> None:
        self._call("delete_item", Key=self._key(f"v#{key}"))

    # -- rate limits and page views -------------------------------------------------------------
    def limit(self, limit: Limit) -> tuple[bool, int]:
        now, write_id = time.time(), uuid.uuid4().hex
        key, mark = self._key(f"v#{limit.key}"), ("w", write_id)
        # a live window with room, or no window yet; ``w <> :w``: a retry of a counted call counts nothing more
        counted, item = self._write(
            "update_item", mark, Key=key,
            UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :exp), w = :w",
            ConditionExpression="(attribute_not_exists(pk) OR (n < :max AND expires_at > :now)) "
                                "AND (attribute_not_exists(w) OR w <> :w)",
            ExpressionAttributeValues={":one": _n(1), ":exp": _n(now + limit.window), ":max": _n(limit.max),
                                       ":now": _n(now), ":w": _s(write_id)},
            ReturnValues="UPDATED_NEW")
        if counted:
            return True, int(item["n"]["N"])
        # an expired window: start a new one
        window = {**key, "n": _n(1), TTL_ATTRIBUTE: _n(now + limit.window), "w": _s(write_id)}
        counted, item = self._write("put_item", mark, Item=window, ConditionExpression="expires_at <= :now",
                                    ExpressionAttributeValues={":now": _n(now)})
        count = int((item or {}).get("n", {}).get("N", 1 if counted else limit.max))
        return counted, count

    def hit(self, hit: Hit) -> HitResult:
        """A hit without a unique marker or tallies (a counted page view: once key, limit, counters,
        record, reads) is one round trip: every request is sent at once, and when the once key was
        there or the limit full, what the others wrote is taken back (the record deleted, the counters
        and the window lowered by one). Otherwise four round trips at most: the once key and the limit;
        the increments, tallies and the unique marker together; the unique increments and tallies
        together; the read-back."""
        if hit.unique is None and not hit.tally and not hit.unique_tally and len(set(hit.incr)) == len(hit.incr):
            return self._hit_at_once(hit)
        if hit.once is not None and not self.add(hit.once[0], "1", hit.once[1]):
            return HitResult(True, False, self.counters(hit.read), repeated=True)
        if hit.limit is not None and not self.limit(hit.limit)[0]:
            if hit.once is not None:
                self.delete(hit.once[0])  # not counted: a retry may count it later
            return HitResult(False, False, self.counters(hit.read))
        calls = [lambda key=key: self._add_to(key, 1) for key in hit.incr]
        calls += [lambda tally=tally: self._tally(tally) for tally in hit.tally]
        if hit.record is not None:
            calls.append(lambda: self._append(*hit.record))
        calls.append(lambda: self.add(hit.unique[0], "1", hit.unique[1]) if hit.unique is not None else False)
        results = self._together(calls)
        new = bool(results.pop())
        known: dict[str, int] = {}
        self._learn(known, hit.incr, results[:len(hit.incr)])
        if new:
            unique_values = self._together([lambda key=key: self._add_to(key, 1) for key in hit.unique_incr]
                                           + [lambda tally=tally: self._tally(tally) for tally in hit.unique_tally])
            self._learn(known, hit.unique_incr, unique_values[:len(hit.unique_incr)])
        counts = self.counters([key for key in hit.read if key not in known])
        return HitResult(True, new, {key: known[key] if key in known else counts[key] for key in hit.read})

    @staticmethod
    def _learn(known: dict[str, int], keys: Sequence[str], values: list) -> None:
        """Keep the values ADD answered for unsharded counters; a key counted twice ran concurrently: the
        larger answer is the one after both."""
        for key, value in zip(keys, values, strict=True):
            if not key.startswith(HOT_PREFIX):
                known[key] = max(value, known.get(key, value))

    def _hit_at_once(self, hit: Hit) -> HitResult:
        record_id = new_id(time.time()) if hit.record is not None else None
        shards = {key: random.choice(self._counter_keys(key)) for key in hit.incr}  # noqa: S311 - load spreading
        calls: list = [lambda: self.add(hit.once[0], "1", hit.once[1]) if hit.once else True,
                       lambda: self.limit(hit.limit)[0] if hit.limit else True]
        calls += [lambda pk=pk: self._add_item(pk, 1) for pk in shards.values()]
        # what ADD does not answer: the other shards of sharded counters, and the keys only read
        others = [pk for key in dict.fromkeys(hit.read) if key in shards
                  for pk in self._counter_keys(key) if pk != shards[key]]
        calls.append(lambda: self._batch_get(others, consistent=False) if others else {})
        calls.append(lambda: self.counters([key for key in hit.read if key not in shards], consistent=False))
        if hit.record is not None:
            calls.append(lambda: self._append(*hit.record, record_id=record_id))
        once, allowed, *values = self._together(calls)
        added = dict(zip(hit.incr, values[:len(hit.incr)], strict=True))
        other_items, read = values[len(hit.incr)], values[len(hit.incr) + 1]
        if not once or not allowed:  # take back what this step wrote besides what stays
            undo = [lambda pk=pk: self._add_item(pk, -1) for pk in shards.values()]
            if hit.record is not None:
                undo.append(lambda: self._call("delete_item", Key=self._key(f"l#{hit.record[0]}", record_id)))
            if once and hit.once is not None:
                undo.append(lambda: self.delete(hit.once[0]))
            if not once and allowed and hit.limit is not None:
                undo.append(lambda: self._unlimit(hit.limit))
            self._together(undo)
            added = {key: value - 1 for key, value in added.items()}
        counts = dict(read)
        for key in hit.read:
            if key in shards:
                counts[key] = added[key] + sum(int(other_items[pk]["n"]["N"]) for pk in self._counter_keys(key)
                                               if pk != shards[key] and pk in other_items)
        # a repeated step is reported as such whether or not the window had room: it was counted before
        return HitResult(allowed or not once, False, {key: counts[key] for key in hit.read}, repeated=not once)

    def _unlimit(self, limit: Limit) -> None:
        """Take one call back from ``limit``'s window (a retried view counted there by mistake)."""
        with contextlib.suppress(_ConditionFailed):  # the window expired meanwhile: nothing to take back
            self._call("update_item", Key=self._key(f"v#{limit.key}"), UpdateExpression="ADD n :minus",
                       ConditionExpression="n > :zero AND expires_at > :now",
                       ExpressionAttributeValues={":minus": _n(-1), ":zero": _n(0), ":now": _n(time.time())})

    def _add_item(self, pk: str, amount: int) -> int:
        answer = self._call("update_item", Key=self._key(pk), UpdateExpression="ADD n :a",
                            ExpressionAttributeValues={":a": _n(amount)}, ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["n"]["N"])

    # -- tallies --------------------------------------------------------------------------------
    # A tally is one item: ``m`` (member -> estimate), ``i`` (member -> inherited), ``expires_at``, ``ver``
    # (a write id: an optimistic update's condition) and ``lb`` (the end of the last fold that wrote it).
    @staticmethod
    def _tally_state(item: dict[str, Any] | None, now: float) -> tuple[dict[str, int], dict[str, int], float | None]:
        """(estimates, inherited, expires_at) of a stored tally item; empty when absent or expired."""
        if not item or float(item[TTL_ATTRIBUTE]["N"]) <= now:
            return {}, {}, None
        return ({m: int(v["N"]) for m, v in item.get("m", {}).get("M", {}).items()},
                {m: int(v["N"]) for m, v in item.get("i", {}).get("M", {}).items()},
                float(item[TTL_ATTRIBUTE]["N"]))

    def _put_tally(self, key: str, item: dict[str, Any] | None, counts: dict[str, int], inherited: dict[str, int],
                   expires_at: float, *, fold_end: str | None = None) -> bool:
        """Store a tally unless it changed since ``item`` was read (or, in a fold, a fold at or past
        ``fold_end`` wrote it); True when stored (also when a lost answer's retry found our own write)."""
        write_id = uuid.uuid4().hex
        stored = {**self._key(*_tally_place(key)), "m": {"M": {m: _n(n) for m, n in counts.items()}},
                  "i": {"M": {m: _n(n) for m, n in inherited.items()}}, TTL_ATTRIBUTE: _n(expires_at),
                  "ver": _s(write_id)}
        values: dict[str, Any] = {}
        if item is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition, values[":ver"] = "ver = :ver", item["ver"]
        if fold_end is not None:
            stored["lb"] = _s(fold_end)
            condition = f"({condition}) AND (attribute_not_exists(lb) OR lb < :end)"
            values[":end"] = _s(fold_end)
        return self._write("put_item", ("ver", write_id), Item=stored, ConditionExpression=condition,
                           **({"ExpressionAttributeValues": values} if values else {}))[0]

    def _tally(self, tally: Tally) -> None:
        for _ in range(8):  # bounded: each failed try lost a race with a concurrent writer of the same tally
            now = time.time()
            item = self._call("get_item", Key=self._key(*_tally_place(tally.key)), ConsistentRead=True).get("Item")
            counts, inherited, expires_at = self._tally_state(item, now)
            count_member(counts, inherited, tally)
            if self._put_tally(tally.key, item, counts, inherited, expires_at or now + tally.ttl):
                return
        raise StorageError(f"DynamoDB: tally {tally.key} kept changing under concurrent writes")

    def tallies(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        now = time.time()
        items = self._batch_get_items([_tally_place(key) for key in keys])
        found = {}
        for key in keys:
            counts, inherited, _ = self._tally_state(items.get(_tally_place(key)), now)
            found[key] = {m: n - inherited.get(m, 0) for m, n in counts.items()}
        return found

    def daily_tallies(self, series: str, names: Sequence[str], first: str, last: str) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {key: {} for key in daily_keys(series, names, first, last)}
        now = time.time()

        def read(name: str) -> list[dict[str, Any]]:
            return list(self._query(f"td#{series}:{name}", KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                                    ConsistentRead=False, ExpressionAttributeValues={":a": _s(first), ":b": _s(last)}))
        for name, items in zip(dict.fromkeys(names), self._together([lambda name=name: read(name)
                                                                     for name in dict.fromkeys(names)]), strict=True):
            for item in items:
                key = f"{series}:{item['sk']['S']}:{name}"
                counts, inherited, _ = self._tally_state(item, now)
                if key in result:
                    result[key] = {m: n - inherited.get(m, 0) for m, n in counts.items()}
        return result

    # -- logs and folds -------------------------------------------------------------------------
    # A log is one partition, ``l#<log>``, its records sorted by `new_id` (the writer's clock in ms, then
    # random). A write can land up to a few seconds after its id's time (timeouts and one retry), so a
    # record is read only once it is `SETTLE` seconds old: no record can appear behind one already read.
    def _append(self, log: str, text: str, record_id: str | None = None) -> None:
        now = time.time()
        self._call("put_item", Item={**self._key(f"l#{log}", record_id or new_id(now)), "p": _s(text),
                                     TTL_ATTRIBUTE: _n(now + LOG_TTL)})

    def log_read(self, log: str, after: str | None, limit: int, *, until: str | None = None,
                 now: float | None = None) -> list[tuple[str, str]]:
        now = clock(now)
        high = f"{int((now - self.settle) * 1000):013x}"  # every id written before then sorts below this
        if until is not None:
            high = min(high, until + " ")
        low = (after or "") + " "  # the first id after ``after`` (ids are hex: a space sorts before any)
        if low >= high:
            return []
        # settled records: an eventually consistent read (half the read units) sees them
        records = self._query(f"l#{log}", limit=limit, Limit=limit, ConsistentRead=False,
                              KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                              ExpressionAttributeValues={":low": _s(low), ":high": _s(high)})
        return [(item["sk"]["S"], item["p"]["S"]) for item in records if float(item[TTL_ATTRIBUTE]["N"]) > now]

    def fold_position(self, log: str) -> tuple[str | None, str | None]:
        item = self._call("get_item", Key=self._key(f"f#{log}"), ConsistentRead=True).get("Item") or {}
        return item.get("at", {}).get("S"), item.get("plan", {}).get("S")

    def fold(self, log: str, start: str | None, end: str, hits: Sequence[Hit]) -> bool:
        """Exactly once without a transaction: the fold first writes its plan (the end it folds to) to the
        position item, so every run of it folds the same records; every item it writes carries ``lb``,
        the end of the last fold applied to it, and is written only while ``lb`` is below this end (a
        retried or repeated write of this fold changes nothing); a unique marker written by this fold
        counts as new again when the fold runs again. Then the position moves to ``end``."""
        now, position = time.time(), self._key(f"f#{log}")
        at = "attribute_not_exists(#at)" if start is None else "#at = :start"
        try:
            self._call("update_item", Key=position, UpdateExpression="SET #plan = :end",
                       ConditionExpression=f"{at} AND (attribute_not_exists(#plan) OR #plan = :end)",
                       ExpressionAttributeNames={"#at": "at", "#plan": "plan"},
                       ExpressionAttributeValues={":end": _s(end), **({":start": _s(start)} if start else {})})
        except _ConditionFailed:
            return False
        new = self._fold_markers(hits, end, now)
        counters: dict[str, int] = {}
        tallies: dict[str, list[Tally]] = {}
        for hit, is_new in zip(hits, new, strict=True):
            for key in (*hit.incr, *(hit.unique_incr if is_new else ())):
                counters[key] = counters.get(key, 0) + 1
            for tally in (*hit.tally, *(hit.unique_tally if is_new else ())):
                tallies.setdefault(tally.key, []).append(tally)
        shard = zlib.crc32(end.encode())  # the same shard in every run of this fold
        self._together([lambda key=key, n=n: self._fold_counter(key, n, end, shard) for key, n in counters.items()]
                       + [lambda key=key, ts=ts: self._fold_tally(key, ts, end) for key, ts in tallies.items()])
        # a false condition: moved already, by this call's lost answer or by another run of this fold
        with contextlib.suppress(_ConditionFailed):
            self._call("update_item", Key=position, UpdateExpression="SET #at = :end REMOVE #plan",
                       ConditionExpression="#plan = :end", ExpressionAttributeNames={"#at": "at", "#plan": "plan"},
                       ExpressionAttributeValues={":end": _s(end)})
        return True

    def _fold_markers(self, hits: Sequence[Hit], end: str, now: float) -> list[bool]:
        """Which hits bring a new unique marker: absent or expired, or written by an earlier run of this fold
        (``lb`` = ``end``); those are written now (only they: a marker already there costs a read, not a
        failed write). The first hit with a marker counts it, the batch's later ones do not."""
        keys = list(dict.fromkeys(hit.unique[0] for hit in hits if hit.unique is not None))
        items = self._batch_get([f"v#{key}" for key in keys])
        fresh = set()
        for key in keys:
            item = items.get(f"v#{key}")
            if (not item or (TTL_ATTRIBUTE in item and float(item[TTL_ATTRIBUTE]["N"]) <= now)
                    or item.get("lb", {}).get("S") == end):
                fresh.add(key)
        ttl = {hit.unique[0]: hit.unique[1] for hit in hits if hit.unique is not None}
        def mark(key: str) -> None:
            try:
                self._call("put_item", Item={**self._key(f"v#{key}"), "v": _s("1"), TTL_ATTRIBUTE: _n(now + ttl[key]),
                                             "lb": _s(end)},
                           ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR lb = :end",
                           ExpressionAttributeValues={":now": _n(now), ":end": _s(end)})
            except _ConditionFailed as exc:  # another fold wrote it since the read: nothing counted yet, run again
                raise StorageError("DynamoDB: a unique marker changed during the fold; the next fold finishes it"
                                   ) from exc
        self._together([lambda key=key: mark(key) for key in sorted(fresh)])
        new, seen = [], set()
        for hit in hits:
            key = hit.unique[0] if hit.unique is not None else None
            new.append(key in fresh and key not in seen)
            if key is not None:
                seen.add(key)
        return new

    def _fold_counter(self, key: str, amount: int, end: str, shard: int) -> None:
        pks = self._counter_keys(key)
        # a false condition: applied already, by a lost answer's first attempt or an earlier run
        with contextlib.suppress(_ConditionFailed):
            self._call("update_item", Key=self._key(pks[shard % len(pks)]), UpdateExpression="ADD n :a SET lb = :end",
                       ConditionExpression="attribute_not_exists(lb) OR lb < :end",
                       ExpressionAttributeValues={":a": _n(amount), ":end": _s(end)})

    def _fold_tally(self, key: str, tallies: list[Tally], end: str) -> None:
        for _ in range(8):  # bounded: a failed write lost a race with a concurrent writer
            now = time.time()
            item = self._call("get_item", Key=self._key(*_tally_place(key)), ConsistentRead=True).get("Item")
            if item and item.get("lb", {}).get("S", "") >= end:
                return  # applied already
            counts, inherited, expires_at = self._tally_state(item, now)
            for tally in tallies:
                count_member(counts, inherited, tally)
            if self._put_tally(key, item, counts, inherited, expires_at or now + tallies[0].ttl, fold_end=end):
                return
        raise StorageError(f"DynamoDB: tally {key} kept changing under concurrent writes")

    def _together(self, calls: list) -> list:
        """Run independent calls concurrently (a counted view's increments touch different items)."""
        if len(calls) <= 1:
            return [call() for call in calls]
        self.client  # noqa: B018 - create the client here, not in several threads at once
        if self._pool is None or self._pool_pid != os.getpid():  # threads do not survive a fork
            from concurrent.futures import ThreadPoolExecutor

            # 10: botocore's connection pool; a new visitor's second step (2 counters + 7 tallies) fits at once
            self._pool, self._pool_pid = ThreadPoolExecutor(10, thread_name_prefix="dynamodb"), os.getpid()
        futures = [self._pool.submit(call) for call in calls]
        return [future.result() for future in futures]

    # -- queues -------------------------------------------------------------------------------
    @staticmethod
    def _qpk(queue: str, state: str) -> str:
        return f"q#{queue}#{state}"

    def _queue_item(self, item: QueueItem) -> dict[str, Any]:
        return {**self._key(self._qpk(item.queue, item.state), item.id), "queue": _s(item.queue),
                "payload": _s(json.dumps(item.payload)), "attempts": _n(item.attempts),
                "created_at": _n(item.created_at), "updated_at": _n(item.updated_at),
                "ready_at": _n(item.ready_at), "token": _s(item.token or ""),
                "last_error": _s(item.last_error or "")}

    @staticmethod
    def _from_item(item: dict[str, Any]) -> QueueItem:
        return QueueItem(id=item["sk"]["S"], queue=item["queue"]["S"], payload=json.loads(item["payload"]["S"]),
                         state=item["pk"]["S"].rsplit("#", 1)[1], attempts=int(item["attempts"]["N"]),
                         created_at=float(item["created_at"]["N"]), updated_at=float(item["updated_at"]["N"]),
                         ready_at=float(item["ready_at"]["N"]), token=item["token"]["S"] or None,
                         last_error=item["last_error"]["S"] or None)

    def _pages(self, operation: str, **request) -> Iterator[dict[str, Any]]:
        """Every answer of a paginated ``query`` or ``scan``, following ``LastEvaluatedKey``."""
        while True:
            answer = self._call(operation, **request)
            yield answer
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _query(self, pk: str, limit: int | None = None, **kwargs) -> Iterator[dict[str, Any]]:
        """Items of one partition in sort-key order (at most ``limit``)."""
        request: dict[str, Any] = {"KeyConditionExpression": "pk = :pk", "ConsistentRead": True, **kwargs}
        request.setdefault("ExpressionAttributeValues", {})[":pk"] = _s(pk)
        seen = 0
        for answer in self._pages("query", **request):
            for item in answer.get("Items", []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return

    def enqueue(self, queue: str, payload: dict[str, Any], *, now: float | None = None) -> QueueItem:
        item = QueueItem.new(queue, payload, clock(now))
        self._call("put_item", Item=self._queue_item(item))
        return item

    def claim(self, queue: str, *, lease: float, limit: int = 1, now: float | None = None) -> list[QueueItem]:
        now = clock(now)
        claimed: list[QueueItem] = []
        ready = self._query(self._qpk(queue, PENDING), FilterExpression="ready_at <= :now",
                            ExpressionAttributeValues={":now": _n(now)})
        for raw in ready:
            item = self._from_item(raw)
            token = uuid.uuid4().hex
            # the new token is the mark; a claim leaves ``w`` alone, so a release retried after a lost
            # answer still finds its own mark when another worker claimed the record meanwhile
            taken, _ = self._write(
                "update_item", ("token", token), Key=self._key(self._qpk(queue, PENDING), item.id),
                UpdateExpression="SET #t = :t, ready_at = :r, updated_at = :now ADD attempts :one",
                # the token alone can come back to "" after another claim and release
                ConditionExpression="#t = :seen AND ready_at <= :now",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":t": _s(token), ":r": _n(now + lease), ":now": _n(now),
                                           ":one": _n(1), ":seen": _s(item.token or "")})
            if not taken:
                continue  # another worker took it first
            item.token, item.ready_at, item.updated_at, item.attempts = token, now + lease, now, item.attempts + 1
            claimed.append(item)
            if len(claimed) >= limit:
                break
        return claimed

    def _move(self, queue: str, item_id: str, token: str, state: str, now: float | None, error: str) -> bool:
        now = clock(now)
        pk = self._qpk(queue, PENDING)
        raw = self._call("get_item", Key=self._key(pk, item_id), ConsistentRead=True).get("Item")
        if raw is None or raw["token"]["S"] != token:
            return False
        item = self._from_item(raw)
        item.state, item.token, item.updated_at = state, None, now
        item.last_error = error or item.last_error
        write_id = uuid.uuid4().hex
        try:
            self._call("transact_write_items", TransactItems=[
                {"Delete": {"TableName": self.table, "Key": self._key(pk, item_id),
                            "ConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "token"},
                            "ExpressionAttributeValues": {":t": _s(token)}}},
                {"Put": {"TableName": self.table, "Item": {**self._queue_item(item), "w": _s(write_id)}}},
            ])
        except _ConditionFailed:
            # a retry after a lost answer finds the record moved: by this call if it carries our write id
            moved = self._call("get_item", Key=self._key(self._qpk(queue, state), item_id),
                               ConsistentRead=True).get("Item") or {}
            return moved.get("w", {}).get("S") == write_id
        return True

    def ack(self, queue: str, item_id: str, token: str, *, now: float | None = None) -> bool:
        return self._move(queue, item_id, token, DONE, now, "")

    def bury(self, queue: str, item_id: str, token: str, *, reason: str, now: float | None = None) -> bool:
        return self._move(queue, item_id, token, DEAD, now, reason)

    def release(self, queue: str, item_id: str, token: str, *, ready_at: float, error: str | None = None,
                now: float | None = None) -> bool:
        write_id = uuid.uuid4().hex
        return self._write(
            "update_item", ("w", write_id), Key=self._key(self._qpk(queue, PENDING), item_id),
            UpdateExpression="SET #t = :empty, ready_at = :r, updated_at = :now, last_error = :e, w = :w",
            ConditionExpression="attribute_exists(pk) AND #t = :t",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":empty": _s(""), ":r": _n(ready_at), ":now": _n(clock(now)),
                                       ":e": _s(error or ""), ":t": _s(token), ":w": _s(write_id)})[0]

    def items(self, queue: str, state: str = PENDING, limit: int = 100) -> list[QueueItem]:
        return [self._from_item(raw) for raw in self._query(self._qpk(queue, state), limit=limit)]

    def queue_counts(self, queue: str) -> dict[str, int]:
        return {state: sum(answer.get("Count", 0) for answer in self._pages(
                    "query", KeyConditionExpression="pk = :pk", Select="COUNT",
                    ExpressionAttributeValues={":pk": _s(self._qpk(queue, state))}))
                for state in QUEUE_STATES}

    # -- operations -----------------------------------------------------------------------------
    def check(self) -> None:
        self._call("get_item", Key=self._key("health"))

    def init(self) -> None:
        """Create the table (on-demand) and enable TTL; idempotent."""
        try:
            self._call("describe_table")
        except StorageError as exc:
            if "ResourceNotFoundException" not in str(exc):
                raise
            self._call("create_table", BillingMode="PAY_PER_REQUEST",
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                             {"AttributeName": "sk", "AttributeType": "S"}],
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}])
            for _ in range(60):  # bounded wait for ACTIVE
                if self._call("describe_table")["Table"]["TableStatus"] == "ACTIVE":
                    break
                time.sleep(1)
        ttl = self._call("describe_time_to_live").get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            self._call("update_time_to_live", TimeToLiveSpecification={"Enabled": True,
                                                                      "AttributeName": TTL_ATTRIBUTE})

    def export(self) -> Iterator[dict[str, Any]]:
        now = time.time()
        counters: dict[str, int] = {}
        values, queue = [], []
        tallies: dict[str, dict[str, Any]] = {}
        for answer in self._pages("scan", ConsistentRead=True):
            for item in answer.get("Items", []):
                pk = item["pk"]["S"]
                if pk.startswith("c#"):
                    key = pk[2:]
                    if key.startswith(HOT_PREFIX):
                        key = key.rsplit("#", 1)[0]
                    counters[key] = counters.get(key, 0) + int(item["n"]["N"])
                elif pk.startswith("v#"):
                    expires_at = float(item[TTL_ATTRIBUTE]["N"]) if TTL_ATTRIBUTE in item else None
                    if expires_at is None or expires_at > now:
                        value = item["n"]["N"] if "n" in item else item["v"]["S"]
                        values.append({"type": "value", "key": pk[2:], "value": value, "expires_at": expires_at})
                elif (pk.startswith("t#") and item["sk"]["S"] == SK) or pk.startswith("td#"):
                    counts, inherited, expires_at = self._tally_state(item, now)
                    key = _tally_key(pk, item["sk"]["S"])
                    if counts:
                        record = tallies.setdefault(key, {"type": "tally", "key": key, "counts": {}})
                        record["expires_at"] = expires_at
                        for member, n in counts.items():
                            _keep_larger(record["counts"], member, n - inherited.get(member, 0))
                elif pk.startswith("t#") and item["sk"]["S"] != "#" and float(item[TTL_ATTRIBUTE]["N"]) > now:
                    # a tally member item of the layout before a tally was one item: exported in the new
                    # shape, so export and import move a table's stats detail to it
                    record = tallies.setdefault(pk[2:], {"type": "tally", "key": pk[2:], "counts": {},
                                                         "expires_at": float(item[TTL_ATTRIBUTE]["N"])})
                    _keep_larger(record["counts"], item["sk"]["S"],
                                 int(item["n"]["N"]) - int(item.get("b", {}).get("N", 0)))
                elif pk.startswith("q#"):
                    queue.append({"type": "queue", "item": self._from_item(item).to_dict()})
        for key in sorted(counters):
            yield {"type": "counter", "key": key, "value": counters[key]}
        yield from sorted(values, key=lambda r: r["key"])
        for key in sorted(tallies):
            yield {**tallies[key], "counts": dict(sorted(tallies[key]["counts"].items()))}
        yield from sorted(queue, key=lambda r: (r["item"]["queue"], r["item"]["id"]))

    def import_(self, records: Iterable[dict[str, Any]]) -> int:
        count = 0
        for batch in batches(records, 25):
            puts = []
            for record in batch:
                kind = record.get("type")
                if kind == "counter":
                    # the total goes on shard 0, the other shards are zeroed: importing twice is idempotent
                    pks = self._counter_keys(record["key"])
                    puts += [{**self._key(pk), "n": _n(int(record["value"]) if i == 0 else 0)}
                             for i, pk in enumerate(pks)]
                elif kind == "value":
                    value = str(record["value"])
                    # whole numbers go in ``n`` so an imported rate-limit window keeps counting
                    item = {**self._key(f"v#{record['key']}"), **({"n": _n(int(value))} if value.isdigit()
                                                                  else {"v": _s(value)})}
                    if record.get("expires_at") is not None:
                        item[TTL_ATTRIBUTE] = _n(float(record["expires_at"]))
                    puts.append(item)
                elif kind == "tally":
                    expires_at = record.get("expires_at")
                    expires_at = float(expires_at) if expires_at is not None else time.time() + 400 * 86400
                    puts.append({**self._key(*_tally_place(record["key"])), TTL_ATTRIBUTE: _n(expires_at),
                                 "m": {"M": {member: _n(int(n)) for member, n in record["counts"].items()}},
                                 "i": {"M": {}}, "ver": _s(uuid.uuid4().hex)})
                elif kind == "queue":
                    puts.append(self._queue_item(QueueItem.from_dict(record["item"])))
                else:
                    raise StorageError(f"unknown record type {kind!r}")
                count += 1
            for chunk in batches(puts, 25):
                self._write_batch(chunk)
        return count

    def _write_batch(self, items: list[dict[str, Any]]) -> None:
        request = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in range(8):
            answer = self._call("batch_write_item", RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            time.sleep(0.05)
        raise StorageError("DynamoDB: BatchWriteItem left items unprocessed")


class _ConditionFailed(Exception):
    """A conditional write's condition was false (internal: never leaves this module).

    ``item`` is the item the condition saw, when the call asked for it (ALL_OLD) and there was one.
    """

    def __init__(self, code: str, item: dict[str, Any] | None = None):
        super().__init__(code)
        self.item = item
