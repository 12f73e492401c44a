"""One behaviour suite for the storage contract, run against every backend over a real connection."""

from __future__ import annotations

import contextlib
import inspect
import multiprocessing
import threading
import time
from collections.abc import Callable

import pytest

from service.storage import DEAD, DONE, OTHER, PENDING, Hit, Limit, Storage, StorageError, Tally, open_storage
from service.storage.base import ConfigurationError
from service.storage.dynamodb import DynamoDBStorage
from service.storage.redis import RedisStorage
from service.storage.sqlite import SQLiteStorage

from ..helpers import BACKENDS, make_storage_url, run_threads


def test_every_backend_implements_the_whole_contract():
    abstract = {name for name, member in inspect.getmembers(Storage) if getattr(member, "__isabstractmethod__", False)}
    assert {"incr", "counters", "hit", "limit", "tallies", "daily_tallies", "claim", "export", "import_",
            "check"} <= abstract
    for backend in (SQLiteStorage, RedisStorage, DynamoDBStorage):
        assert not backend.__abstractmethods__, backend
        for name in abstract:
            ours = inspect.signature(getattr(backend, name))
            contract = inspect.signature(getattr(Storage, name))
            assert list(ours.parameters) == list(contract.parameters), f"{backend.__name__}.{name}"


@pytest.mark.parametrize("url", [
    "mysql://localhost/db", "sqlite://relative.db", "sqlite:///", "redis://", "redis://host:port/0",
    "dynamodb://", "dynamodb://table?bogus=1", "dynamodb://table?shards=0", "nonsense",
], ids=str)
def test_unknown_or_malformed_urls_are_refused(url):
    with pytest.raises(ConfigurationError):
        open_storage(url)


# -- counters --------------------------------------------------------------------------------

def test_counters_start_at_zero_and_increment(storage):
    assert storage.counters(["a", "site:b"]) == {"a": 0, "site:b": 0}
    assert storage.incr("a") == 1
    assert storage.incr("a", 5) == 6
    assert storage.incr("site:b") == 1
    assert storage.incr("site:b") == 2
    assert storage.counters(["a", "site:b", "missing"]) == {"a": 6, "site:b": 2, "missing": 0}
    assert storage.counters([]) == {}
    # a display read may be eventually consistent (DynamoDB); moto, like the others, answers at once
    assert storage.counters(["a", "site:b"], consistent=False) == {"a": 6, "site:b": 2}


def _resent(store: Storage) -> Callable[[], int]:
    """How many calls the store's client has sent more than once so far (DynamoDB's SDK retry; else 0).

    A retried ``UpdateItem ADD`` whose first attempt landed counts twice: the documented limit. A
    loaded machine slows the emulator past the client's 0.8 s read timeout now and then, so a count is
    exact up to these retries, and exact when there were none.
    """
    if not isinstance(store, DynamoDBStorage):
        return lambda: 0
    calls, attempts = [], []
    store.client.meta.events.register("before-parameter-build.dynamodb", lambda **_: calls.append(1))
    store.client.meta.events.register("before-send.dynamodb", lambda **_: attempts.append(1))
    return lambda: len(attempts) - len(calls)


def test_concurrent_threads_count_exactly(storage):
    resent = _resent(storage)

    def work():
        for _ in range(500):
            storage.incr("site:views")
    run_threads([threading.Thread(target=work) for _ in range(8)])
    assert 4000 <= storage.counters(["site:views"])["site:views"] <= 4000 + resent()


def _hammer(url: str, n: int, resent_total) -> None:
    store = open_storage(url)
    resent = _resent(store)
    for _ in range(n):
        store.incr("page:/")
    with resent_total.get_lock():
        resent_total.value += resent()


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_processes_count_exactly(request, tmp_path, backend):
    url = make_storage_url(request, backend, tmp_path)
    open_storage(url).init()
    context = multiprocessing.get_context("spawn")
    resent = context.Value("i", 0)
    processes = [context.Process(target=_hammer, args=(url, 250, resent)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert 1000 <= open_storage(url).counters(["page:/"])["page:/"] <= 1000 + resent.value


def _first_connection(url: str, start) -> None:
    store = open_storage(url)
    start.wait()
    store.incr("page:/")  # opens this process's connection: WAL switch and tables on a new file


def test_processes_opening_a_new_sqlite_file_at_once_all_work(tmp_path):
    """A process's first connection switches a new file to WAL and creates the tables. Done by eight processes at
    once (gunicorn's workers, each greenlet with its own connection), SQLite refused some of them at once with
    "database is locked" (it does not wait when waiting could deadlock): in 1 of 4 rounds here."""
    # forked by a single-threaded server (fork from this many-threaded process may deadlock a child), in
    # milliseconds, and all let go at once by ``start``: as gunicorn's workers open the file
    context = multiprocessing.get_context("forkserver")
    for round_number in range(12):
        url = f"sqlite:///{tmp_path / f'new-{round_number}.db'}"
        start = context.Event()
        processes = [context.Process(target=_first_connection, args=(url, start)) for _ in range(8)]
        for process in processes:
            process.start()
        start.set()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0] * 8, f"round {round_number}"
        assert open_storage(url).counters(["page:/"]) == {"page:/": 8}


# -- values ---------------------------------------------------------------------------------

def test_values_get_set_delete(storage):
    assert storage.get("k") is None
    storage.set("k", "v1")
    assert storage.get("k") == "v1"
    storage.set("k", "v2", ttl=60)
    assert storage.get("k") == "v2"
    storage.delete("k")
    assert storage.get("k") is None
    storage.delete("k")  # absent: no error


def test_values_expire(storage):
    storage.set("short", "x", ttl=0.3)
    assert storage.add("lock", "me", ttl=0.3) is True
    assert storage.add("lock", "you", ttl=0.3) is False
    assert storage.get("lock") == "me"
    time.sleep(1.1)  # expiry is the storage's own clock; DynamoDB's TTL has 1 s resolution in moto's compare
    assert storage.get("short") is None
    assert storage.add("lock", "you", ttl=10) is True
    assert storage.get("lock") == "you"


def test_add_is_exclusive_under_contention(storage):
    winners = []
    barrier = threading.Barrier(8)

    def race(name):
        barrier.wait()
        if storage.add("refresh-lock", name, ttl=30):
            winners.append(name)
    run_threads([threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)])
    assert len(winners) == 1
    assert storage.get("refresh-lock") == winners[0]


