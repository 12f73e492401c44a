"""DynamoDB backend: the AWS Lambda store.

URL: ``dynamodb://table-name?region=eu-west-1&endpoint_url=http://127.0.0.1:5000``
(``endpoint_url`` for a local emulator; credentials come from the usual AWS
environment). ``shards=N`` (or the ``DYNAMODB_COUNTER_SHARDS`` setting)
sets how many items a hot counter is spread over.

Single-table design — partition key ``pk`` (S), sort key ``sk`` (S), TTL
attribute ``expires_at`` (N, Unix seconds), on-demand billing, no indexes:

==============================  ==================  ================================
item                            pk                  sk / attributes
==============================  ==================  ================================
counter                         ``c#<key>``         ``-``; ``n`` (N)
hot counter (``site:*``) shard  ``c#<key>#<i>``     ``-``; ``n`` (N), i in 0..N-1
value (cache, lock, marker)     ``v#<key>``         ``-``; ``v`` (S), ``expires_at``, ``w``
rate-limit window               ``v#<key>``         ``-``; ``n`` (N), ``expires_at``, ``w``
tally member                    ``t#<key>``         ``<member>``; ``n`` (N), ``b`` (N), ``expires_at``
tally's count of members        ``t#<key>``         ``#``; ``n`` (N), ``expires_at``
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

A tally member is one item, so counting a member already there is one
``UpdateItem ADD`` (conditional on the item being live); a member seen for
the first time takes a slot from the ``#`` item (conditional on ``n <
cap``) and then its own ``ADD``; when no slot is left it reads the key
(one ``Query``) and takes the place of the member ranked lowest in one
``TransactWriteItems`` (`Tally`: ``n`` is the estimate, ``b`` what it
inherited).
A tally's calls run concurrently with the hit's counters. Reading a tally
is one ``Query`` of its partition (at most cap + 2 items).

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

import json
import os
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .base import (
    DEAD,
    DONE,
    HOT_PREFIX,
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


def _own(item: dict[str, Any]) -> int:
    """A tally member's own count: its estimate ``n`` less what it inherited, ``b`` (see `Tally`)."""
    return int(item["n"]["N"]) - int(item.get("b", {}).get("N", 0))


