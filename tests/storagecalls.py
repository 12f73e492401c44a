"""Count what one request really costs the store, measured where the store can see it.

    with StorageCalls(app) as cost:
        client.get("/api/visitors/daily?days=365")
    cost.calls, cost.items, cost.operations, cost.round_trips

* SQLite: ``calls`` are the SQL statements run (the connection's trace
  callback), ``items`` the keys the statements name (``?`` bound in ``IN``
  lists and key lookups).
* Redis: ``calls`` are the commands redis-server processed (``INFO
  commandstats``, minus the INFO calls that measure), ``items`` its key
  lookups (``keyspace_hits`` + ``keyspace_misses``), ``round_trips`` the
  app's client's trips to the server (a command, or a whole pipeline: each
  takes a connection from the client's pool once).
* DynamoDB: ``calls`` are the HTTP requests the app's real boto3 client sends
  to moto (botocore's ``before-send`` event, retries included), ``items``
  the keys they ask for; ``consistent`` the ``ConsistentRead`` flags seen.

On SQLite and DynamoDB every call is a round trip: ``round_trips`` is ``calls``.
"""

from __future__ import annotations

import json
import re
import threading

import redis


class StorageCalls:
    def __init__(self, app):
        self.storage = app.extensions["vitae.storage"]
        self.scheme = self.storage.scheme
        self.calls = 0
        self.items = 0
        self.operations: list[str] = []
        self.consistent: list[bool] = []
        self._trips = 0

    @property
    def round_trips(self) -> int:
        return self._trips if self.scheme == "redis" else self.calls

    # -- SQLite --------------------------------------------------------------------------------
    def _sql(self, statement: str) -> None:
        self.calls += 1
        self.operations.append(statement.split(None, 1)[0].upper())
        match = re.search(r"\bIN \(([^)]*)\)", statement)
        if match:
            self.items += match[1].count(",") + 1
        elif re.search(r"\bWHERE key = ", statement):
            self.items += 1

    # -- Redis ---------------------------------------------------------------------------------
    def _redis_totals(self) -> tuple[int, int]:
        info = self._probe.info("commandstats")
        calls = sum(stats["calls"] for name, stats in info.items() if name != "cmdstat_info")
        stats = self._probe.info("stats")
        return calls, stats["keyspace_hits"] + stats["keyspace_misses"]

    # -- DynamoDB ------------------------------------------------------------------------------
    def _sent(self, request, **_):
        self.calls += 1
        operation = request.headers.get("X-Amz-Target", b"")
        operation = (operation.decode() if isinstance(operation, bytes) else operation).rsplit(".", 1)[-1]
        self.operations.append(operation)
        body = json.loads(request.body or b"{}")
        if operation == "BatchGetItem":
            for table in body["RequestItems"].values():
                self.items += len(table["Keys"])
                self.consistent.append(bool(table.get("ConsistentRead")))
        elif operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            self.items += 1
            if operation == "GetItem":
                self.consistent.append(bool(body.get("ConsistentRead")))

    def __enter__(self) -> StorageCalls:
        if self.scheme == "sqlite":
            self.storage._connection().set_trace_callback(self._sql)
        elif self.scheme == "redis":
            pool = self.storage.client.connection_pool.connection_kwargs
            self._probe = redis.Redis(host=pool["host"], port=pool["port"], password=pool.get("password"))
            self._start = self._redis_totals()
            connections = self.storage.client.connection_pool
            take = connections.get_connection

            def counted(*args, **kwargs):
                self._trips += 1
                return take(*args, **kwargs)
            connections.get_connection = counted
        else:
            self.storage.client.meta.events.register("before-send.dynamodb", self._sent)
        return self

    def __exit__(self, *exc) -> None:
        if self.scheme == "sqlite":
            self.storage._connection().set_trace_callback(None)
        elif self.scheme == "redis":
            calls, items = self._redis_totals()
            self.calls, self.items = calls - self._start[0], items - self._start[1]
            self._probe.close()
            del self.storage.client.connection_pool.get_connection  # the pool's own method again
        else:
            self.storage.client.meta.events.unregister("before-send.dynamodb", self._sent)


# -- DynamoDB capacity units ------------------------------------------------------------------------