# -- limits and hits ---------------------------------------------------------------------------

def test_limit_refuses_past_max_without_counting(storage):
    rule = Limit("rl:test:window-1", max=3, window=60)
    assert [storage.limit(rule) for _ in range(5)] == [(True, 1), (True, 2), (True, 3), (False, 3), (False, 3)]
    assert storage.limit(Limit("rl:test:window-2", max=3, window=60)) == (True, 1)


def test_limit_window_expires(storage):
    rule = Limit("rl:expiring", max=1, window=1)
    assert storage.limit(rule)[0] is True
    assert storage.limit(rule)[0] is False
    assert storage.calls(rule) == 1
    time.sleep(1.2)
    assert storage.calls(rule) == 0
    assert storage.limit(rule) == (True, 1)


def test_calls_reads_a_window_without_counting(storage):
    rule = Limit("rl:peek", max=2, window=60)
    assert storage.calls(rule) == 0
    storage.limit(rule)
    assert [storage.calls(rule) for _ in range(3)] == [1, 1, 1]
    storage.limit(rule)
    storage.limit(rule)  # refused: not counted
    assert storage.calls(rule) == 2
    storage.hit(Hit(limit=Limit("rl:peek-hit", max=5, window=60), incr=["page:/"]))
    assert storage.calls(Limit("rl:peek-hit", max=5, window=60)) == 1


def test_hit_counts_unique_once_and_reads(storage):
    def view(unique_key):
        return storage.hit(Hit(incr=["page:/", "site:views"], unique=(unique_key, 3600),
                               unique_incr=["site:uniques"], read=["page:/", "site:views", "site:uniques"]))
    first = view("visitor:a")
    assert first.allowed and first.new_unique
    assert first.counts == {"page:/": 1, "site:views": 1, "site:uniques": 1}
    again = view("visitor:a")
    assert again.allowed and not again.new_unique
    assert again.counts == {"page:/": 2, "site:views": 2, "site:uniques": 1}
    other = view("visitor:b")
    assert other.counts == {"page:/": 3, "site:views": 3, "site:uniques": 2}
    anonymous = storage.hit(Hit(incr=["page:/"], read=["page:/", "site:uniques"]))
    assert anonymous.counts == {"page:/": 4, "site:uniques": 2} and not anonymous.new_unique


def test_hit_reads_a_key_counted_twice_after_both_counts(storage):
    def view(unique_key):
        return storage.hit(Hit(incr=["k:a", "k:a"], unique=(unique_key, 3600), unique_incr=["k:a"],
                               read=["k:b", "k:a", "k:a"])).counts
    assert view("visitor:x") == {"k:a": 3, "k:b": 0}
    assert view("visitor:x") == {"k:a": 5, "k:b": 0}  # not new: the unique count is read, not counted
    storage.incr("k:b", 7)
    assert view("visitor:y") == {"k:a": 8, "k:b": 7}


def test_hit_over_the_limit_writes_nothing(storage):
    rule = Limit("rl:hit", max=2, window=60)
    spec = Hit(incr=["page:/x"], limit=rule, unique=("visitor:x", 60), unique_incr=["site:uniques"],
               read=["page:/x", "site:uniques"])
    assert storage.hit(spec).allowed
    assert storage.hit(spec).allowed
    refused = storage.hit(spec)
    assert not refused.allowed
    assert refused.counts == {"page:/x": 2, "site:uniques": 1}


