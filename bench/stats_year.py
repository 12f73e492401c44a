"""What the owner's longest report costs: a year compared with the year before (``range=365d``).

Fills SQLite, Redis and DynamoDB (moto on loopback) with 730 days of daily detail for every stats
dimension through the storage's own import, then times `service.stats.report.build` for ``range=365d``
with its comparison (one ``daily_tallies`` call; on DynamoDB the read is clamped to the retention, so
400 days). Two fillings: ``typical`` (20 values a dimension and day, short values) and ``full`` (every
dimension at ``STATS_DAILY_VALUES`` = 100 values a day, each at its longest: the cap's worst case).

For DynamoDB it also adds up what the same Queries would cost on AWS from the items' sizes (moto does
not cut a Query at 1 MB): the bytes per dimension, the 1 MB pages each Query would take (dependent
requests, one after another), and the read units (0.5 per started 4 KB per page, eventually
consistent). Timings are of this machine and of moto, so only their proportions mean much.

    python -m bench.stats_year [--runs 5] [--backends sqlite,redis,dynamodb] [--fillings typical,full]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from service.stats import report
from service.stats.counting import DIMENSIONS, key
from service.storage import open_storage
from tests.servers import MotoProcess, RedisServer

TODAY = dt.date(2027, 1, 15)
RETENTION = 400
DAYS = 730
#: (values a day, characters of a page, of a host or campaign) per filling.
FILLINGS = {"typical": (20, 24, 14), "full": (100, 200, 100)}
#: Distinct values a dimension can have at all (fixed buckets), whatever the filling.
FIXED = {"browsers": 11, "devices": 4}


def records(values: int, page: int, host: int):
    """The tally records of `DAYS` days ending `TODAY` (as `Storage.export` writes them)."""
    expires = time.time() + 30 * 86400
    for offset in range(DAYS):
        date = (TODAY - dt.timedelta(days=offset)).isoformat()
        for dimension in DIMENSIONS:
            width = page if dimension == "pages" else 2 if dimension == "countries" else host
            count = min(values, FIXED.get(dimension, values))
            members = {f"{n:04d}".ljust(width, "x")[:width]: 1 + (n * 7 + offset) % 50 for n in range(count)}
            yield {"type": "tally", "key": key(date, dimension), "counts": members, "expires_at": expires}


def _size(value: dict) -> int:
    """A DynamoDB attribute value's size in bytes, by AWS's rules (close enough for read units)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + _size(item) + 1 for name, item in inner.items())
    if kind == "L":
        return 3 + sum(_size(item) + 1 for item in inner)
    return 1


def dynamodb_cost(storage) -> dict:
    """Bytes, 1 MB pages and read units the year's Queries would cost on AWS (one Query per dimension)."""
    first = (TODAY - dt.timedelta(days=RETENTION - 1)).isoformat()
    sizes, pages, units = {}, 0, 0.0
    for dimension in DIMENSIONS:
        answer = storage.client.query(
            TableName=storage.table, KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={":pk": {"S": f"td#stats:{dimension}"}, ":a": {"S": first},
                                       ":b": {"S": TODAY.isoformat()}})
        items = [sum(len(name) + _size(value) for name, value in item.items()) for item in answer["Items"]]
        sizes[dimension] = sum(items)
        page = 0
        for size in items + [None]:  # cut into 1 MB pages as DynamoDB does, each page's units rounded up
            if size is None or page + size > 1_048_576:
                pages += 1
                units += 0.5 * math.ceil(page / 4096)
                page = 0
            if size is not None:
                page += size
    return {"bytes": sum(sizes.values()), "largest_dimension_bytes": max(sizes.values()), "pages": pages,
            "pages_in_sequence": max(math.ceil(size / 1_048_576) for size in sizes.values()), "read_units": units}


def measure(runs: int, backends: set[str], fillings: set[str]) -> list[dict]:
    redis, moto = RedisServer().start(), MotoProcess().start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="vitae-stats-year-") as folder:
            for filling, (values, page, host) in FILLINGS.items():
                if filling not in fillings:
                    continue
                for backend, url in (("sqlite", f"sqlite:///{Path(folder) / filling}.db"),
                                     ("redis", f"{redis.url}?prefix=b{uuid.uuid4().hex[:6]}:"),
                                     ("dynamodb", f"dynamodb://b-{uuid.uuid4().hex[:10]}?region=us-east-1"
                                                  f"&endpoint_url={moto.endpoint}")):
                    if backend not in backends:
                        continue
                    storage = open_storage(url)
                    if backend == "dynamodb":  # moto on a busy machine answers a year's Query slower than AWS
                        import boto3
                        from botocore.config import Config
                        storage._client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto.endpoint,
                                                       config=Config(read_timeout=60, retries={"max_attempts": 1}))
                    storage.init()
                    storage.import_(records(values, page, host))
                    span = report.parse_range({"range": "365d"}, TODAY, RETENTION)
                    timings, reads = [], []
                    first = (TODAY - dt.timedelta(days=RETENTION - 1)).isoformat()
                    for _ in range(runs):
                        started = time.perf_counter()
                        data = report.build(storage, span)
                        timings.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        storage.daily_tallies("stats", DIMENSIONS, first, TODAY.isoformat())
                        reads.append(time.perf_counter() - started)
                    row = {"filling": filling, "backend": backend, "seconds": round(statistics.median(timings), 3),
                           "read_seconds": round(statistics.median(reads), 3),
                           "report_json_bytes": len(json.dumps(data))}
                    if backend == "dynamodb":
                        row.update(dynamodb_cost(storage))
                    results.append(row)
                    print(row, flush=True)
                    storage.close()
    finally:
        redis.cleanup()
        moto.stop()
    return results


def main() -> None:
    # boto3 talks to moto on loopback only; these dummy credentials never leave the machine
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    parser = argparse.ArgumentParser(prog="python -m bench.stats_year", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="reports built per backend and filling (median)")
    parser.add_argument("--backends", default="sqlite,redis,dynamodb", help="comma-separated")
    parser.add_argument("--fillings", default=",".join(FILLINGS), help="comma-separated: typical, full")
    options = parser.parse_args()
    measure(options.runs, set(options.backends.split(",")), set(options.fillings.split(",")))


if __name__ == "__main__":
    main()
