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