def test_hit_with_a_once_key_counts_a_repeated_step_once(storage):
    """A page retrying a view whose answer it never got (a timeout, a 503 after the write) sends the same
    view id: the second step writes nothing, the rate limit included, and reads the counts."""
    rule = Limit("rl:once", max=2, window=60)

    def view(view_id: str, unique: str = "visitor:a"):
        return storage.hit(Hit(incr=["page:/", "site:views"], limit=rule, once=(f"view:{view_id}", 3600),
                               unique=(unique, 3600), unique_incr=["site:uniques"],
                               tally=[Tally("day:pages", "/", 5, 3600)], read=["page:/", "site:uniques"]))
    first = view("v1")
    assert first.allowed and not first.repeated and first.counts == {"page:/": 1, "site:uniques": 1}
    again = view("v1", unique="visitor:b")
    assert again.allowed and again.repeated and not again.new_unique
    assert again.counts == {"page:/": 1, "site:uniques": 1}
    assert storage.calls(rule) == 1
    assert view("v2").counts == {"page:/": 2, "site:uniques": 1}
    refused = view("v3")  # the window is full: not counted, and the id not kept
    assert not refused.allowed and not refused.repeated
    assert storage.get("view:v3") is None
    assert storage.counters(["site:views"]) == {"site:views": 2}
    assert storage.tallies(["day:pages"]) == {"day:pages": {"/": 2}}


# -- tallies ------------------------------------------------------------------------------------

def _tally_hit(storage, member: str, *, unique_key: str | None = None, unique_member: str = "x", cap: int = 3):
    return storage.hit(Hit(incr=["page:/"], tally=[Tally("day:pages", member, cap, 3600)],
                           unique=(unique_key, 3600) if unique_key else None,
                           unique_tally=[Tally("day:browsers", unique_member, cap, 3600)]))


def test_tally_keeps_at_most_cap_members_and_counts_the_rest_as_other(storage):
    assert storage.tallies(["day:pages", "missing"]) == {"day:pages": {}, "missing": {}}
    for member in ["/a", "/b", "/a", "/c", "/d", "/e", "/b", "/a"]:
        _tally_hit(storage, member)
    # full at /d: /b (1) gives its place up, then /c; /b comes back in /d's place (estimate 2, own count 1,
    # where /a has 2 of its own); the counts shown add up to the 8 counted
    assert storage.tallies(["day:pages"]) == {"day:pages": {"/a": 3, "/e": 1, "/b": 1, OTHER: 3}}
    assert storage.tallies([]) == {}
    assert storage.counters(["page:/"]) == {"page:/": 8}


def test_a_full_tally_keeps_the_values_with_most_counts_against_a_flood_of_new_ones(storage):
    """Referrer spam: values seen once each fill the day's cap; a value counted more keeps its place, and a real
    one that arrives after the flood is shown, not lost in (other)."""
    for member in ["real", "real", "s1", "s2", "s3", "s4", "late"]:
        _tally_hit(storage, member)
    assert storage.tallies(["day:pages"]) == {"day:pages": {"real": 2, "s4": 1, "late": 1, OTHER: 3}}
    _tally_hit(storage, "late")  # counted on from where it stands
    assert storage.tallies(["day:pages"]) == {"day:pages": {"real": 2, "s4": 1, "late": 2, OTHER: 3}}


def test_hit_counts_unique_tallies_once_per_unique_and_nothing_when_refused(storage):
    _tally_hit(storage, "/a", unique_key="visitor:1", unique_member="Firefox")
    _tally_hit(storage, "/a", unique_key="visitor:1", unique_member="Firefox")
    _tally_hit(storage, "/a", unique_key="visitor:2", unique_member="Chrome")
    _tally_hit(storage, "/b")  # no unique marker (opted out): the page counts, the browser does not
    assert storage.tallies(["day:pages", "day:browsers"]) == {
        "day:pages": {"/a": 3, "/b": 1}, "day:browsers": {"Firefox": 1, "Chrome": 1}}
    rule = Limit("rl:tally", max=1, window=60)
    spec = Hit(limit=rule, tally=[Tally("day:limited", "/x", 5, 3600)])
    assert storage.hit(spec).allowed
    assert not storage.hit(spec).allowed
    assert storage.tallies(["day:limited"]) == {"day:limited": {"/x": 1}}


def test_tallies_expire(storage):
    storage.hit(Hit(tally=[Tally("day:short", "/a", 5, 1)]))
    assert storage.tallies(["day:short"]) == {"day:short": {"/a": 1}}
    time.sleep(1.2)  # expiry is the storage's own clock
    assert storage.tallies(["day:short"]) == {"day:short": {}}
    storage.hit(Hit(tally=[Tally("day:short", "/b", 1, 60)]))  # an expired tally starts afresh, slots included
    assert storage.tallies(["day:short"]) == {"day:short": {"/b": 1}}
    storage.hit(Hit(tally=[Tally("day:other-first", OTHER, 5, 1)]))  # a key started by (other) expires too
    time.sleep(1.2)
    assert storage.tallies(["day:other-first"]) == {"day:other-first": {}}


