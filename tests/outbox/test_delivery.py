"""The outbox against a fake Telegram on loopback: failures and recovery, killed and concurrent workers,
backoff, dead letters, per-sender order, the `flask outbox` commands and the scheduled-event entry point."""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from service import tasks
from service.channels.telegram_api import Telegram
from service.outbox import delivery
from service.storage import DEAD, DONE, PENDING

from ..fakes import Reply
from ..helpers import BACKENDS, ROOT, run_threads

TOKEN = "987654321:AAH-outbox_TEST-token"
PATH = f"/bot{TOKEN}/sendMessage"
OK = {"ok": True, "result": {"message_id": 1}}


def fail_500():
    return Reply(500, json={"ok": False, "error_code": 500, "description": "Internal Server Error"})


def fail_429(seconds):
    return Reply(429, json={"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {seconds}",
                            "parameters": {"retry_after": seconds}})


def fail_timeout():
    return Reply(504, body="", delay=0.6)  # held past TELEGRAM_TIMEOUT, and not a delivery


class FakeTelegram:
    """The fake Bot API's sendMessage: first the scripted failures, then success; records what arrived when."""

    def __init__(self, upstream, clock=None, failures=(), delay=0.0):
        self.failures = list(failures)
        self.clock = clock
        self.delay = delay
        self.lock = threading.Lock()
        self.delivered: list[str] = []      # texts answered 200, in order
        self.attempts: list[tuple[float, int]] = []  # (app time, status answered)
        upstream.script("POST", PATH, self)

    def __call__(self, recorded):
        with self.lock:
            reply = self.failures.pop(0) if self.failures else Reply(200, json=OK, delay=self.delay)
            self.attempts.append((self.clock.now if self.clock else time.time(), reply.status))
            if reply.status == 200:
                self.delivered.append(recorded.json()["text"])
        return reply

    def ids(self) -> list[str]:
        return [m[1] for text in self.delivered if (m := re.search(r"<b>Id:</b> <code>([0-9a-f]+)</code>", text))]

    def bodies(self) -> list[str]:
        return [re.search(r"<pre>(.*)</pre>", text, re.S)[1] for text in self.delivered]


def telegram_app(make_app, backend, upstream, **settings):
    config = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "1001", "TELEGRAM_API_URL": upstream.url,
              "TELEGRAM_TIMEOUT": "0.2", "OUTBOX_INLINE_SECONDS": "0", "CONTACT_RATE_LIMIT": "off",
              "CONTACT_GLOBAL_RATE_LIMIT": "off", **settings}
    return make_app(backend, **config)


def submit(client, sender: str, text: str) -> str:
    response = client.post("/api/contact", json={"name": sender.title(), "email": f"{sender}@example.com",
                                                 "message": text})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def deliver(app, **kwargs):
    return delivery.deliver(app.extensions["vitae.deps"], **kwargs)


def store(app):
    return app.extensions["vitae.storage"]


