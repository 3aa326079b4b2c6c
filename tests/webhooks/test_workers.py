"""The sender under load and failure: a dead endpoint beside a healthy one, a worker killed
mid-delivery, two workers on one outbox, and the worker that runs inside ``serve``.

The module has a database (and server) of its own, and every test disables its endpoints
when it ends, so no sender here sees another test's deliveries."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.events.service import record_event
from invoicehub.kit import clock
from invoicehub.webhooks.tasks import WebhookSender
from tests.conftest import LiveServer, OrgKeys, create_org, fresh_database, make_settings
from tests.webhooks.helpers import open_invoice, register, run_sender_once
from tests.webhooks.receiver import Received, Receiver, Reply
from tests.webhooks.support import (
    INVOICEHUB,
    HoldingReceiver,
    attempts_of,
    cli_environment,
    db_session,
    deliveries_of,
    disable_every_endpoint,
    move_clock_to,
    wait_until,
)

SECOND = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(str(tmp_path_factory.mktemp("workers-db"))) as url:
        yield url


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(autouse=True)
def _nothing_left_to_send(settings: Settings) -> Iterator[None]:
    yield
    disable_every_endpoint(settings)


class SenderLoop:
    """One WebhookSender (with a Runtime of its own, like a worker process) running its
    dispatch loop on an event loop of its own in a thread, until told to stop."""

    def __init__(self, settings: Settings, *, start: threading.Barrier | None = None) -> None:
        self.settings = settings
        self.start_together = start
        self.stopping = threading.Event()
        self.running = threading.Event()  # cleared: no new round starts
        self.running.set()
        self.idle = threading.Event()  # set while paused between rounds
        self.claimed = 0
        self.rounds = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    async def _loop(self) -> None:
        runtime = Runtime.build(self.settings)
        sender = WebhookSender(runtime)
        try:
            if self.start_together is not None:
                await asyncio.to_thread(self.start_together.wait, 10)
            while not self.stopping.is_set():
                if not self.running.is_set():
                    self.idle.set()
                    await asyncio.sleep(0.005)
                    continue
                self.idle.clear()
                self.claimed += await sender.dispatch_due()
                self.rounds += 1
                await asyncio.sleep(0.005)
            await sender.drain()
        finally:
            await sender.aclose()
            runtime.database.dispose()

    def __enter__(self) -> SenderLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pause(self) -> None:
        """Returns once the loop is between rounds and starts no new one (sends go on)."""
        self.idle.clear()
        self.running.clear()
        assert self.idle.wait(timeout=10), "the sender loop did not pause"

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the sender loop did not stop"
        if self.error is not None:
            raise self.error


# ------------------------------------------------------------------ (a) a dead endpoint


def test_a_dead_endpoint_never_delays_a_healthy_one(api: httpx.Client, database_url: str) -> None:
    # Fewer slots than the dead endpoint's backlog: were it not held to its share, it would
    # take them all and the healthy endpoint would wait for its timeouts.
    settings = make_settings(database_url, webhook_timeout_seconds=3, webhook_max_concurrency=8)
    batch = settings.webhook_per_endpoint_batch
    with (
        HoldingReceiver(Reply(hang=True)) as dead,
        HoldingReceiver() as healthy,
    ):
        dead_endpoint = register(api, dead.url)
        healthy_endpoint = register(api, healthy.url)
        for _ in range(10):
            open_invoice(api)  # invoice.created and invoice.finalized, for both endpoints
        expected = {d.event_public_id for d in deliveries_of(settings, healthy_endpoint["id"])}
        assert len(expected) == 20

        with SenderLoop(settings) as loop:
            everything = wait_until(lambda: healthy.count() >= 20, timeout=30)
            # The moment the healthy endpoint has everything: where is the dead one?
            dead_held_now = dead.open_now
            dead_rows = deliveries_of(settings, dead_endpoint["id"])
            healthy_rows = deliveries_of(settings, healthy_endpoint["id"])
            most_held = dead.most_open
            dead.release()

    assert everything, f"the healthy endpoint got {healthy.count()} of 20 after 30 s"
    assert {r.headers["webhook-id"] for r in healthy.requests} == expected
    assert len(healthy.requests) == 20
    # The dead endpoint's first requests were still hanging: none had even timed out.
    assert dead_held_now >= 1
    assert {(r.status, r.attempt_count) for r in dead_rows} == {("pending", 0)}
    assert 1 <= sum(r.lock_token is not None for r in dead_rows) <= batch
    assert 1 <= most_held <= batch, f"the dead endpoint held {most_held} requests at once"
    assert loop.rounds >= 2
    assert wait_until(
        lambda: all(
            r.status == "succeeded" for r in deliveries_of(settings, healthy_endpoint["id"])
        )
    ), healthy_rows


def test_a_hung_endpoint_gets_no_more_slots_as_new_events_arrive(
    api: httpx.Client, database_url: str
) -> None:
    """Events keep coming while an endpoint hangs: it still holds at most its batch."""
    settings = make_settings(database_url, webhook_timeout_seconds=3)
    batch = settings.webhook_per_endpoint_batch
    with HoldingReceiver(Reply(hang=True)) as dead:
        endpoint = register(api, dead.url)
        with SenderLoop(settings) as loop:
            open_invoice(api)  # two events: two requests hang, below the batch
            assert wait_until(lambda: dead.open_now == 2, timeout=10)
            loop.pause()
            for _ in range(4):
                open_invoice(api)  # eight more come due while those two hang
            loop.resume()
            rounds = loop.rounds
            assert wait_until(lambda: loop.rounds >= rounds + 5, timeout=10)
            assert wait_until(lambda: dead.count() >= batch, timeout=10)
            wait_until(lambda: dead.open_now > batch, timeout=0.5)  # any excess: let it show
            held = dead.most_open
            in_flight = [r for r in deliveries_of(settings, endpoint["id"]) if r.lock_token]
            dead.release()
    assert held <= batch, f"the hung endpoint held {held} requests at once (batch {batch})"
    assert len(in_flight) <= batch, f"{len(in_flight)} of its deliveries leased at once"


# ------------------------------------------------------------------ (b) a killed worker


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_retry_keeps_the_webhook_id(
    api: httpx.Client, database_url: str, moved_clock: list[float], tmp_path
) -> None:
    settings = make_settings(database_url, webhook_timeout_seconds=2)
    hung: list[str] = []
    lock = threading.Lock()

    def hang_on_the_first(request: Received) -> Reply:
        with lock:
            if not hung:
                hung.append(request.headers["webhook-id"])
                return Reply(hang=True)
        return Reply()

    with Receiver(hang_on_the_first) as receiver:
        endpoint = register(api, receiver.url)
        open_invoice(api)  # invoice.created and invoice.finalized
        events = {d.event_public_id for d in deliveries_of(settings, endpoint["id"])}
        assert len(events) == 2
        log_path = tmp_path / "worker.stderr"
        with log_path.open("w") as stderr:
            worker = subprocess.Popen(
                [str(INVOICEHUB), "worker"],
                env=cli_environment(
                    database_url,
                    INVOICEHUB_WEBHOOK_ALLOW_PRIVATE="true",
                    INVOICEHUB_WORKER_POLL_SECONDS="0.2",
                    INVOICEHUB_WEBHOOK_TIMEOUT_SECONDS="2",
                ),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            # One request hangs; the other is answered and recorded. Then the worker dies.
            arrived = wait_until(
                lambda: (
                    len(receiver.requests) >= 2
                    and [d.status for d in deliveries_of(settings, endpoint["id"])].count(
                        "succeeded"
                    )
                    == 1
                ),
                timeout=30,
                every=0.01,
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
        assert arrived, f"the worker did not deliver: {log_path.read_text()}"
        assert worker.returncode == -signal.SIGKILL
        (hung_id,) = hung

        rows = deliveries_of(settings, endpoint["id"])
        held = [r for r in rows if r.status == "pending"]
        assert len(held) == 1, rows
        (delivery,) = held
        assert delivery.event_public_id == hung_id
        assert delivery.attempt_count == 0
        assert delivery.lock_token is not None
        assert delivery.locked_until is not None
        assert delivery.locked_until > clock.utcnow()
        assert run_sender_once(settings) == 0  # its lease still holds

        move_clock_to(moved_clock, delivery.locked_until + SECOND)
        assert run_sender_once(settings) == 1
        received = receiver.wait_for(3)

    assert len(received) == 3
    assert received[2].headers["webhook-id"] == hung_id
    assert Counter(r.headers["webhook-id"] for r in received) == Counter(
        {hung_id: 2, (events - {hung_id}).pop(): 1}
    )
    rows = deliveries_of(settings, endpoint["id"])
    assert {(r.status, r.attempt_count) for r in rows} == {("succeeded", 1)}
    attempts = attempts_of(settings, [r.id for r in rows])
    assert all([a.status_code for a in log] == [200] for log in attempts.values()), attempts


# ------------------------------------------------------------------ (c) two workers


def test_two_workers_never_send_one_delivery_twice(
    settings: Settings, org: OrgKeys, api: httpx.Client
) -> None:
    total = 100
    with Receiver() as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.updated"])
        with db_session(settings, write=True) as session:
            for n in range(total):
                record_event(
                    session,
                    organization_id=org.internal_id,
                    type="invoice.updated",
                    object_type="invoice",
                    object_id=f"inv_{n:024d}",
                    data={"n": n},
                )
            session.commit()
        rows = deliveries_of(settings, endpoint["id"])
        assert len(rows) == total

        start = threading.Barrier(2)
        with SenderLoop(settings, start=start) as one, SenderLoop(settings, start=start) as two:
            done = wait_until(
                lambda: all(r.status != "pending" for r in deliveries_of(settings, endpoint["id"])),
                timeout=60,
            )
        received = receiver.wait_for(total, timeout=5)

    assert done, "the deliveries were not all sent within 60 s"
    counts = Counter(r.headers["webhook-id"] for r in received)
    assert [webhook_id for webhook_id, n in counts.items() if n > 1] == []
    assert set(counts) == {r.event_public_id for r in rows}
    assert one.claimed > 0, (one.claimed, two.claimed)
    assert two.claimed > 0, (one.claimed, two.claimed)
    assert one.claimed + two.claimed == total
    final = deliveries_of(settings, endpoint["id"])
    assert {(r.status, r.attempt_count) for r in final} == {("succeeded", 1)}
    attempts = attempts_of(settings, [r.id for r in final])
    assert sorted(len(log) for log in attempts.values()) == [1] * total


# ------------------------------------------------------------------ (d) the worker in serve


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_worker_inside_serve_delivers_and_stops_with_the_server(database_url: str) -> None:
    settings = make_settings(database_url, run_worker_in_serve=True, worker_poll_seconds=0.1)
    keys = create_org(settings, name="Serving")
    live = LiveServer(settings)  # configures uvicorn's logging: watch it from here on
    collect = Collect()
    watched = [logging.getLogger(name) for name in ("invoicehub", "uvicorn.error", "asyncio")]
    for logger in watched:
        logger.addHandler(collect)
    try:
        with Receiver() as receiver:
            with live, live.client(keys.secret_key) as api:
                endpoint = register(api, receiver.url, enabled_events=["invoice.paid"])
                invoice = open_invoice(api)
                api.post(f"/v1/invoices/{invoice['id']}/payments").raise_for_status()
                paid = wait_until(lambda: len(receiver.requests) >= 1, timeout=20)
                recorded = wait_until(
                    lambda: (
                        [d.status for d in deliveries_of(settings, endpoint["id"])] == ["succeeded"]
                    ),
                    timeout=20,
                )
            stopped = not live.thread.is_alive()
    finally:
        for logger in watched:
            logger.removeHandler(collect)

    assert paid, "the worker inside serve sent nothing within 20 s"
    body = json.loads(receiver.requests[0].body)
    assert (body["type"], body["data"]["object"]["id"]) == ("invoice.paid", invoice["id"])
    assert recorded, deliveries_of(settings, endpoint["id"])
    assert stopped, "the server (and its worker) did not stop"
    assert [r.getMessage() for r in collect.records] == []