def test_daily_tallies_read_a_range_of_days_of_several_names_at_once(storage):
    def count(key: str, member: str, ttl: int = 3600) -> None:
        storage.hit(Hit(tally=[Tally(key, member, 2, ttl)]))
    for key, member in [("s:2027-01-01:pages", "/before"), ("s:2027-01-02:pages", "/a"), ("s:2027-01-02:pages", "/a"),
                        ("s:2027-01-02:pages", "/b"), ("s:2027-01-02:pages", "/c"), ("s:2027-01-04:pages", "/a"),
                        ("s:2027-01-04:browsers", "Firefox"), ("s:2027-01-05:pages", "/after"),
                        ("s:2027-01-03:devices", "not asked"), ("other:2027-01-02:pages", "/x"),
                        ("s:2027-01-03", "/no-name"), ("s:2027-01-03:pages:more", "/deeper")]:
        count(key, member)
    count("s:2027-01-03:pages", "/short-lived", ttl=1)
    time.sleep(1.2)  # expiry is the storage's own clock
    found = storage.daily_tallies("s", ["pages", "browsers"], "2027-01-02", "2027-01-04")
    assert found == {
        "s:2027-01-02:pages": {"/a": 2, "/c": 1, OTHER: 1}, "s:2027-01-02:browsers": {},
        "s:2027-01-03:pages": {}, "s:2027-01-03:browsers": {},
        "s:2027-01-04:pages": {"/a": 1}, "s:2027-01-04:browsers": {"Firefox": 1},
    }
    # the same items through the one-key read, and back out through export
    assert storage.tallies(["s:2027-01-02:pages", "s:2027-01-03:pages:more"]) == {
        "s:2027-01-02:pages": {"/a": 2, "/c": 1, OTHER: 1}, "s:2027-01-03:pages:more": {"/deeper": 1}}
    exported = {record["key"]: record["counts"] for record in storage.export() if record["type"] == "tally"}
    assert exported["s:2027-01-02:pages"] == {"/a": 2, "/c": 1, OTHER: 1}
    assert exported["s:2027-01-04:browsers"] == {"Firefox": 1} and "s:2027-01-03:pages" not in exported
    assert storage.daily_tallies("s", ["pages"], "2027-01-03", "2027-01-03") == {"s:2027-01-03:pages": {}}


# -- logs and folds -------------------------------------------------------------------------------
# A counted view is recorded in a log by its hit; a fold makes records into hits and applies them in
# batches, exactly once. DynamoDB shows a record once it is a few seconds old: reads look from later.

LATER = 60.0  # seconds past now at which the tests read logs (past DynamoDB's settling time)


def _record(storage, text: str, **hit) -> object:
    return storage.hit(Hit(incr=["site:views"], record=("views", text), read=["site:views"], **hit))


def _as_hit(text: str) -> Hit:
    """A fold's hit for a record ``"<visitor>:<page>"``: a day view, a unique visitor, a page and a browser tally."""
    visitor, page = text.split(":")
    return Hit(incr=["site:day:d1:views"], unique=(f"visitor:d1:{visitor}", 3600),
               unique_incr=["site:uniques", "site:day:d1:uniques"], tally=[Tally("day:pages", page, 10, 3600)],
               unique_tally=[Tally("day:visitors", visitor, 10, 3600)])


def _fold_all(storage, batch: int = 3, now: float | None = None) -> int:
    """Fold every readable record, ``batch`` at a time, as the service's fold does; the batches folded by this call."""
    folded = 0
    for _ in range(100):
        start, planned = storage.fold_position("views")
        # a planned fold (one that stopped part-way) is finished with all its records, whatever ``batch``
        records = storage.log_read("views", start, batch if planned is None else 10_000, until=planned,
                                   now=now or time.time() + LATER)
        if not records:
            return folded
        folded += storage.fold("views", start, planned or records[-1][0], [_as_hit(text) for _, text in records])
    raise AssertionError("the log never ran dry")


def _folded(storage) -> tuple:
    counts = storage.counters(["site:day:d1:views", "site:uniques", "site:day:d1:uniques"])
    tallies = storage.tallies(["day:pages", "day:visitors"])
    return counts["site:day:d1:views"], counts["site:uniques"], counts["site:day:d1:uniques"], tallies


def test_a_hit_records_in_a_log_read_back_in_order(storage):
    rule = Limit("rl:log", max=3, window=60)
    for n in range(3):
        assert _record(storage, f"a:/{n}", limit=rule, once=(f"view:{n}", 60)).counts == {"site:views": n + 1}
    assert _record(storage, "a:/again", limit=rule, once=("view:1", 60)).repeated  # not recorded again
    assert not _record(storage, "a:/refused", limit=rule).allowed  # not recorded
    later = time.time() + LATER
    records = storage.log_read("views", None, 10, now=later)
    assert [text for _, text in records] == ["a:/0", "a:/1", "a:/2"]
    assert storage.log_read("views", records[0][0], 10, now=later) == records[1:]
    assert storage.log_read("views", None, 2, now=later) == records[:2]
    assert storage.log_read("views", None, 10, until=records[1][0], now=later) == records[:2]
    assert storage.log_read("views", records[-1][0], 10, now=later) == []
    assert storage.log_read("other", None, 10, now=later) == []
    assert storage.counters(["site:views"]) == {"site:views": 3}