def item_size(item: dict) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (numbers about a byte per two
    digits plus one, maps and lists 3 bytes plus a byte per element)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict) -> int:
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.strip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(inner) + 1 for name, inner in data.items())
    if kind == "L":
        return 3 + sum(_value_size(inner) + 1 for inner in data)
    if kind == "SS":
        return sum(len(inner.encode()) for inner in data)
    raise ValueError(kind)


class CapacityUnits:
    """Write and read units a DynamoDB store's requests cost, from the requests it sends and the sizes of the
    items they touch (read from the table by a second client before and after each write), as on-demand
    billing counts them: a write 1 unit per started KB of the larger of the item before and after (a failed
    condition too), 2 in a transaction; a read 1 unit per started 4 KB strongly consistent, half eventually
    consistent, at least one such unit per item asked for (a Query: per 4 KB of all it read).
    moto's own ConsumedCapacity does not follow item sizes, so it is not used.

        with CapacityUnits(storage) as units:
            ...
        units.write, units.read, units.by_operation
    """

    _WRITES = {"PutItem", "UpdateItem", "DeleteItem"}

    def __init__(self, storage):
        import boto3

        self.storage = storage
        client = storage.client
        self.probe = boto3.client("dynamodb", region_name=client.meta.region_name,
                                  endpoint_url=client.meta.endpoint_url)
        self.write = self.read = 0.0
        self.by_operation: dict[str, list[float]] = {}  # operation -> [requests, write units, read units]
        self._lock = threading.Lock()

    def _size(self, table: str, key: dict) -> int:
        item = self.probe.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(item) if item else 0

    def _writes(self, operation: str, params: dict) -> list[tuple[str, dict, int]]:
        """(table, key, weight) of each item a write request touches."""
        if operation in self._WRITES:
            key = params.get("Key") or {name: params["Item"][name] for name in ("pk", "sk")}
            return [(params["TableName"], key, 1)]
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                (_, request), = entry.items()
                key = request.get("Key") or {name: request["Item"][name] for name in ("pk", "sk")}
                found.append((request["TableName"], key, 2))
            return found
        return []

    def _before_call(self, model, params, context, **_):
        """(before-parameter-build: the request's own parameters, and the sizes of what it will write)"""
        table = params.get("TableName") or self.storage.table
        params = {**params, "TableName": table}
        context["vitae-units"] = (params, [self._size(t, key) for t, key, _ in self._writes(model.name, params)])

    def _after_call(self, model, parsed, context, **_):
        operation, write, read = model.name, 0.0, 0.0
        params, before = context.get("vitae-units", ({}, []))
        targets = self._writes(operation, params)
        if targets:
            for (table, key, weight), old in zip(targets, before, strict=True):
                write += weight * max(1, -(-max(old, self._size(table, key)) // 1024))
        elif operation in ("GetItem", "BatchGetItem", "Query"):
            read = self._reads(operation, params, parsed)
        with self._lock:
            self.write += write
            self.read += read
            totals = self.by_operation.setdefault(operation, [0, 0.0, 0.0])
            totals[0] += 1
            totals[1] += write
            totals[2] += read

    @staticmethod
    def _reads(operation: str, params: dict, parsed: dict) -> float:
        def units(size: int, consistent: bool) -> float:
            return max(1, -(-size // 4096)) * (1.0 if consistent else 0.5)
        if operation == "GetItem":
            item = parsed.get("Item")
            return units(item_size(item) if item else 0, bool(params.get("ConsistentRead")))
        if operation == "Query":
            return units(sum(item_size(item) for item in parsed.get("Items", [])), bool(params.get("ConsistentRead")))
        total = 0.0
        for table, request in params["RequestItems"].items():
            found = {(item["pk"]["S"], item["sk"]["S"]): item for item in parsed.get("Responses", {}).get(table, [])}
            for key in request["Keys"]:
                item = found.get((key["pk"]["S"], key["sk"]["S"]))
                total += units(item_size(item) if item else 0, bool(request.get("ConsistentRead")))
        return total

    def __enter__(self) -> CapacityUnits:
        events = self.storage.client.meta.events
        events.register("before-parameter-build.dynamodb", self._before_call)
        events.register("after-call.dynamodb", self._after_call)
        return self

    def __exit__(self, *exc) -> None:
        events = self.storage.client.meta.events
        events.unregister("before-parameter-build.dynamodb", self._before_call)
        events.unregister("after-call.dynamodb", self._after_call)