class DynamoDBStorage(Storage):
    scheme = "dynamodb"

    def __init__(self, url: str, *, shards: int = 4):
        options = parse_url(url)
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
        found: dict[str, dict[str, Any]] = {}
        for chunk in batches(dict.fromkeys(pks), 100):
            request = {self.table: {"Keys": [self._key(pk) for pk in chunk], "ConsistentRead": consistent}}
            for _ in range(8):  # unprocessed keys come back under throttling: retry them
                answer = self._call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[item["pk"]["S"]] = item
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
        """Five round trips at most: the once marker; the limit; the increments and the unique marker
        together; the unique increments together; the read-back (one BatchGetItem)."""
        if hit.once is not None and not self.add(hit.once[0], "1", hit.once[1]):
            return HitResult(True, False, self.counters(hit.read), repeated=True)
        if hit.limit is not None and not self.limit(hit.limit)[0]:
            if hit.once is not None:
                self.delete(hit.once[0])  # not counted: a retry may count it later
            return HitResult(False, False, self.counters(hit.read))
        calls = [lambda key=key: self._add_to(key, 1) for key in hit.incr]
        calls += [lambda tally=tally: self._tally(tally) for tally in hit.tally]
        if hit.unique is not None:
            calls.append(lambda: self.add(hit.unique[0], "1", hit.unique[1]))
        results = self._together(calls)
        new = bool(results.pop()) if hit.unique is not None else False
        known: dict[str, int] = {}

        def learn(keys: Sequence[str], values: list) -> None:
            # a key counted twice ran concurrently: the larger answer is the one after both
            for key, value in zip(keys, values, strict=True):
                if not key.startswith(HOT_PREFIX):
                    known[key] = max(value, known.get(key, value))
        learn(hit.incr, results[:len(hit.incr)])
        if new:
            unique_values = self._together([lambda key=key: self._add_to(key, 1) for key in hit.unique_incr]
                                           + [lambda tally=tally: self._tally(tally) for tally in hit.unique_tally])
            learn(hit.unique_incr, unique_values[:len(hit.unique_incr)])
        counts = self.counters([key for key in hit.read if key not in known])
        return HitResult(True, new, {key: known[key] if key in known else counts[key] for key in hit.read})

    # -- tallies --------------------------------------------------------------------------------
    def _count(self, pk: str, sk: str, now: float, ttl: int, *, cap: int | None = None, start: bool = False) -> bool:
        """Add 1 to the live tally item (pk, sk), below ``cap`` if given, or start it at 1 (expiring ``ttl``
        from now) if it is absent or expired; False when the item is live and at ``cap``.

        ``start`` tries starting first (the caller knows the item is not live)."""
        live = "expires_at > :now" + (" AND n < :cap" if cap is not None else "")
        grow = {"UpdateExpression": "ADD n :one", "ConditionExpression": live,
                "ExpressionAttributeValues": {":one": _n(1), ":now": _n(now),
                                              **({":cap": _n(cap)} if cap is not None else {})}}
        fresh = {"UpdateExpression": "SET n = :one, expires_at = :exp",
                 "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                 "ExpressionAttributeValues": {":one": _n(1), ":now": _n(now), ":exp": _n(now + ttl)}}
        attempts = [fresh, grow, fresh, grow] if start else [grow, fresh, grow]  # two racing writers settle
        for request in attempts:
            try:
                self._call("update_item", Key=self._key(pk, sk), **request)
                return True
            except _ConditionFailed:
                continue
        return False

    def _tally(self, tally: Tally) -> None:
        pk, member, now = f"t#{tally.key}", tally.member, time.time()
        for _ in range(3):  # bounded: each failed step lost a race to a concurrent writer of the same key
            try:  # the common case, one call: a member already counted today
                self._call("update_item", Key=self._key(pk, member), UpdateExpression="ADD n :one",
                           ConditionExpression="expires_at > :now",
                           ExpressionAttributeValues={":one": _n(1), ":now": _n(now)})
                return
            except _ConditionFailed:
                pass
            # a new member takes one of the key's slots; when none is left it takes the place of the lowest
            if member == OTHER or self._count(pk, "#", now, tally.ttl, cap=tally.cap):
                self._count(pk, member, now, tally.ttl, start=True)
                return
            if self._evict(pk, member, now):
                return
        self._count(pk, OTHER, now, tally.ttl)

    def _evict(self, pk: str, member: str, now: float) -> bool:
        """Put ``member`` in the place of the full tally's member ranked lowest (see `Tally`): one
        ``TransactWriteItems`` (delete it, add its own count to `OTHER`, put the newcomer). False when a
        concurrent write changed the key first."""
        live = [item for item in self._query(pk) if item["sk"]["S"] not in ("#", OTHER)
                and float(item[TTL_ATTRIBUTE]["N"]) > now]
        if not live:
            return False
        victim = min(live, key=lambda item: (int(item["n"]["N"]), _own(item), item["sk"]["S"]))
        n, expires_at, write_id = int(victim["n"]["N"]), victim[TTL_ATTRIBUTE], uuid.uuid4().hex
        try:
            self._call("transact_write_items", TransactItems=[
                {"Delete": {"TableName": self.table, "Key": self._key(pk, victim["sk"]["S"]),
                            "ConditionExpression": "n = :n", "ExpressionAttributeValues": {":n": _n(n)}}},
                {"Update": {"TableName": self.table, "Key": self._key(pk, OTHER),
                            "UpdateExpression": "ADD n :own SET expires_at = if_not_exists(expires_at, :exp)",
                            "ExpressionAttributeValues": {":own": _n(_own(victim)), ":exp": expires_at}}},
                {"Put": {"TableName": self.table, "ExpressionAttributeValues": {":now": _n(now)},
                         "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                         "Item": {**self._key(pk, member), "n": _n(n + 1), "b": _n(n), TTL_ATTRIBUTE: expires_at,
                                  "w": _s(write_id)}}},
            ])
        except _ConditionFailed:
            # a retry after a lost answer finds its own newcomer: the write was ours
            item = self._call("get_item", Key=self._key(pk, member), ConsistentRead=True).get("Item") or {}
            return item.get("w", {}).get("S") == write_id
        return True

    def tallies(self, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        unique = list(dict.fromkeys(keys))
        now = time.time()

        def read(key: str) -> dict[str, int]:
            return {item["sk"]["S"]: _own(item) for item in self._query(f"t#{key}")
                    if item["sk"]["S"] != "#" and float(item[TTL_ATTRIBUTE]["N"]) > now}
        found = dict(zip(unique, self._together([lambda key=key: read(key) for key in unique]), strict=True))
        return {key: found[key] for key in keys}

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
                elif pk.startswith("t#") and item["sk"]["S"] != "#":
                    expires_at = float(item[TTL_ATTRIBUTE]["N"])
                    if expires_at > now:
                        record = tallies.setdefault(pk[2:], {"type": "tally", "key": pk[2:], "counts": {},
                                                             "expires_at": expires_at})
                        record["counts"][item["sk"]["S"]] = _own(item)
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
                    counts = {member: int(n) for member, n in record["counts"].items()}
                    slots = sum(1 for member in counts if member != OTHER)
                    puts += [{**self._key(f"t#{record['key']}", sk), "n": _n(n), TTL_ATTRIBUTE: _n(expires_at)}
                             for sk, n in [*counts.items(), ("#", slots)]]
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