def test_fold_applies_each_record_once_and_moves_the_position(storage):
    assert storage.fold_position("views") == (None, None)
    for text in ("a:/x", "a:/y", "b:/x", "c:/x", "b:/y"):
        _record(storage, text)
    assert _fold_all(storage, batch=2) == 3
    start, planned = storage.fold_position("views")
    assert planned is None and start == storage.log_read("views", None, 10, now=time.time() + LATER)[-1][0]
    assert _folded(storage) == (5, 3, 3, {"day:pages": {"/x": 3, "/y": 2}, "day:visitors": {"a": 1, "b": 1, "c": 1}})
    records = storage.log_read("views", None, 10, now=time.time() + LATER)
    # the same batch again, from a position that is no longer the fold's: refused, nothing applied
    assert storage.fold("views", None, records[1][0], [_as_hit(text) for _, text in records[:2]]) is False
    assert _fold_all(storage) == 0
    assert _folded(storage)[:3] == (5, 3, 3)


class _Stop(Exception):
    pass


def _stop_after(monkeypatch, storage, writes: int) -> None:
    """Make the store's next fold stop (raise) after ``writes`` of its writes, as a process killed there would."""
    left = [writes]

    def countdown():
        left[0] -= 1
        if left[0] < 0:
            raise _Stop
    if isinstance(storage, DynamoDBStorage):
        real = storage._call

        def call(operation, **kwargs):
            if operation in ("update_item", "put_item"):
                countdown()
            return real(operation, **kwargs)
        monkeypatch.setattr(storage, "_call", call)
    elif isinstance(storage, RedisStorage):  # a transaction: stopped before EXEC, nothing was applied
        real_call = storage._hit_call

        def hit_call(hit):
            countdown()
            return real_call(hit)
        monkeypatch.setattr(storage, "_hit_call", hit_call)
    else:  # one transaction: stopped inside it, nothing was applied
        real_incr = storage._incr
        monkeypatch.setattr(storage, "_incr", lambda conn, key, amount: (countdown(), real_incr(conn, key, amount))[1])


@pytest.mark.parametrize("writes", [0, 1, 2, 4, 7])
def test_a_fold_stopped_between_its_writes_is_finished_once_by_the_next(storage, monkeypatch, writes):
    for text in ("a:/x", "b:/x", "a:/y", "c:/z"):
        _record(storage, text)
    with monkeypatch.context() as patch:
        _stop_after(patch, storage, writes)
        with contextlib.suppress(_Stop):  # a fold with fewer writes than that finishes
            _fold_all(storage, batch=4)
    _fold_all(storage, batch=2)  # a new run: it finishes the stopped batch (same end) first
    assert _folded(storage) == (4, 3, 3, {"day:pages": {"/x": 2, "/y": 1, "/z": 1},
                                          "day:visitors": {"a": 1, "b": 1, "c": 1}})


def test_racing_folds_and_concurrent_views_count_every_view_once(storage):
    from service.storage.dynamodb import SETTLE

    texts = [f"v{n % 7}:/p{n % 3}" for n in range(40)]
    errors: list[Exception] = []
    for text in texts[:20]:
        _record(storage, text)
    # the folds read as a moment after these 20 were written: on DynamoDB, the records settled by then
    settled = time.time() + SETTLE  # phase two's records all have later ids

    def view(part):
        for text in part:
            _record(storage, text)

    def fold():
        try:
            for _ in range(3):
                _fold_all(storage, batch=4, now=settled)
        except Exception as exc:  # asserted below
            errors.append(exc)
    run_threads([threading.Thread(target=view, args=(texts[20 + n::4],)) for n in range(4)]
                + [threading.Thread(target=fold) for _ in range(3)])
    _fold_all(storage, batch=5)
    assert errors == []
    pages = {f"/p{k}": sum(1 for n in range(40) if n % 3 == k) for k in range(3)}
    assert _folded(storage) == (40, 7, 7, {"day:pages": pages, "day:visitors": {f"v{k}": 1 for k in range(7)}})
    assert storage.counters(["site:views"]) == {"site:views": 40}


# -- queues -------------------------------------------------------------------------------------

def test_queue_lifecycle(storage):
    now = 1_800_000_000.0
    first = storage.enqueue("outbox", {"text": "one", "n": 1.5}, now=now)
    second = storage.enqueue("outbox", {"text": "two"}, now=now + 1)
    assert storage.queue_counts("outbox") == {PENDING: 2, DONE: 0, DEAD: 0}
    assert [i.id for i in storage.items("outbox")] == [first.id, second.id]

    claimed = storage.claim("outbox", lease=30, limit=1, now=now + 2)
    assert [i.id for i in claimed] == [first.id]
    item = claimed[0]
    assert item.payload == {"text": "one", "n": 1.5} and item.attempts == 1 and item.token
    # leased: not claimable again until the lease ends, but the next one is
    assert [i.id for i in storage.claim("outbox", lease=30, limit=5, now=now + 3)] == [second.id]
    assert storage.claim("outbox", lease=30, limit=5, now=now + 4) == []

    assert storage.ack("outbox", item.id, "wrong-token", now=now + 5) is False
    assert storage.ack("outbox", item.id, item.token, now=now + 5) is True
    assert storage.ack("outbox", item.id, item.token, now=now + 5) is False  # once only
    assert storage.queue_counts("outbox") == {PENDING: 1, DONE: 1, DEAD: 0}
    done = storage.items("outbox", DONE)
    assert [i.id for i in done] == [first.id] and done[0].state == DONE and done[0].token is None