def wait_until(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_sender_order(fake: FakeTelegram):
    seen: dict[str, int] = {}
    for body in fake.bodies():
        sender, number = body.split(" #")
        assert int(number) > seen.get(sender, -1), f"{sender} #{number} after #{seen[sender]}"
        seen[sender] = int(number)


def worker_env(app, **extra) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TELEGRAM_", "OUTBOX_"))}
    env.update(FLASK_APP="service.wsgi", STORAGE_URL=app.config["STORAGE_URL"], SECRET_KEY="test-secret-key",
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="1001", TELEGRAM_API_URL=app.config["TELEGRAM_API_URL"],
               VITAE_INSTANCE_PATH=str(Path(app.instance_path)), PYTHONUNBUFFERED="1", **extra)
    return env


def kill_worker_after_it_sent(tmp_path, env: dict[str, str], sent, what: str, hanging: threading.Event) -> None:
    """Runs ``flask outbox deliver`` with ``env``, kills it (SIGKILL) once ``sent()`` is true, while the upstream
    still holds its answer, then lets the fakes answer again (``hanging``)."""
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - open while the worker runs
    worker = subprocess.Popen([sys.executable, "-m", "flask", "outbox", "deliver"], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(sent, what=what)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
        hanging.set()


# -- failure and recovery ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_200_messages_survive_a_failing_telegram_exactly_once_in_sender_order(make_app, upstream, clock, backend):
    failures = [fail_500(), fail_429(30), fail_timeout()] * 6
    fake = FakeTelegram(upstream, clock, failures)
    app = telegram_app(make_app, backend, upstream)
    client = app.test_client()
    senders = [f"sender{n}" for n in range(40)]
    sent = collections.Counter()
    ids = []
    for n in range(200):
        sender = senders[(n * 7 + n // 13) % len(senders)]
        ids.append(submit(client, sender, f"{sender} #{sent[sender]}"))
        sent[sender] += 1
        clock.advance(0.5)
    storage = store(app)
    for _ in range(300):  # rounds of a worker; time moves on to the next retry between them
        summary = deliver(app)
        if summary["paused_until"]:
            clock.now = summary["paused_until"]
        elif not summary["delivered"]:
            pending = storage.items("outbox", PENDING, limit=1000)
            if not pending:
                break
            clock.now = max(clock.now, min(item.ready_at for item in pending))
    assert storage.queue_counts("outbox") == {PENDING: 0, DONE: 200, DEAD: 0}
    assert collections.Counter(fake.ids()) == collections.Counter(ids)  # every one, exactly once
    assert_sender_order(fake)
    assert not fake.failures
    # the pauses honoured Telegram's retry_after and grew while it kept failing
    statuses = [status for _, status in fake.attempts]
    assert statuses.count(429) == 6 and statuses.count(504) == 6 and statuses.count(500) == 6
    for (at, status), (next_at, _) in zip(fake.attempts, fake.attempts[1:], strict=False):
        if status == 429:
            assert next_at - at >= 30
        elif status in (500, 504):
            assert next_at - at >= delivery.BACKOFF_BASE


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_worker_s_messages_are_delivered_after_its_lease(make_app, upstream, clock, backend, tmp_path):
    hanging = threading.Event()
    upstream.script("POST", PATH, lambda recorded: (hanging.wait(20), Reply(500))[1])
    app = telegram_app(make_app, backend, upstream)
    clock.now = time.time()  # the worker runs on real time
    ids = []
    for n in range(3):
        ids.append(submit(app.test_client(), "kim", f"kim #{n}"))
        clock.advance(0.01)
    kill_worker_after_it_sent(tmp_path, worker_env(app, OUTBOX_LEASE_SECONDS="10", TELEGRAM_TIMEOUT="30"),
                              lambda: upstream.count("POST", PATH) == 1, "the worker's first send", hanging)
    killed_at = time.time()
    leased = store(app).items("outbox", PENDING)
    assert [item.id for item in leased] == ids
    assert all(item.attempts == 1 and killed_at < item.ready_at <= killed_at + 10 for item in leased)
    fake = FakeTelegram(upstream, clock)
    # another worker while the lease holds: nothing to take
    clock.now = time.time()
    assert deliver(app)["delivered"] == 0 and not fake.delivered
    # once the lease has run out, every message goes, once, in order
    clock.now = max(item.ready_at for item in leased) + 0.001
    assert deliver(app)["delivered"] == 3
    assert fake.ids() == ids and fake.bodies() == ["kim #0", "kim #1", "kim #2"]
    assert store(app).queue_counts("outbox")[DONE] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_at_once_never_send_a_message_twice(make_app, upstream, clock, backend):
    fake = FakeTelegram(upstream, clock, delay=0.003)
    # A read timeout far above any scheduling delay: a late answer would be a (legitimate) second send.
    first = telegram_app(make_app, backend, upstream, TELEGRAM_TIMEOUT="10")
    second = telegram_app(make_app, backend, upstream, STORAGE_URL=first.config["STORAGE_URL"], TELEGRAM_TIMEOUT="10")
    client = first.test_client()
    ids = []
    for n in range(60):
        ids.append(submit(client, f"s{n % 6}", f"s{n % 6} #{n // 6}"))
        clock.advance(0.01)
    took_part = collections.Counter()
    # Overlap is made certain, not left to the thread scheduler: the first message sent waits (bounded) until
    # the other worker's round has ended, so that worker claims while this one holds its batch.
    round_over = threading.Event()
    first_send = threading.Lock()
    answer = fake.__call__

    def held_first(recorded):
        if first_send.acquire(blocking=False):
            round_over.wait(20)
        return answer(recorded)
    upstream.script("POST", PATH, held_first)

    def work(app, name, barrier):
        barrier.wait()
        summary = deliver(app)
        round_over.set()
        took_part[name] += summary["delivered"] + summary["deferred"]

    for _ in range(10):
        barrier = threading.Barrier(2)
        run_threads([threading.Thread(target=work, args=(app, name, barrier)) for app, name in
                     ((first, "first"), (second, "second"))], timeout=60)
        if not store(first).items("outbox", PENDING):
            break
        clock.advance(first.config["OUTBOX_LEASE_SECONDS"] + 1)  # messages deferred behind the other's lease
    assert store(first).queue_counts("outbox") == {PENDING: 0, DONE: 60, DEAD: 0}
    assert sorted(fake.ids()) == sorted(ids) and len(fake.ids()) == 60
    assert took_part["first"] > 0 and took_part["second"] > 0, took_part
    assert_sender_order(fake)


def test_threads_of_one_app_share_its_telegram_client(make_app, upstream, clock):
    """Two threads of one app deliver through the app's one Telegram client: every message once, in order."""
    fake = FakeTelegram(upstream, clock, delay=0.01)
    app = telegram_app(make_app, "sqlite", upstream)
    ids = [submit(app.test_client(), f"t{n % 4}", f"t{n % 4} #{n // 4}") for n in range(24)]
    deps = app.extensions["vitae.deps"]
    for _ in range(10):
        barrier = threading.Barrier(2)
        run_threads([threading.Thread(target=lambda gate: (gate.wait(), deliver(app)), args=(barrier,))
                     for _ in range(2)], timeout=60)
        if not store(app).items("outbox", PENDING):
            break
        clock.advance(app.config["OUTBOX_LEASE_SECONDS"] + 1)
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 24, DEAD: 0}
    assert sorted(fake.ids()) == sorted(ids) and len(fake.ids()) == 24
    assert_sender_order(fake)

    def rebuild(settings):
        raise AssertionError("the app's Telegram client was built again")

    client = deps.client("telegram", rebuild)  # built once, on the first delivery
    assert isinstance(client, Telegram) and client._session is not None


# -- backoff, dead letters, order ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_backoff_doubles_honours_retry_after_and_dead_letters_at_max_age(make_app, upstream, clock, backend):
    fake = FakeTelegram(upstream, clock, [fail_500(), fail_500(), fail_429(300)] + [fail_500()] * 20)
    app = telegram_app(make_app, backend, upstream, OUTBOX_MAX_AGE="900")
    submit(app.test_client(), "ann", "ann #0")
    storage = store(app)
    start = clock.now
    waits = []
    while storage.items("outbox", PENDING):
        before = clock.now
        assert deliver(app)["delivered"] == 0
        [item] = storage.items("outbox", PENDING) or [None]
        if item is None:
            break
        waits.append(item.ready_at - before)
        # nothing is sent before the retry is due
        clock.now = item.ready_at - 0.5
        tried = len(fake.attempts)
        assert deliver(app)["delivered"] == 0 and len(fake.attempts) == tried
        clock.now = item.ready_at
    assert waits[:6] == [10, 20, 300, 80, 160, 320]
    assert clock.now == start + 900  # the last retry is at the deadline exactly
    [dead] = storage.items("outbox", DEAD)
    assert dead.last_error.startswith("still failing after 0.25 h and 8 attempts: Telegram answered 500")
    assert len(fake.attempts) == 8 and not fake.delivered


@pytest.mark.parametrize("backend", BACKENDS)
def test_permanent_refusals_are_dead_lettered_at_once_and_the_rest_flows(make_app, upstream, clock, backend):
    fake = FakeTelegram(upstream, clock, [
        Reply(403, json={"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})])
    app = telegram_app(make_app, backend, upstream)
    client = app.test_client()
    refused = submit(client, "bob", "bob #0")
    clock.advance(1)
    later = [submit(client, "bob", "bob #1"), submit(client, "cy", "cy #0")]
    assert deliver(app) == {"configured": True, "delivered": 2, "retrying": 0, "dead": 1, "deferred": 0,
                            "paused_until": None,
                            "paused": {}}
    [dead] = store(app).items("outbox", DEAD)
    assert dead.id == refused and dead.attempts == 1
    assert dead.last_error == "Telegram refused it: Telegram answered 403: Forbidden: bot was blocked by the user"
    assert sorted(fake.ids()) == sorted(later)
    # kept, never deleted, never retried
    clock.advance(7 * 86400)
    assert deliver(app)["delivered"] == 0 and store(app).queue_counts("outbox") == {PENDING: 0, DONE: 2, DEAD: 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sender_s_later_message_waits_for_the_earlier_one(make_app, upstream, clock, backend):
    fake = FakeTelegram(upstream, clock)
    app = telegram_app(make_app, backend, upstream)
    client = app.test_client()
    first = submit(client, "dee", "dee #0")
    clock.advance(1)
    second, other = submit(client, "dee", "dee #1"), submit(client, "eve", "eve #0")
    # another worker holds dee's first message
    storage = store(app)
    [held] = storage.claim("outbox", lease=60, limit=1, now=clock.now)
    assert held.id == first
    summary = deliver(app)
    assert summary["delivered"] == 1 and summary["deferred"] == 1
    assert fake.ids() == [other]
    [waiting] = [item for item in storage.items("outbox", PENDING) if item.id == second]
    assert waiting.ready_at == held.ready_at and "earlier message" in waiting.last_error
    # the other worker's lease runs out (it crashed): both go, in order
    clock.now = held.ready_at
    assert deliver(app)["delivered"] == 2
    assert fake.ids() == [other, first, second]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_long_message_resumes_after_the_part_that_failed(make_app, upstream, clock, backend):
    fake = FakeTelegram(upstream, clock)
    app = telegram_app(make_app, backend, upstream)
    text = "".join(f"{n:04d}😀" for n in range(800))  # 4,000 characters, 4,800 UTF-16 units: 2 parts
    submit(app.test_client(), "fay", text)
    fake.failures = []
    upstream_calls = []

    def second_part_fails_once(recorded):
        upstream_calls.append(recorded.json()["text"])
        if len(upstream_calls) == 2:
            return fail_500()
        return fake(recorded)

    upstream.script("POST", PATH, second_part_fails_once)
    assert deliver(app)["retrying"] == 1
    clock.advance(delivery.BACKOFF_BASE)
    assert deliver(app)["delivered"] == 1
    assert len(upstream_calls) == 3 and upstream_calls[1] == upstream_calls[2]  # part 1 was not sent again
    assert "(1/2)" in fake.delivered[0] and "(2/2, continued)" in fake.delivered[1]
    assert "".join(fake.bodies()) == text
    assert store(app).get(f"outbox:sent:{store(app).items('outbox', DONE)[0].id}") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_input_arrives_escaped_and_inert(make_app, upstream, clock, backend):
    from ..channels.test_telegram_api import HOSTILE, TelegramHTML

    fake = FakeTelegram(upstream, clock)
    app = telegram_app(make_app, backend, upstream)
    fields = {key: HOSTILE[key] for key in ("name", "email", "subject", "message", "page")}
    response = app.test_client().post("/api/contact", json=fields)
    assert response.status_code == 202
    assert deliver(app)["delivered"] == 1
    [call] = upstream.calls("POST", PATH)
    assert call.json()["parse_mode"] == "HTML" and call.json()["link_preview_options"] == {"is_disabled": True}
    page = TelegramHTML(fake.delivered[0])
    assert set(page.tags) <= {"b", "code", "pre"}
    for value in fields.values():
        assert value in page.inside("code", "pre")


# -- without Telegram, and the commands -----------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_without_telegram_messages_wait_and_can_be_read(make_app, clock, backend):
    app = make_app(backend)
    client = app.test_client()
    ids = [submit(client, "gil", "First line\nsecond <b>line</b>")]
    clock.advance(60)
    ids.append(submit(client, "hal", "Hi"))
    runner = app.test_cli_runner()
    assert "not configured" in runner.invoke(args=["outbox", "deliver"]).output
    assert store(app).queue_counts("outbox") == {PENDING: 2, DONE: 0, DEAD: 0}
    listing = runner.invoke(args=["outbox", "list"])
    assert listing.exit_code == 0
    assert "From:     Gil <gil@example.com>" in listing.output
    assert "First line\nsecond <b>line</b>" in listing.output and ids[0] in listing.output
    rows = [json.loads(line) for line in runner.invoke(args=["outbox", "list", "--json"]).output.splitlines()]
    assert [row["id"] for row in rows] == ids and rows[1]["message"] == "Hi" and rows[1]["state"] == PENDING
    status = runner.invoke(args=["outbox", "status"]).output
    assert "pending 2, delivered 0, dead-lettered 0" in status and "not configured" in status
    assert json.loads(runner.invoke(args=["outbox", "status", "--json"]).output)["counts"] == {
        PENDING: 2, DONE: 0, DEAD: 0}


def test_commands_deliver_list_status_and_requeue(make_app, upstream, clock):
    fake = FakeTelegram(upstream, clock, [Reply(400, json={"ok": False, "error_code": 400,
                                                           "description": "Bad Request: chat not found"})])
    app = telegram_app(make_app, "sqlite", upstream)
    ids = [submit(app.test_client(), "ivy", f"ivy #{n}") for n in range(2)]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0
    assert "delivered 1, retrying 0, dead-lettered 1" in result.output
    status = json.loads(runner.invoke(args=["outbox", "status", "--json"]).output)
    assert status["counts"] == {PENDING: 0, DONE: 1, DEAD: 1} and status["telegram_configured"]
    assert status["dead"][0]["id"] == ids[0] and "chat not found" in status["dead"][0]["reason"]
    dead = runner.invoke(args=["outbox", "list", "--state", "dead"]).output
    assert "ivy #0" in dead and "ivy #1" not in dead and "chat not found" in dead
    # the chat id is fixed: requeue the dead letter (once), it goes out, the dead letter stays
    assert runner.invoke(args=["outbox", "requeue"]).exit_code != 0
    assert runner.invoke(args=["outbox", "requeue", "nope"]).exit_code != 0
    assert "requeued as" in runner.invoke(args=["outbox", "requeue", "--all-dead"]).output
    assert "requeued before" in runner.invoke(args=["outbox", "requeue", ids[0]]).output
    assert "delivered 1" in runner.invoke(args=["outbox", "deliver"]).output
    assert fake.bodies() == ["ivy #1", "ivy #0"]
    assert store(app).queue_counts("outbox") == {PENDING: 0, DONE: 2, DEAD: 1}


def test_the_token_stays_out_of_logs_errors_and_output(make_app, upstream, clock, caplog):
    FakeTelegram(upstream, clock, [fail_500(), Reply(401, json={"ok": False, "error_code": 401,
                                                                "description": "Unauthorized"})])
    app = telegram_app(make_app, "sqlite", upstream, LOG_LEVEL="DEBUG")
    submit(app.test_client(), "jo", "jo #0")
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            deliver(app)
            clock.advance(3600)
    runner = app.test_cli_runner()
    output = "".join(runner.invoke(args=["outbox", command]).output for command in ("list", "status"))
    secret = TOKEN.split(":")[1]
    assert "check TELEGRAM_BOT_TOKEN" in output  # the 401 kept the message and said why
    assert store(app).queue_counts("outbox")[DONE] == 1
    assert secret not in output
    assert not [record for record in caplog.records if secret in record.getMessage()]
    assert any("/bot<hidden>/sendMessage" in record.getMessage() for record in caplog.records)


# -- the scheduled event and the worker loop --------------------------------------------------------------

class LambdaContext:
    def __init__(self, remaining_ms: int):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_scheduled_event_delivers_with_one_app_per_container(make_app, upstream, clock, monkeypatch):
    fake = FakeTelegram(upstream)
    app = telegram_app(make_app, "sqlite", upstream)
    clock.now = time.time() - 1  # the scheduled function runs on real time
    ids = [submit(app.test_client(), "kai", f"kai #{n}") for n in range(2)]
    for name, value in worker_env(app).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tasks, "_app", None)
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:...:rule/x"]}
    # too little time left in the invocation: nothing is started
    assert tasks.deliver_outbox(event, LambdaContext(2000)) == {
        "configured": True, "delivered": 0, "retrying": 0, "dead": 0, "deferred": 0, "paused_until": None,
        "paused": {}, "pending": 2}
    built = tasks._app
    assert tasks.deliver_outbox(event, LambdaContext(30_000))["delivered"] == 2
    assert tasks._app is built and fake.ids() == ids
    assert tasks.deliver_outbox()["pending"] == 0  # also callable without event and context


def test_the_loop_worker_delivers_and_stops_cleanly_on_sigterm(make_app, upstream, clock, tmp_path):
    fake = FakeTelegram(upstream)
    app = telegram_app(make_app, "sqlite", upstream)
    log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115 - open while the worker runs
    worker = subprocess.Popen([sys.executable, "-m", "flask", "outbox", "deliver", "--loop", "--interval", "0.1"],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=worker_env(app))
    try:
        clock.now = time.time() - 1
        ids = [submit(app.test_client(), "lea", f"lea #{n}") for n in range(2)]
        wait_until(lambda: len(fake.delivered) == 2, what="the loop worker's deliveries")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    log.seek(0)
    lines = [json.loads(line)["message"] for line in log.read().splitlines() if line.startswith("{")]
    log.close()
    assert fake.ids() == ids
    assert "outbox worker started" in lines and lines[-1] == "outbox worker stopped"


def test_a_slow_telegram_answer_inside_the_inline_budget_is_one_delivery(make_app, upstream, clock):
    """Telegram answering in 1.3 s is still a delivery within a 2 s inline budget: acked, never resent."""
    fake = FakeTelegram(upstream, clock, delay=1.3)
    app = telegram_app(make_app, "sqlite", upstream, TELEGRAM_TIMEOUT="5", OUTBOX_INLINE_SECONDS="2")
    message_id = submit(app.test_client(), "ada", "slow but fine")
    assert fake.ids() == [message_id]
    assert [item.id for item in store(app).items(delivery.QUEUE, DONE)] == [message_id]
    clock.advance(3600)
    assert deliver(app)["delivered"] == 0 and fake.ids() == [message_id]