def test_queue_release_and_bury(storage):
    now = 1_800_000_000.0
    item = storage.enqueue("outbox", {"text": "retry me"}, now=now)
    lease = storage.claim("outbox", lease=30, now=now)[0]
    assert storage.release("outbox", item.id, lease.token, ready_at=now + 100, error="HTTP 500", now=now + 1)
    assert storage.claim("outbox", lease=30, now=now + 50) == []  # not before its retry time
    again = storage.claim("outbox", lease=30, now=now + 100)[0]
    assert again.attempts == 2 and again.last_error == "HTTP 500"
    assert storage.release("outbox", item.id, lease.token, ready_at=now, now=now) is False  # stale token
    assert storage.release("outbox", item.id, again.token, ready_at=now + 100, now=now + 100)  # no error: cleared
    cleared = storage.claim("outbox", lease=30, now=now + 100)[0]
    assert cleared.last_error is None and cleared.attempts == 3
    again = cleared
    assert storage.bury("outbox", item.id, again.token, reason="chat not found", now=now + 101)
    assert storage.claim("outbox", lease=30, now=now + 10_000) == []
    dead = storage.items("outbox", DEAD)
    assert [(i.id, i.last_error) for i in dead] == [(item.id, "chat not found")]


def test_expired_lease_is_claimable_again(storage):
    now = 1_800_000_000.0
    item = storage.enqueue("outbox", {"text": "x"}, now=now)
    crashed = storage.claim("outbox", lease=10, now=now)[0]
    assert storage.claim("outbox", lease=10, now=now + 5) == []
    rescued = storage.claim("outbox", lease=10, now=now + 11)[0]
    assert rescued.id == item.id and rescued.token != crashed.token
    assert storage.ack("outbox", item.id, crashed.token, now=now + 12) is False
    assert storage.ack("outbox", item.id, rescued.token, now=now + 12) is True


def test_concurrent_claims_never_share_a_record(storage):
    for n in range(30):
        storage.enqueue("outbox", {"n": n})
    taken: list[str] = []
    refused: list[str | Exception] = []  # acks that failed: asserted below, where a failure fails the test
    lock = threading.Lock()

    def worker():
        try:
            while got := storage.claim("outbox", lease=60, limit=2):
                with lock:
                    taken.extend(i.id for i in got)
                refused.extend(item.id for item in got if not storage.ack("outbox", item.id, item.token))
        except Exception as exc:
            refused.append(exc)
    run_threads([threading.Thread(target=worker) for _ in range(4)])
    assert refused == []
    assert len(taken) == 30 and len(set(taken)) == 30
    assert storage.queue_counts("outbox")[DONE] == 30


# -- operations ---------------------------------------------------------------------------------

def _fill(store: Storage) -> None:
    store.incr("page:/", 7)
    store.incr("site:views", 42)
    store.set("cache:github", '{"events": []}', ttl=3600)
    store.set("forever", "v")
    store.limit(Limit("rl:carried", max=3, window=3600))
    for member in ("/a", "/a", "/b", "/c"):
        store.hit(Hit(tally=[Tally("day:pages", member, 2, 3600)]))
        store.hit(Hit(tally=[Tally("stats:2027-01-15:pages", member, 2, 3600)]))
    store.enqueue("outbox", {"text": "pending"}, now=1_800_000_000.0)
    item = store.enqueue("outbox", {"text": "done"}, now=1_800_000_001.0)
    token = store.claim("outbox", lease=60, now=1_800_000_000.0)[0].token
    assert store.release("outbox", store.items("outbox")[0].id, token, ready_at=1_800_000_000.0)
    for leased in store.claim("outbox", lease=60, limit=2, now=1_800_000_002.0):
        if leased.id == item.id:
            store.ack("outbox", item.id, leased.token)
        else:
            store.release("outbox", leased.id, leased.token, ready_at=1_800_000_000.0)


def _assert_same_records(actual, expected) -> None:
    """The same records, expiry times within a second: Redis exports an expiry as its clock's now plus the
    key's remaining milliseconds, so two exports of one key differ by the milliseconds between them (rounding
    both to seconds still splits them across a boundary now and then)."""
    def split(records):
        out = sorted((({**record, "expires_at": None} if "expires_at" in record else record, record.get("expires_at"))
                      for record in map(dict, records)), key=lambda pair: repr(pair[0]))
        return [record for record, _ in out], [expires for _, expires in out]
    (records, expiries), (wanted, wanted_expiries) = split(actual), split(expected)
    assert records == wanted
    for got, want in zip(expiries, wanted_expiries, strict=True):
        assert (got is None) == (want is None) and (got is None or abs(got - want) < 1.0), (got, want)


@pytest.mark.parametrize("source", BACKENDS)
@pytest.mark.parametrize("target", BACKENDS)
def test_export_import_round_trip_between_backends(request, tmp_path, source, target):
    src = open_storage(make_storage_url(request, source, tmp_path / "src"))
    dst = open_storage(make_storage_url(request, target, tmp_path / "dst"))
    src.init()
    dst.init()
    _fill(src)
    exported = list(src.export())
    assert {r["type"] for r in exported} == {"counter", "value", "tally", "queue"}
    assert dst.import_(exported) == len(exported)
    assert dst.import_(exported) == len(exported)  # idempotent
    assert dst.counters(["page:/", "site:views"]) == {"page:/": 7, "site:views": 42}
    assert dst.get("forever") == "v"
    assert dst.tallies(["day:pages"]) == {"day:pages": {"/a": 2, "/c": 1, OTHER: 1}}  # /c took /b's place
    assert dst.daily_tallies("stats", ["pages"], "2027-01-15", "2027-01-15") == {
        "stats:2027-01-15:pages": {"/a": 2, "/c": 1, OTHER: 1}}
    assert dst.queue_counts("outbox") == src.queue_counts("outbox") == {PENDING: 1, DONE: 1, DEAD: 0}
    _assert_same_records(dst.export(), exported)
    assert dst.limit(Limit("rl:carried", max=3, window=3600)) == (True, 2)  # the window carries on
    # the imported queue still works: the pending record is claimable
    assert [i.payload for i in dst.claim("outbox", lease=5, now=1_800_000_100.0)] == [{"text": "pending"}]


def test_dynamodb_daily_tallies_of_the_earlier_layout_move_with_export_and_import(request, tmp_path):
    store = open_storage(make_storage_url(request, "dynamodb", tmp_path))
    expires = {"N": str(int(time.time()) + 3600)}
    for sk, n in (("/a", "2"), ("#", "1")):  # as written before daily tallies shared a partition
        store.client.put_item(TableName=store.table, Item={"pk": {"S": "t#stats:2027-01-15:pages"}, "sk": {"S": sk},
                                                           "n": {"N": n}, "expires_at": expires})
    assert store.daily_tallies("stats", ["pages"], "2027-01-15", "2027-01-15") == {"stats:2027-01-15:pages": {}}
    store.hit(Hit(tally=[Tally("stats:2027-01-15:pages", "/b", 5, 3600)]))  # counted after the upgrade
    for _ in range(2):  # moving twice changes nothing more
        store.import_(list(store.export()))
        assert store.daily_tallies("stats", ["pages"], "2027-01-15", "2027-01-15") == {
            "stats:2027-01-15:pages": {"/a": 2, "/b": 1}}


# -- DynamoDB: a conditional write whose answer was lost -------------------------------------------
# botocore retries a call whose answer never came (read timeout, dropped connection). When the first
# attempt had succeeded, the retry finds its own result and its condition false: the store must still
# report the write as done. A proxy in front of moto loses one answer for real.

def _lost_claim(direct, lossy):
    item = direct.enqueue("outbox", {"n": 1})
    claimed = lossy.claim("outbox", lease=60)
    assert [i.id for i in claimed] == [item.id]
    assert direct.items("outbox")[0].token == claimed[0].token  # the lease reported is the lease held


def _lost_move(state, direct, lossy):
    item = direct.enqueue("outbox", {"n": 1})
    lease = direct.claim("outbox", lease=60)[0]
    if state == DONE:
        assert lossy.ack("outbox", item.id, lease.token) is True
    else:
        assert lossy.bury("outbox", item.id, lease.token, reason="chat not found") is True
    assert direct.queue_counts("outbox")[state] == 1
    assert lossy.ack("outbox", item.id, lease.token) is False  # a second move with the same lease is not ours


def _lost_release(direct, lossy):
    item = direct.enqueue("outbox", {"n": 1})
    lease = direct.claim("outbox", lease=60)[0]
    assert lossy.release("outbox", item.id, lease.token, ready_at=0, error="HTTP 500") is True
    assert [i.last_error for i in direct.claim("outbox", lease=60)] == ["HTTP 500"]


def _lost_add(direct, lossy):
    assert lossy.add("refresh-lock", "me", ttl=30) is True
    assert direct.get("refresh-lock") == "me"
    assert lossy.add("refresh-lock", "me", ttl=30) is False  # held, if by the same value


def _lost_limit(direct, lossy):
    rule = Limit("rl:lost", max=2, window=60)
    assert lossy.limit(rule) == (True, 1)
    assert direct.limit(rule) == (True, 2)  # the retry did not count the call twice


def _lost_new_window(direct, lossy):
    direct.import_([{"type": "value", "key": "rl:old", "value": "2", "expires_at": time.time() - 5}])
    assert lossy.limit(Limit("rl:old", max=2, window=60)) == (True, 1)


def _lost_evict(direct, lossy):
    direct.hit(Hit(tally=[Tally("day:referrers", "spam.example", 1, 3600)]))
    lossy.hit(Hit(tally=[Tally("day:referrers", "real.example", 1, 3600)]))  # takes the full tally's one place
    assert direct.tallies(["day:referrers"]) == {"day:referrers": {"real.example": 1, OTHER: 1}}


def _lost_fold(direct, lossy):
    for text in ("a:/x", "b:/x", "a:/y"):
        _record(direct, text)
    _fold_all(lossy)
    assert _folded(direct) == (3, 2, 2, {"day:pages": {"/x": 2, "/y": 1}, "day:visitors": {"a": 1, "b": 1}})


@pytest.mark.parametrize(("operation", "scenario"), [
    pytest.param("UpdateItem", _lost_claim, id="claim"),
    pytest.param("TransactWriteItems", lambda *stores: _lost_move(DONE, *stores), id="ack"),
    pytest.param("TransactWriteItems", lambda *stores: _lost_move(DEAD, *stores), id="bury"),
    pytest.param("UpdateItem", _lost_release, id="release"),
    pytest.param("UpdateItem", _lost_add, id="add"),
    pytest.param("UpdateItem", _lost_limit, id="limit"),
    pytest.param("PutItem", _lost_new_window, id="limit-new-window"),
    pytest.param("PutItem", _lost_evict, id="tally"),
    pytest.param("UpdateItem", _lost_fold, id="fold-plan"),
    pytest.param("PutItem", _lost_fold, id="fold-marker"),
])
def test_dynamodb_write_whose_answer_was_lost_is_reported_done(request, tmp_path, moto_server, operation, scenario):
    from ..servers import LossyProxy

    url = make_storage_url(request, "dynamodb", tmp_path)
    proxy = LossyProxy(moto_server.port).start()
    try:
        lossy = open_storage(url.replace(moto_server.endpoint, proxy.endpoint))
        proxy.lose_next_answer(operation)
        scenario(open_storage(url), lossy)
        assert proxy.attempts(operation) >= 2  # the answer was lost and the call retried
    finally:
        proxy.stop()


# -- failures become StorageError ------------------------------------------------------------

def test_a_sqlite_file_from_before_heavy_hitters_gets_its_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE tallies (key TEXT NOT NULL, member TEXT NOT NULL, n INTEGER NOT NULL, "
                    "expires_at REAL, PRIMARY KEY (key, member)) WITHOUT ROWID")
        old.execute("INSERT INTO tallies VALUES ('day:pages', '/a', 4, ?)", (time.time() + 60,))
    store = open_storage(f"sqlite:///{path}")
    store.hit(Hit(tally=[Tally("day:pages", "/b", 1, 60)]))
    assert store.tallies(["day:pages"]) == {"day:pages": {"/b": 1, OTHER: 4}}


def test_a_dynamodb_table_s_tallies_from_before_one_item_a_tally_move_over_by_export_and_import(request, tmp_path):
    store = open_storage(make_storage_url(request, "dynamodb", tmp_path))
    expires = str(time.time() + 3600)
    for sk, n in (("/a", "5"), ("/b", "2"), ("#", "2"), (OTHER, "1")):  # the layout before: an item a member
        store.client.put_item(TableName=store.table, Item={"pk": {"S": "t#day:pages"}, "sk": {"S": sk},
                                                           "n": {"N": n}, "expires_at": {"N": expires}})
    exported = [record for record in store.export() if record["type"] == "tally"]
    assert [record["counts"] for record in exported] == [{"/a": 5, "/b": 2, OTHER: 1}]
    store.import_(exported)
    assert store.tallies(["day:pages"]) == {"day:pages": {"/a": 5, "/b": 2, OTHER: 1}}


def test_unreachable_backends_raise_storage_error_quickly(tmp_path, moto_server):
    from ..servers import free_port

    dead_port = free_port()
    stores = [
        open_storage(f"redis://127.0.0.1:{dead_port}/0"),
        open_storage(f"dynamodb://t?region=us-east-1&endpoint_url=http://127.0.0.1:{dead_port}"),
        open_storage(f"sqlite:///{tmp_path}/not-a-dir.db/x/y.db".replace("not-a-dir.db", "file")),
    ]
    (tmp_path / "file").write_text("a file where a folder should be")
    for store in stores:
        started = time.monotonic()
        with pytest.raises(StorageError):
            store.incr("x")
        with pytest.raises(StorageError):
            store.check()
        assert time.monotonic() - started < 6


@pytest.mark.server
def test_dynamodb_calls_only_the_documented_iam_actions(request, tmp_path):
    """The set the Terraform role grants is exactly what the running service calls."""
    from service.storage.dynamodb import ADMIN_IAM_ACTIONS, OPERATION_ACTIONS, RUNTIME_IAM_ACTIONS

    called: list[str] = []

    def recorded_store():
        store = open_storage(make_storage_url(request, "dynamodb", tmp_path))
        store.client.meta.events.register("before-call.dynamodb", lambda model, **_: called.append(model.name))
        return store
    # runtime: everything the views and the outbox do, each scenario on a fresh table
    for scenario in (test_hit_over_the_limit_writes_nothing, test_queue_release_and_bury, test_queue_lifecycle,
                     test_fold_applies_each_record_once_and_moves_the_position,
                     test_a_hit_records_in_a_log_read_back_in_order,
                     test_values_get_set_delete, lambda store: store.check()):
        scenario(recorded_store())
    runtime = set().union(*(OPERATION_ACTIONS[name] for name in called))
    assert runtime == RUNTIME_IAM_ACTIONS
    store = recorded_store()
    store.incr("page:/")
    called.clear()
    store.init()
    store.import_(list(store.export()))
    admin = set().union(*(OPERATION_ACTIONS[name] for name in called))
    assert admin - RUNTIME_IAM_ACTIONS <= ADMIN_IAM_ACTIONS
    assert {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DescribeTable"} <= admin
