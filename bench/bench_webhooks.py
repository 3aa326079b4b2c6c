"""Webhook benchmark: outbox delivery throughput, and what writing the outbox costs creates.

For each database (a temporary SQLite file; a new PostgreSQL database on 127.0.0.1:5432,
dropped afterwards) it migrates, creates organizations with ``invoicehub org create --json``,
starts a local sink and ``invoicehub serve`` (worker off, rate limiting off,
INVOICEHUB_WEBHOOK_ALLOW_PRIVATE=true), registers endpoints through the API, then:

1. Outbox cost on create-invoice. Create-invoice throughput (5 line items, status open, so
   each create records invoice.created and invoice.finalized) through ``bench/loadgen.py``
   at 1 and 16 clients, in organizations with 0, 1 and 5 endpoints subscribed to ``*``
   (0, 2 and 10 delivery rows per create). Rounds alternate the order (0,1,5 then 5,1,0)
   so drift (a growing table, other work on the machine) hits every configuration alike;
   the median of the rounds is reported. The event row itself is written in all three.

2. Delivery throughput. For 1 and 8 endpoints, the outbox is filled with ``record_event``
   in one transaction (the real fan-out; then ANALYZE on PostgreSQL, as autovacuum would
   do a little later), and 1, then 2, worker processes run until every delivery has
   succeeded (the database is polled) or a time limit passes. Worker variants:
   ``shipped`` is ``invoicehub worker`` as it is (the default); ``wake`` is the bench's own
   loop around the same Worker and sender (``_wake_worker`` below), which wakes when a
   delivery in flight finishes and clears that signal *before* each claim, so a delivery
   that finishes while a claim runs is never missed; ``poll=S`` is the shipped worker with
   INVOICEHUB_WORKER_POLL_SECONDS=S.
   Deliveries/s runs from the sink's first receipt to the last ``completed_at`` (to the stop,
   for a run cut off by its time limit). The sink (its own process, a bare asyncio
   HTTP/1.1 server answering 200) counts each (endpoint, webhook-id) pair and the
   connections it accepted, and verifies a sample of signatures. Beside each
   (endpoints, processes) pair, a bare baseline: ``_direct`` processes (as many as
   workers) POST the very same signed payloads to the sink with httpx.AsyncClient and the
   same number of requests in flight as the workers (32 slots, at most 4 per endpoint),
   with no database.

3. Claim probes. One ``claim_due`` (rolled back) timed over 1k, 10k and 50k due deliveries;
   on PostgreSQL also with planner statistics taken while nothing was pending (as between
   a burst and autovacuum's next ANALYZE), bounded by statement_timeout.

Every loop is bounded by a count and by time; only 127.0.0.1 is used. Results go to
bench/results/webhooks-<timestamp>/ (results.json, report.md, logs) and the report is
printed. Reuses bench_core.py's database, server and load-generator plumbing.

    .venv/bin/python bench/bench_webhooks.py              # full run, both databases
    .venv/bin/python bench/bench_webhooks.py --quick      # smoke run
    .venv/bin/python bench/bench_webhooks.py --databases sqlite --parts deliveries
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import resource
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bench_core as core  # bench/ is sys.path[0] when run as a script
import psycopg

HOST = core.HOST
SELF = str(Path(__file__).resolve())
SINK_LIFETIME_S = 3600  # the sink exits by itself after this, whatever happens
DROP_TARGET = 0.15


def log(message: str) -> None:
    core.log(message)


def die_with_parent() -> None:
    """Runs in each child before exec: SIGTERM it if this orchestrator dies (Linux), so no
    sink or worker outlives a benchmark that was killed."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ================================================================ the sink (own process)


class SinkState:
    """What the sink has seen since the last reset."""

    def __init__(self, verify_every: int) -> None:
        self.verify_every = verify_every
        self.secrets: dict[str, list[str]] = {}
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.seen: Counter[str] = Counter()  # "path webhook-id" -> times received
        self.by_path: Counter[str] = Counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.missing_id = 0
        self.connections = 0
        self.verified = 0
        self.verify_failed = 0
        self.verify_errors: list[str] = []

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if method == "POST" and target.startswith("/hooks/"):
            now = time.time()
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
            self.received += 1
            message_id = headers.get("webhook-id")
            if not message_id:
                self.missing_id += 1
                return 400, b'{"error":"no webhook-id"}'
            self.seen[f"{target} {message_id}"] += 1
            self.by_path[target] += 1
            if self.verify_every and self.received % self.verify_every == 1:
                self._verify(target, headers, body)
            return 200, b"ok"
        if method == "GET" and target == "/_stats":
            duplicates = sum(n - 1 for n in self.seen.values() if n > 1)
            return 200, json.dumps(
                {
                    "received": self.received,
                    "unique": len(self.seen),
                    "duplicates": duplicates,
                    "paths": len(self.by_path),
                    "first_at": self.first_at,
                    "last_at": self.last_at,
                    "missing_id": self.missing_id,
                    "connections": self.connections,
                    "verified": self.verified,
                    "verify_failed": self.verify_failed,
                    "verify_errors": self.verify_errors[:3],
                }
            ).encode()
        if method == "POST" and target == "/_reset":
            self.reset()
            return 200, b"{}"
        if method == "POST" and target == "/_secrets":
            self.secrets.update(json.loads(body))
            return 200, b"{}"
        if target == "/healthz":
            return 200, b"{}"
        return 404, b"{}"

    def _verify(self, target: str, headers: dict[str, str], body: bytes) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        secrets_ = self.secrets.get(target)
        if not secrets_:
            return
        for secret in secrets_:
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                self.verified += 1
                return
        self.verify_failed += 1
        if len(self.verify_errors) < 3:
            self.verify_errors.append(f"{target} {headers.get('webhook-id')}")


class SinkProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with Content-Length bodies: all a webhook sender sends."""

    def __init__(self, state: SinkState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.state.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self.transport.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return
            length = int(headers.get("content-length", "0"))
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            status, out = self.state.handle(method, target, headers, body)
            self.transport.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(out)}\r\n"
                "Content-Type: application/json\r\n\r\n".encode()
                + out
            )


def run_sink(port: int, verify_every: int) -> None:
    async def main() -> None:
        state = SinkState(verify_every)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = await loop.create_server(lambda: SinkProtocol(state), HOST, port, backlog=512)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SINK_LIFETIME_S)
        server.close()

    asyncio.run(main())


# ================================================================ bare baseline (own process)


def run_direct(spec_path: str) -> None:
    """POSTs every (event, endpoint) pair of the spec to the sink, signed as the worker signs,
    with ``concurrency`` requests in flight on one httpx.AsyncClient. No database."""
    import httpx

    from invoicehub.webhooks.signing import signature_headers
    from invoicehub.webhooks.tasks import USER_AGENT

    spec = json.loads(Path(spec_path).read_text())
    events, endpoints = spec["events"], spec["endpoints"]
    items = [
        (endpoints[ep]["url"], endpoints[ep]["secrets"], events[ev]["id"], events[ev]["payload"])
        for ev, ep in spec["items"]
    ]
    concurrency = int(spec["concurrency"])
    max_seconds = float(spec["max_seconds"])

    async def main() -> dict[str, Any]:
        client = httpx.AsyncClient(follow_redirects=False, timeout=10.0)
        position = 0
        ok = 0
        errors: list[str] = []
        first: float | None = None
        last = 0.0
        stop_at = time.monotonic() + max_seconds

        async def sender() -> None:
            nonlocal position, ok, first, last
            while position < len(items) and time.monotonic() < stop_at and len(errors) < 100:
                url, secrets_, message_id, payload = items[position]
                position += 1
                headers = {
                    **signature_headers(
                        message_id=message_id,
                        timestamp=dt.datetime.now(dt.UTC),
                        payload=payload,
                        secrets_=secrets_,
                    ),
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                }
                started = time.monotonic()
                if first is None:
                    first = started
                try:
                    response = await client.post(url, content=payload.encode(), headers=headers)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                last = max(last, time.monotonic())
                if 200 <= response.status_code < 300:
                    ok += 1
                else:
                    errors.append(f"HTTP {response.status_code}")

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        await client.aclose()
        window = max(last - (first or last), 1e-9)
        return {
            "sent": position,
            "ok": ok,
            "errors": len(errors),
            "error_samples": errors[:3],
            "window_s": round(window, 4),
            "per_s": round(ok / window, 1) if ok else 0.0,
            "cpu_s": round(core.cpu_of(cpu1) - core.cpu_of(cpu0), 3),
            "first_at_mono": first,
            "last_at_mono": last,
        }

    sys.stdout.write(json.dumps(asyncio.run(main())) + "\n")


# ================================================================ prototype fix (own process)


def run_wake_worker() -> None:
    """``invoicehub worker`` with its loop replaced by the one this benchmark proposed: when
    a claim starts nothing, wait for stop, the poll interval, or any delivery in flight
    finishing. The "finished" signal is cleared before each claim (not after it), so one
    that finishes while the claim runs in its thread still wakes the loop. (The shipped
    loop slept out the whole poll interval here before b804548, whatever was free.)"""
    import logging

    from invoicehub.api.runtime import Runtime
    from invoicehub.config import get_settings
    from invoicehub.worker import Worker

    class WakingWorker(Worker):
        async def run_forever(self) -> None:
            poll = self.runtime.settings.worker_poll_seconds
            freed = asyncio.Event()
            hooked: set[asyncio.Task[None]] = set()
            try:
                while not self.stopping.is_set():
                    freed.clear()
                    try:
                        started = await self.sender.dispatch_due()
                        await self.run_due_jobs()
                    except Exception:
                        logging.exception("worker round failed")
                        started = 0
                    hooked &= self.sender.tasks
                    for task in self.sender.tasks - hooked:
                        task.add_done_callback(lambda _t: freed.set())
                        hooked.add(task)
                    if started:
                        await asyncio.sleep(0)
                        continue
                    waits = {
                        asyncio.ensure_future(self.stopping.wait()),
                        asyncio.ensure_future(freed.wait()),
                    }
                    _, pending = await asyncio.wait(
                        waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED
                    )
                    for waiter in pending:
                        waiter.cancel()
            finally:
                await self.sender.aclose()

    runtime = Runtime.build(get_settings())

    async def main() -> None:
        worker = WakingWorker(runtime)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run_forever()

    try:
        asyncio.run(main())
    finally:
        runtime.database.dispose()


# ================================================================ CPU breakdown (own process)


def run_profile_worker(limit: int, max_seconds: float) -> None:
    """One sender, as in the ``wake`` worker, that sends up to ``limit`` due deliveries and
    says where its CPU went: the claim and record transactions (timed with the CPU clock of
    the thread they run in) and the rest (the event loop: signing, httpx, thread hops)."""
    import threading

    from invoicehub.api.runtime import Runtime
    from invoicehub.config import get_settings
    from invoicehub.webhooks.tasks import WebhookSender

    spent = {"claim": 0.0, "record": 0.0, "claims": 0, "records": 0}
    lock = threading.Lock()

    class TimedSender(WebhookSender):
        def _claim(self, limit: int, in_flight: dict[int, int]) -> Any:
            t0 = time.thread_time()
            try:
                return super()._claim(limit, in_flight)
            finally:
                with lock:
                    spent["claim"] += time.thread_time() - t0
                    spent["claims"] += 1

        def _record(self, item: Any, outcome: Any) -> None:
            t0 = time.thread_time()
            try:
                super()._record(item, outcome)
            finally:
                with lock:
                    spent["record"] += time.thread_time() - t0
                    spent["records"] += 1

    runtime = Runtime.build(get_settings())

    async def main() -> dict[str, Any]:
        sender = TimedSender(runtime)
        freed = asyncio.Event()
        cpu0 = core.cpu_of(resource.getrusage(resource.RUSAGE_SELF))
        t0 = time.perf_counter()
        try:
            while spent["records"] < limit and time.perf_counter() - t0 < max_seconds:
                freed.clear()
                before = set(sender.tasks)
                started = await sender.dispatch_due()
                for task in sender.tasks - before:
                    task.add_done_callback(lambda _t: freed.set())
                if not started:
                    if not sender.tasks:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(freed.wait(), 1.0)
            await sender.drain()
        finally:
            await sender.aclose()
        wall = time.perf_counter() - t0
        cpu = core.cpu_of(resource.getrusage(resource.RUSAGE_SELF)) - cpu0
        n = max(1, spent["records"])
        return {
            "deliveries": spent["records"],
            "claims": spent["claims"],
            "per_s": round(spent["records"] / wall, 1),
            "cpu_ms": round(cpu / n * 1000, 3),
            "claim_ms": round(spent["claim"] / n * 1000, 3),
            "record_ms": round(spent["record"] / n * 1000, 3),
            "rest_ms": round((cpu - spent["claim"] - spent["record"]) / n * 1000, 3),
        }

    try:
        sys.stdout.write(json.dumps(asyncio.run(main())) + "\n")
    finally:
        runtime.database.dispose()


# ================================================================ settings


@dataclass
class Options:
    databases: list[str]
    parts: list[str]
    concurrency: list[int]
    duration: float
    warmup: float
    rounds: int
    endpoints: list[int]
    workers: list[int]
    deliveries: int
    run_limit: float
    variants: list[str]
    profile_deliveries: int
    claim_sizes: list[int]
    stale_sizes: list[int]
    stale_timeout: float
    verify_every: int
    max_requests: int
    noise_threshold: float
    noise_retries: int
    quiet_wait: float
    pg_admin_url: str
    results_dir: Path
    keep: bool
    quick: bool


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(
        description="Benchmark invoicehub's webhook outbox: delivery rate and create cost.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (small sizes)")
    p.add_argument("--databases", default="sqlite,postgres", help="comma list: sqlite,postgres")
    p.add_argument(
        "--parts", default="create,deliveries,claims", help="comma list: create,deliveries,claims"
    )
    p.add_argument("--concurrency", default="1,16", help="create part: client counts")
    p.add_argument("--duration", type=float, help="create part: measured s per run [3; quick 1.5]")
    p.add_argument("--warmup", type=float, help="create part: unrecorded s per run [1; quick 0.3]")
    p.add_argument("--rounds", type=int, help="create part: rounds (order alternates) [3; quick 1]")
    p.add_argument("--endpoints", default="1,8", help="delivery part: endpoint counts")
    p.add_argument("--workers", default="1,2", help="delivery part: worker process counts")
    p.add_argument(
        "--deliveries", type=int, help="delivery part: outbox rows per run [3000; quick 600]"
    )
    p.add_argument(
        "--run-limit",
        type=float,
        help="delivery part: seconds a worker run may take before it is stopped [60; quick 20]",
    )
    p.add_argument(
        "--variants",
        default="shipped",
        help="delivery part, comma list: shipped (`invoicehub worker` as is); poll=S (the same "
        "with INVOICEHUB_WORKER_POLL_SECONDS=S); wake (the Worker with this file's own loop: "
        "it wakes when a delivery in flight finishes, clearing that signal before each claim)",
    )
    p.add_argument(
        "--profile-deliveries",
        type=int,
        help="delivery part: deliveries for the sender CPU breakdown [1000; quick 300; 0 skips]",
    )
    p.add_argument(
        "--claim-sizes",
        help="claim probe: due backlogs to time one claim over [1000,10000,50000; quick 1000,5000]",
    )
    p.add_argument(
        "--stale-sizes",
        help="claim probe, PostgreSQL: the same with statistics taken before the backlog "
        "[500,1000; quick 500; empty for none]",
    )
    p.add_argument(
        "--stale-timeout", type=float, default=30, help="claim probe: statement_timeout, s"
    )
    p.add_argument("--verify-every", type=int, default=50, help="sink verifies 1 in N signatures")
    p.add_argument("--max-requests", type=int, default=100_000, help="create part: cap per run")
    p.add_argument("--noise-threshold", type=float, default=0.3, help="foreign cores: repeat above")
    p.add_argument("--noise-retries", type=int, default=0, help="repeats of a noisy measurement")
    p.add_argument(
        "--quiet-wait", type=float, default=1.5, help="max s to wait for a quiet machine"
    )
    p.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL on 127.0.0.1 where a fresh database is made (and dropped)",
    )
    p.add_argument("--results-dir", default=str(core.HERE / "results"))
    p.add_argument("--keep", action="store_true", help="keep the databases for inspection")
    a = p.parse_args(argv)
    databases = [d.strip() for d in a.databases.split(",") if d.strip()]
    for d in databases:
        if d not in ("sqlite", "postgres"):
            p.error(f"unknown database {d!r}")
    parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    for x in parts:
        if x not in ("create", "deliveries", "claims"):
            p.error(f"unknown part {x!r}")
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ("shipped", "wake") and not (
            v.startswith("poll=") and v[5:].replace(".", "", 1).isdigit()
        ):
            p.error(f"unknown variant {v!r}")
    if urlsplit_host(a.pg_admin_url) != HOST:
        p.error("--pg-admin-url must point at 127.0.0.1")
    return Options(
        databases=databases,
        parts=parts,
        concurrency=[int(c) for c in a.concurrency.split(",")],
        duration=a.duration or (1.5 if a.quick else 3.0),
        warmup=a.warmup if a.warmup is not None else (0.3 if a.quick else 1.0),
        rounds=a.rounds or (1 if a.quick else 3),
        endpoints=[int(n) for n in a.endpoints.split(",")],
        workers=[int(n) for n in a.workers.split(",")],
        deliveries=a.deliveries or (600 if a.quick else 3000),
        run_limit=a.run_limit or (20.0 if a.quick else 60.0),
        variants=variants,
        profile_deliveries=(
            a.profile_deliveries if a.profile_deliveries is not None else (300 if a.quick else 1000)
        ),
        claim_sizes=ints(a.claim_sizes, "1000,5000" if a.quick else "1000,10000,50000"),
        stale_sizes=ints(a.stale_sizes, "500" if a.quick else "500,1000"),
        stale_timeout=a.stale_timeout,
        verify_every=a.verify_every,
        max_requests=a.max_requests,
        noise_threshold=a.noise_threshold,
        noise_retries=a.noise_retries,
        quiet_wait=a.quiet_wait,
        pg_admin_url=a.pg_admin_url,
        results_dir=Path(a.results_dir),
        keep=a.keep,
        quick=a.quick,
    )


def ints(given: str | None, default: str) -> list[int]:
    text = default if given is None else given
    return [int(x) for x in text.split(",") if x.strip()]


def urlsplit_host(url: str) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname


# ================================================================ helpers


class Sink:
    """The sink process and its control calls."""

    def __init__(self, log_path: Path, verify_every: int) -> None:
        self.port = core.free_port()
        self.log_file = log_path.open("ab")
        self.process = subprocess.Popen(
            [core.PYTHON, SELF, "_sink", str(self.port), str(verify_every)],
            cwd=core.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sink exited at start; see {log_path}")
            with contextlib.suppress(OSError, ValueError):
                if self.call("GET", "/healthz")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("sink did not answer in 30 s")
            time.sleep(0.1)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return core.call(self.port, method, path, None, body)

    def stats(self) -> dict[str, Any]:
        status, body = self.call("GET", "/_stats")
        if status != 200:
            raise RuntimeError(f"sink stats answered {status}")
        result: dict[str, Any] = body
        return result

    def reset(self) -> None:
        self.call("POST", "/_reset", {})

    def cpu_seconds(self) -> float:
        return core.proc_cpu_ticks(self.process.pid) / core.CLK_TCK

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_file.close()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


def pg_cpu(direct: core.Direct) -> dict[int, float]:
    if direct.is_sqlite:
        return {}
    rows = direct.q(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() OR backend_type <> 'client backend'"
    )
    return {int(r[0]): core.proc_cpu_ticks(int(r[0])) / core.CLK_TCK for r in rows}


def to_utc(value: Any) -> dt.datetime:
    """A timestamp read back from either database (SQLite keeps naive UTC text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def to_epoch(value: Any) -> float | None:
    return None if value is None else float(to_utc(value).timestamp())


def execute(direct: core.Direct, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A statement without rows (Direct.q fetches, which psycopg refuses for DML)."""
    if not direct.is_sqlite:
        sql = sql.replace("?", "%s")
    direct.conn.execute(sql, params)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def fmt(x: float | None, digits: int = 1) -> str:
    return core.fmt(x, digits)


# ================================================================ per database


def run_database(kind: str, opts: Options, run_dir: Path, out: dict[str, Any]) -> None:
    db_opts = SimpleNamespace(pg_admin_url=opts.pg_admin_url, keep=opts.keep)
    with core.fresh_database(kind, db_opts, run_dir) as url:  # type: ignore[arg-type]
        out["url"] = url
        log(f"{kind}: migrating {url}")
        core.cli(url, "migrate")
        create_orgs = (
            {n: new_org(url, f"create {n} endpoints") for n in (0, 1, 5)}
            if "create" in opts.parts
            else {0: new_org(url, "create 0 endpoints")}
        )
        delivery_orgs = (
            {n: new_org(url, f"deliveries {n} endpoints") for n in opts.endpoints}
            if "deliveries" in opts.parts or "claims" in opts.parts
            else {}
        )
        sink = Sink(run_dir / f"{kind}-sink.log", opts.verify_every)
        direct = core.Direct(url)
        env = {
            **core.bench_env(url, serve_worker=False),
            "INVOICEHUB_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        try:
            server = core.Server(
                "invoicehub",
                [core.INVOICEHUB, "serve", "--host", HOST],
                env,
                run_dir / f"{kind}-invoicehub-server.log",
            )
            with server:
                for prefix, orgs in (("c", create_orgs), ("d", delivery_orgs)):
                    for n, org in orgs.items():
                        org["internal_id"] = direct.org_id(org["org_id"])
                        org["endpoints"] = [
                            register(server.port, org, sink, f"/hooks/{prefix}{n}/{i}")
                            for i in range(n)
                        ]
                status, invoice = core.call(
                    server.port,
                    "POST",
                    "/v1/invoices",
                    create_orgs[0]["secret_key"],
                    core.CREATE_BODY,
                )
                if status != 201:
                    raise RuntimeError(f"sample create answered {status}: {invoice}")
                out["sample_invoice"] = invoice
                out["sample_invoice_bytes"] = len(json.dumps(invoice, separators=(",", ":")))
                if "create" in opts.parts:
                    runner = core.Runner(
                        opts,  # type: ignore[arg-type]
                        run_dir,
                        kind,
                        direct,
                        [server],
                    )
                    out["create_records"] = runner.records
                    run_create_part(runner, server, create_orgs, opts, direct, out)
                out["server_deaths"] = server.deaths
            # The create part's deliveries are never sent: take them out of the outbox so the
            # delivery part's claims see only their own backlog.
            ids = ",".join(str(o["internal_id"]) for o in create_orgs.values())
            execute(
                direct,
                f"DELETE FROM webhook_deliveries WHERE status = 'pending' "
                f"AND organization_id IN ({ids})",
            )
            if not direct.is_sqlite:
                direct.conn.execute("VACUUM (ANALYZE) webhook_deliveries")
            if "deliveries" in opts.parts:
                out["delivery_runs"] = []
                for n, org in delivery_orgs.items():
                    for w in opts.workers:
                        run_deliveries(
                            kind, url, org, n, w, invoice, sink, direct, opts, run_dir, out
                        )
            if "deliveries" in opts.parts and opts.profile_deliveries:
                org = delivery_orgs[max(delivery_orgs)]
                out["worker_profile"] = profile_worker(
                    kind, url, org, max(delivery_orgs), invoice, direct, opts, run_dir
                )
            if "claims" in opts.parts:
                org = delivery_orgs[max(delivery_orgs)]
                run_claim_probes(kind, url, org, invoice, direct, opts, out)
        finally:
            direct.close()
            sink.close()


def new_org(url: str, name: str) -> dict[str, Any]:
    org: dict[str, Any] = json.loads(
        core.cli(url, "org", "create", "--name", f"bench {name}", "--json")
    )
    return org


def register(port: int, org: dict[str, Any], sink: Sink, path: str) -> dict[str, Any]:
    """An endpoint through the API (the server runs with WEBHOOK_ALLOW_PRIVATE=true)."""
    status, body = core.call(
        port,
        "POST",
        "/v1/webhook-endpoints",
        org["secret_key"],
        {"url": sink.url(path), "enabled_events": ["*"], "description": "benchmark sink"},
    )
    if status != 201:
        raise RuntimeError(f"registering {path} answered {status}: {body}")
    sink.call("POST", "/_secrets", {path: [body["secret"]]})
    return {"id": body["id"], "path": path, "secret": body["secret"]}


# ---------------------------------------------------------------- part: create cost


def run_create_part(
    runner: core.Runner,
    server: core.Server,
    orgs: dict[int, dict[str, Any]],
    opts: Options,
    direct: core.Direct,
    out: dict[str, Any],
) -> None:
    body = json.dumps(core.CREATE_BODY)
    requests = [{"method": "POST", "path": "/v1/invoices", "body": body}]
    targets = {
        n: core.Target("invoicehub", server, org["secret_key"], org["org_id"])
        for n, org in orgs.items()
    }
    order = sorted(orgs)
    for r in range(opts.rounds):
        for c in opts.concurrency:
            for n in order if r % 2 == 0 else list(reversed(order)):
                runner.measure(
                    targets[n],
                    "create",
                    requests,
                    expect=201,
                    concurrency=c,
                    duration=opts.duration,
                    warmup=opts.warmup,
                    extra={"endpoints": n, "round": r + 1},
                )
    rows_per_create = {}
    for n, org in orgs.items():
        org_id = org["internal_id"]

        def count(table: str, org_id: int = org_id) -> int:
            sql = f"SELECT count(*) FROM {table} WHERE organization_id = ?"
            return int(direct.q(sql, (org_id,))[0][0])

        invoices = count("invoices")
        rows_per_create[n] = {
            "invoices": invoices,
            "events_per_create": round(count("events") / invoices, 3) if invoices else None,
            "deliveries_per_create": (
                round(count("webhook_deliveries") / invoices, 3) if invoices else None
            ),
        }
    out["create_rows"] = rows_per_create
    log(f"{runner.kind}: rows written per create: {rows_per_create}")
    # SQL per create, in-process (bench/probe.py, bench_core's helper's statement recorder).
    url = direct.url
    statements = {}
    for n, org in orgs.items():
        got = core.probe("statements", "--database-url", url, "--secret", org["secret_key"])
        one = got.get("create (open)") if "error" not in got else None
        statements[n] = (
            {k: one[k] for k in ("count", "pool_checkouts", "sql_ms", "statements")}
            if one
            else {"error": got.get("error", "no create (open) in the probe's answer")}
        )
    out["create_statements"] = statements
    out["fanout_probe"] = fanout_probe(url, orgs, out["sample_invoice"])
    log(f"{runner.kind}: record_event CPU per call (ms): {out['fanout_probe']}")
    log(
        f"{runner.kind}: SQL statements per create (open): "
        + ", ".join(f"{n} endpoints {v.get('count')}" for n, v in statements.items())
    )


def fanout_probe(
    url: str, orgs: dict[int, dict[str, Any]], invoice: dict[str, Any], calls: int = 200
) -> dict[str, Any]:
    """CPU of one ``record_event`` (invoice.created) in this process, per endpoint count:
    ``shipped`` as the code is; ``orm`` with the fan-out as it was up to a33c94d (full
    endpoint entities, one ORM ``WebhookDelivery`` per row, flushed with RETURNING);
    ``event_only`` the event row alone, no fan-out at all. Each batch runs in a transaction
    that is rolled back."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from invoicehub.events import repository as events_repository
    from invoicehub.events.service import record_event
    from invoicehub.kit import clock
    from invoicehub.kit.db import Database, create_db_engine
    from invoicehub.kit.ids import new_public_id
    from invoicehub.models import Event, WebhookDelivery, WebhookEndpoint

    def add_event(session: Session, organization_id: int) -> Event:
        event = Event(
            public_id=new_public_id("evt"),
            organization_id=organization_id,
            type="invoice.created",
            object_type="invoice",
            object_id=invoice["id"],
            data={"object": invoice},
            created_at=clock.utcnow(),
        )
        session.add(event)
        session.flush()
        return event

    def orm(session: Session, organization_id: int) -> None:
        event = add_event(session, organization_id)
        endpoints = session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.organization_id == organization_id,
                WebhookEndpoint.enabled.is_(True),
            )
        ).all()
        now = event.created_at
        deliveries = [
            WebhookDelivery(
                public_id=new_public_id("whd"),
                organization_id=organization_id,
                endpoint_id=endpoint.id,
                event_id=event.id,
                status="pending",
                attempt_count=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for endpoint in endpoints
            if "*" in endpoint.enabled_events or event.type in endpoint.enabled_events
        ]
        if deliveries:
            session.add_all(deliveries)
            session.flush()

    def event_only(session: Session, organization_id: int) -> None:
        events_repository.insert_events(
            session,
            [
                {
                    "public_id": new_public_id("evt"),
                    "organization_id": organization_id,
                    "type": "invoice.created",
                    "object_type": "invoice",
                    "object_id": invoice["id"],
                    "data": {"object": invoice},
                    "created_at": clock.utcnow(),
                }
            ],
        )

    def shipped(session: Session, organization_id: int) -> None:
        record_event(
            session,
            organization_id=organization_id,
            type="invoice.created",
            object_type="invoice",
            object_id=invoice["id"],
            data={"object": invoice},
        )

    database = Database(create_db_engine(url, pool_size=1, max_overflow=0))
    out: dict[str, Any] = {"calls": calls}
    try:
        for name, fn in (("shipped", shipped), ("orm", orm), ("event_only", event_only)):
            for n, org in sorted(orgs.items()):
                if name == "event_only" and n:
                    continue  # the endpoints do not matter without a fan-out
                best = float("inf")
                for _ in range(5):
                    with database.session(write=True) as session:
                        fn(session, org["internal_id"])  # warm
                        t0 = time.thread_time()
                        for _ in range(calls):
                            fn(session, org["internal_id"])
                        best = min(best, time.thread_time() - t0)
                        session.rollback()
                        session.expunge_all()
                out[f"{name}_{n}_ms"] = round(best / calls * 1000, 3)
    finally:
        database.dispose()
    return out


def create_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median of the rounds per (endpoints, clients), and the drop against 0 endpoints."""
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["endpoints"], r["concurrency"]), []).append(r)
    out = []
    for (n, c), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = groups.get((0, c), [])
        rps = median([r["throughput_rps"] for r in rs])
        base_rps = median([r["throughput_rps"] for r in base])
        db = [r["db_cpu_s"] / max(1, r["all_requests"]) * 1000 for r in rs if r.get("db_cpu_s")]
        out.append(
            {
                "endpoints": n,
                "clients": c,
                "rounds": [r["throughput_rps"] for r in rs],
                "rps": rps,
                "p50_ms": median([r["latency_ms"]["p50"] for r in rs]),
                "p99_ms": median([r["latency_ms"]["p99"] for r in rs]),
                "server_cpu_ms": median(
                    [r["server_cpu_s"] / max(1, r["all_requests"]) * 1000 for r in rs]
                ),
                "db_cpu_ms": median(db) if db else None,
                "drop": (1 - rps / base_rps) if n and base_rps else None,
                "cpu_drop": None,
                "errors": sum(r["errors"] for r in rs),
                "noisy": sum(1 for r in rs if r.get("foreign_cores", 0) > core.NOISE_MARK[0]),
            }
        )
    for s in out:
        zero = next((z for z in out if z["endpoints"] == 0 and z["clients"] == s["clients"]), None)
        if s["endpoints"] and zero:
            ours = s["server_cpu_ms"] + (s["db_cpu_ms"] or 0.0)
            theirs = zero["server_cpu_ms"] + (zero["db_cpu_ms"] or 0.0)
            s["cpu_increase"] = ours / theirs - 1 if theirs else None
    return out


# ---------------------------------------------------------------- part: deliveries


def prefill(url: str, org_id: int, events: int, invoice: dict[str, Any]) -> dict[str, Any]:
    """``events`` invoice.created events through record_event (the real fan-out) in one
    transaction, as a burst of creates would leave them."""
    from invoicehub.events.service import record_event
    from invoicehub.kit.db import Database, create_db_engine

    database = Database(create_db_engine(url, pool_size=1, max_overflow=0))
    started = time.perf_counter()
    try:
        with database.session(write=True) as session:
            for _ in range(events):
                record_event(
                    session,
                    organization_id=org_id,
                    type="invoice.created",
                    object_type="invoice",
                    object_id=invoice["id"],
                    data={"object": invoice},
                )
            session.commit()
    finally:
        database.dispose()
    seconds = time.perf_counter() - started
    return {"events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds)}


def claim_probe(
    url: str,
    per_endpoint: int = 4,
    limit: int = 32,
    repeat: int = 3,
    *,
    timeout_s: float | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    """Times claim_due (in a transaction that is rolled back) against the backlog as it is
    now; the best of ``repeat``. On PostgreSQL ``timeout_s`` bounds each claim
    (statement_timeout) and ``explain`` records the plan of the claim's UPDATE."""
    from sqlalchemy import event, text
    from sqlalchemy.exc import OperationalError

    from invoicehub.kit import clock
    from invoicehub.kit.db import Database, create_db_engine
    from invoicehub.webhooks import repository

    engine = create_db_engine(url, pool_size=1, max_overflow=0)
    database = Database(engine)
    is_pg = engine.dialect.name == "postgresql"
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            captured.append((statement, params))

    times: list[float] = []
    claimed = 0
    timed_out = False
    try:
        for _ in range(repeat):
            with database.session(write=True) as session:
                if is_pg and timeout_s:
                    session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
                now = clock.utcnow()
                t0 = time.perf_counter()
                try:
                    ids = repository.claim_due(
                        session,
                        now=now,
                        lease_until=now + dt.timedelta(seconds=50),
                        token="probe",
                        limit=limit,
                        per_endpoint=per_endpoint,
                        in_flight={},
                    )
                except OperationalError:
                    timed_out = True
                    times.append((time.perf_counter() - t0) * 1000)
                    session.rollback()
                    break
                times.append((time.perf_counter() - t0) * 1000)
                claimed = len(ids)
                session.rollback()
        plan: list[str] = []
        if explain and is_pg and captured:
            statement, params = captured[-1]
            with engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                cursor = raw.cursor()
                cursor.execute("EXPLAIN (COSTS OFF) " + statement, params)
                plan = [str(r[0]) for r in cursor.fetchall()]
                raw.rollback()
    finally:
        database.dispose()
    return {
        "ms": round(min(times), 2),
        "ms_all": [round(t, 2) for t in times],
        "claimed": claimed,
        "timed_out": timed_out,
        **({"plan": plan} if plan else {}),
    }


def add_pending(
    direct: core.Direct, org_id: int, event_id: int, endpoint_ids: list[int], n: int
) -> None:
    """``n`` due deliveries by bulk SQL (for the claim probes, never sent)."""
    if n <= 0:
        return
    due = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    tag = secrets.token_hex(4)
    rows = (
        (
            f"whd_probe{tag}{i:07d}",
            org_id,
            endpoint_ids[i % len(endpoint_ids)],
            event_id,
            "pending",
            0,
        )
        for i in range(n)
    )
    columns = (
        "public_id, organization_id, endpoint_id, event_id, status, attempt_count, "
        "next_attempt_at, created_at, updated_at"
    )
    if direct.is_sqlite:
        stamp = due.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        direct.conn.execute("BEGIN IMMEDIATE")
        direct.conn.executemany(
            f"INSERT INTO webhook_deliveries ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((*r, stamp, stamp, stamp) for r in rows),
        )
        direct.conn.execute("COMMIT")
    else:
        with (
            direct.conn.transaction(),
            direct.conn.cursor() as cur,
            cur.copy(f"COPY webhook_deliveries ({columns}) FROM STDIN") as copy,
        ):
            for r in rows:
                copy.write_row((*r, due, due, due))


def run_claim_probes(
    kind: str,
    url: str,
    org: dict[str, Any],
    invoice: dict[str, Any],
    direct: core.Direct,
    opts: Options,
    out: dict[str, Any],
) -> None:
    """How one claim's time grows with the backlog; on PostgreSQL also with statistics that
    predate the backlog (as between a burst and autovacuum's next ANALYZE)."""
    org_id = org["internal_id"]
    info: dict[str, Any] = {"fresh": [], "stale": []}
    out["claim_probes"] = info
    # Only the probe's rows may be pending: whatever runs left behind is closed off.
    execute(direct, "UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'pending'")
    prefill(url, org_id, 1, invoice)
    event_id = int(
        direct.q("SELECT max(id) FROM events WHERE organization_id = ?", (org_id,))[0][0]
    )
    endpoint_ids = [
        int(r[0])
        for r in direct.q("SELECT id FROM webhook_endpoints WHERE organization_id = ?", (org_id,))
    ]
    execute(
        direct, "UPDATE webhook_endpoints SET enabled = ? WHERE organization_id = ?", (True, org_id)
    )

    def pending() -> int:
        return int(
            direct.q("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")[0][0]
        )

    for size in opts.claim_sizes:
        add_pending(direct, org_id, event_id, endpoint_ids, size - pending())
        if not direct.is_sqlite:
            execute(direct, "ANALYZE webhook_deliveries")
        probe = claim_probe(url, explain=size == opts.claim_sizes[0])
        probe["backlog"] = pending()
        info["fresh"].append(probe)
        log(f"{kind}: one claim of 32 over {probe['backlog']:,} due deliveries: {probe['ms']} ms")
    if direct.is_sqlite or not opts.stale_sizes:
        return
    execute(direct, "UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'pending'")
    execute(direct, "ANALYZE webhook_deliveries")
    info["table_rows"] = int(direct.q("SELECT count(*) FROM webhook_deliveries")[0][0])
    # Autovacuum would re-analyze a small table at some point; keep it from doing so
    # mid-probe so the figures are repeatable.
    execute(direct, "ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)")
    try:
        for size in opts.stale_sizes:
            add_pending(direct, org_id, event_id, endpoint_ids, size - pending())
            probe = claim_probe(
                url, repeat=1, timeout_s=opts.stale_timeout, explain=size == opts.stale_sizes[0]
            )
            probe["backlog"] = pending()
            info["stale"].append(probe)
            log(
                f"{kind}: one claim over {probe['backlog']:,} due deliveries, statistics taken "
                f"with none pending: {probe['ms']} ms{' (timed out)' if probe['timed_out'] else ''}"
            )
        execute(direct, "ANALYZE webhook_deliveries")
        probe = claim_probe(url)
        probe["backlog"] = pending()
        info["stale_then_analyzed"] = probe
        log(f"{kind}: the same after ANALYZE: {probe['ms']} ms")
    finally:
        execute(direct, "ALTER TABLE webhook_deliveries RESET (autovacuum_enabled)")
        execute(direct, "UPDATE webhook_deliveries SET status = 'failed' WHERE status = 'pending'")


def direct_spec(direct: core.Direct, org_id: int, sink: Sink) -> dict[str, Any]:
    """The exact payloads of the org's pending deliveries, made by the worker's own builder."""
    from invoicehub.webhooks.tasks import event_payload

    rows = direct.q(
        "SELECT e.id, e.public_id, e.type, e.created_at, e.data, w.id, w.url, w.secret "
        "FROM webhook_deliveries d JOIN events e ON e.id = d.event_id "
        "JOIN webhook_endpoints w ON w.id = d.endpoint_id "
        "WHERE d.organization_id = ? AND d.status = 'pending' ORDER BY d.id",
        (org_id,),
    )
    events: dict[int, int] = {}
    endpoints: dict[int, int] = {}
    spec: dict[str, Any] = {"events": [], "endpoints": [], "items": []}
    for event_id, public_id, type_, created_at, data, endpoint_id, url, secret in rows:
        if event_id not in events:
            events[event_id] = len(spec["events"])
            body = json.loads(data) if isinstance(data, str) else data
            spec["events"].append(
                {
                    "id": public_id,
                    "payload": event_payload(public_id, type_, to_utc(created_at), body),
                }
            )
        if endpoint_id not in endpoints:
            endpoints[endpoint_id] = len(spec["endpoints"])
            spec["endpoints"].append({"url": url, "secrets": [secret]})
        spec["items"].append([events[event_id], endpoints[endpoint_id]])
    return spec


def run_baseline(
    spec: dict[str, Any], processes: int, concurrency: int, sink: Sink, opts: Options
) -> dict[str, Any]:
    """``processes`` bare senders, each with its share of the deliveries, started together."""
    best: dict[str, Any] | None = None
    for attempt in range(1 + opts.noise_retries):
        result = run_baseline_once(spec, processes, concurrency, sink, opts)
        result["attempt"] = attempt + 1
        if best is None or result["foreign_cores"] < best["foreign_cores"]:
            best = result
        if result["foreign_cores"] <= opts.noise_threshold:
            break
        log(f"noisy bare baseline (other processes {result['foreign_cores']} cores)")
    assert best is not None
    return best


def run_baseline_once(
    spec: dict[str, Any], processes: int, concurrency: int, sink: Sink, opts: Options
) -> dict[str, Any]:
    files = []
    procs: list[subprocess.Popen[str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="invoicehub-whbench-"))
    try:
        for i in range(processes):
            part = {
                **spec,
                "items": spec["items"][i::processes],
                "concurrency": concurrency,
                "max_seconds": opts.run_limit,
            }
            path = tmp / f"direct-{i}.json"
            path.write_text(json.dumps(part))
            files.append(path)
        sink.reset()
        quiet = core.wait_for_quiet(opts.quiet_wait, opts.noise_threshold)
        busy0 = core.system_busy_seconds()
        sink0 = sink.cpu_seconds()
        kids0 = core.cpu_of(resource.getrusage(resource.RUSAGE_CHILDREN))
        wall0 = time.perf_counter()
        for path in files:
            procs.append(
                subprocess.Popen(
                    [core.PYTHON, SELF, "_direct", str(path)],
                    cwd=core.ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=opts.run_limit + 120)
            if proc.returncode != 0:
                raise RuntimeError(f"direct sender failed: {stderr.strip()[-1500:]}")
            results.append(json.loads(stdout))
        wall = time.perf_counter() - wall0
        busy = core.system_busy_seconds() - busy0
        kids = core.cpu_of(resource.getrusage(resource.RUSAGE_CHILDREN)) - kids0
        stats = sink.stats()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for path in files:
            path.unlink(missing_ok=True)
        tmp.rmdir()
    ok = sum(r["ok"] for r in results)
    sink_window = (stats["last_at"] or 0) - (stats["first_at"] or 0)
    # In the senders' event loops (start-up excluded); ``kids`` is their whole CPU.
    client_cpu = sum(r["cpu_s"] for r in results)
    sink_cpu = sink.cpu_seconds() - sink0
    return {
        "processes": processes,
        "concurrency_each": concurrency,
        "ok": ok,
        "errors": sum(r["errors"] for r in results),
        "error_samples": [s for r in results for s in r["error_samples"]][:3],
        "per_s": round(ok / sink_window, 1) if sink_window > 0 else None,
        "window_s": round(sink_window, 3),
        "sender_cpu_ms_per_delivery": round(client_cpu / max(1, ok) * 1000, 3),
        "sink_cpu_ms_per_delivery": round(sink_cpu / max(1, ok) * 1000, 3),
        "foreign_cores": round(max(0.0, busy - kids - sink_cpu) / wall, 3),
        "idle_load_before_cores": round(quiet, 3),
        "sink_ok": stats["unique"] == ok and stats["duplicates"] == 0,
        "sink": stats,
    }


def run_deliveries(
    kind: str,
    url: str,
    org: dict[str, Any],
    n_endpoints: int,
    n_workers: int,
    invoice: dict[str, Any],
    sink: Sink,
    direct: core.Direct,
    opts: Options,
    run_dir: Path,
    out: dict[str, Any],
) -> None:
    """For one (endpoints, workers): fill the outbox, the bare baseline, then each variant."""
    org_id = org["internal_id"]
    per_worker = min(32, 4 * n_endpoints)  # webhook_max_concurrency, webhook_per_endpoint_batch
    label = f"{kind} endpoints={n_endpoints} workers={n_workers}"
    baseline: dict[str, Any] | None = None
    for variant in opts.variants:
        pending = delivery_counts(direct, org_id).get("pending", 0)
        record: dict[str, Any] = {
            "database": kind,
            "endpoints": n_endpoints,
            "workers": n_workers,
            "variant": variant,
            "in_flight_per_worker": per_worker,
        }
        out["delivery_runs"].append(record)
        if pending < opts.deliveries:
            events = math.ceil((opts.deliveries - pending) / n_endpoints)
            record["prefill"] = prefill(url, org_id, events, invoice)
            record["prefill"]["deliveries_per_s"] = round(
                events * n_endpoints / record["prefill"]["seconds"]
            )
            if not direct.is_sqlite:
                execute(direct, "ANALYZE webhook_deliveries")
                execute(direct, "ANALYZE events")
            log(f"{label}: pre-filled {record['prefill']}")
        record["claim_probe"] = claim_probe(url)
        if baseline is None:
            spec = direct_spec(direct, org_id, sink)
            baseline = run_baseline(spec, n_workers, per_worker, sink, opts)
            baseline.update(database=kind, endpoints=n_endpoints, workers=n_workers)
            out.setdefault("baselines", []).append(baseline)
            log(
                f"{label}: bare httpx baseline {baseline['per_s']} deliveries/s over "
                f"{baseline['ok']:,} (sink unique {baseline['sink']['unique']:,}, errors "
                f"{baseline['errors']}, other processes {baseline['foreign_cores']} cores)"
            )
        run_workers(record, url, org_id, variant, sink, direct, opts, run_dir)


def run_workers(
    record: dict[str, Any],
    url: str,
    org_id: int,
    variant: str,
    sink: Sink,
    direct: core.Direct,
    opts: Options,
    run_dir: Path,
) -> None:
    kind, n_workers = record["database"], record["workers"]
    label = f"{kind} endpoints={record['endpoints']} workers={n_workers} {variant}"
    limit = opts.run_limit
    env = {
        **core.bench_env(url, serve_worker=False),
        "INVOICEHUB_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    argv = [core.INVOICEHUB, "worker"]
    if variant.startswith("poll="):
        env["INVOICEHUB_WORKER_POLL_SECONDS"] = variant[5:]
    elif variant == "wake":
        argv = [core.PYTHON, SELF, "_wake_worker"]
    before = delivery_counts(direct, org_id)
    record["backlog"] = before.get("pending", 0)
    sink.reset()
    record["idle_load_before_cores"] = round(
        core.wait_for_quiet(opts.quiet_wait, opts.noise_threshold), 3
    )
    logs = [
        (run_dir / f"{kind}-worker-{record['endpoints']}x{n_workers}-{variant}-{i}.log").open("ab")
        for i in range(n_workers)
    ]
    started = time.time()
    t0 = time.perf_counter()
    workers = [
        subprocess.Popen(
            argv,
            env=env,
            cwd=core.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        for log_file in logs
    ]
    timeline: list[tuple[float, int]] = []
    mark: dict[str, Any] | None = None  # when the first delivery had succeeded
    last: dict[str, Any] = {}
    finished = False
    try:
        deadline = t0 + limit
        while time.perf_counter() < deadline:
            time.sleep(0.25)
            done = delivery_counts(direct, org_id).get("succeeded", 0) - before.get("succeeded", 0)
            timeline.append((round(time.perf_counter() - t0, 2), done))
            last = {
                "succeeded": done,
                "worker_cpu": sum(core.proc_cpu_ticks(w.pid) for w in workers) / core.CLK_TCK,
                "db_cpu": sum(pg_cpu(direct).values()) if not direct.is_sqlite else 0.0,
                "sink_cpu": sink.cpu_seconds(),
                "busy": core.system_busy_seconds(),
                "own": core.cpu_of(resource.getrusage(resource.RUSAGE_SELF)),
                "at": time.perf_counter(),
            }
            if mark is None and done > 0:
                mark = last
            if done >= record["backlog"]:
                finished = True
                break
            if any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{label}: a worker exited early; see its log")
        wall = time.perf_counter() - t0
    finally:
        stopped_at = time.time()
        codes = [stop_process(w) for w in workers]
        for log_file in logs:
            log_file.close()
    after = delivery_counts(direct, org_id)
    succeeded = after.get("succeeded", 0) - before.get("succeeded", 0)
    stats = sink.stats()
    last_completed = to_epoch(
        direct.q(
            "SELECT max(completed_at) FROM webhook_deliveries WHERE organization_id = ?", (org_id,)
        )[0][0]
    )
    first = stats["first_at"]
    # A run stopped by its time limit is judged up to the stop, not to its last completion.
    end = last_completed if finished else stopped_at
    window = (end - first) if (first and end) else None
    steady: dict[str, Any] = {}
    if mark is not None and last and last["succeeded"] > mark["succeeded"]:
        n = last["succeeded"] - mark["succeeded"]
        span = last["at"] - mark["at"]
        ours = sum(last[k] - mark[k] for k in ("worker_cpu", "db_cpu", "sink_cpu", "own"))
        steady = {
            "deliveries": n,
            "worker_cpu_ms_per_delivery": round(
                (last["worker_cpu"] - mark["worker_cpu"]) / n * 1000, 3
            ),
            "db_cpu_ms_per_delivery": (
                None if direct.is_sqlite else round((last["db_cpu"] - mark["db_cpu"]) / n * 1000, 3)
            ),
            "sink_cpu_ms_per_delivery": round((last["sink_cpu"] - mark["sink_cpu"]) / n * 1000, 3),
            "machine_cores": round((last["busy"] - mark["busy"]) / span, 3) if span > 0 else None,
            "foreign_cores": (
                round(max(0.0, last["busy"] - mark["busy"] - ours) / span, 3) if span > 0 else None
            ),
        }
    record.update(
        finished=finished,
        limit_s=limit,
        wall_s=round(wall, 2),
        counts_after=after,
        succeeded=succeeded,
        window_s=round(window, 3) if window else None,
        per_s=round(succeeded / window, 1) if window and window > 0 else None,
        per_s_incl_startup=round(succeeded / wall, 1),
        worker_startup_s=round(first - started, 2) if first else None,
        worker_exit_codes=codes,
        sink=stats,
        sink_matches=(
            stats["unique"] == succeeded
            and stats["duplicates"] == 0
            and stats["missing_id"] == 0
            and stats["verify_failed"] == 0
        ),
        steady=steady,
        foreign_cores=steady.get("foreign_cores") or 0.0,
        timeline=timeline,
    )
    log(
        f"{label}: {'all' if finished else 'NOT all'} {succeeded:,}/{record['backlog']:,} "
        f"succeeded in {wall:.1f} s; {record['per_s']} deliveries/s (first receipt to last "
        f"completion); sink unique {stats['unique']:,} dup {stats['duplicates']} verified "
        f"{stats['verified']} bad {stats['verify_failed']}; steady {steady}"
    )


def profile_worker(
    kind: str,
    url: str,
    org: dict[str, Any],
    n_endpoints: int,
    invoice: dict[str, Any],
    direct: core.Direct,
    opts: Options,
    run_dir: Path,
) -> dict[str, Any]:
    """Where a sender's CPU goes, per delivery (``_profile_worker`` in its own process)."""
    org_id = org["internal_id"]
    pending = delivery_counts(direct, org_id).get("pending", 0)
    want = opts.profile_deliveries
    if pending < want:
        prefill(url, org_id, math.ceil((want - pending) / n_endpoints), invoice)
        if not direct.is_sqlite:
            execute(direct, "ANALYZE webhook_deliveries")
    env = {
        **core.bench_env(url, serve_worker=False),
        "INVOICEHUB_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    core.wait_for_quiet(opts.quiet_wait, opts.noise_threshold)
    done = subprocess.run(
        [core.PYTHON, SELF, "_profile_worker", str(want), str(opts.run_limit)],
        env=env,
        cwd=core.ROOT,
        capture_output=True,
        text=True,
        timeout=opts.run_limit + 120,
        check=False,
    )
    if done.returncode != 0:
        (run_dir / f"{kind}-profile.log").write_text(done.stderr)
        return {"error": done.stderr.strip()[-1000:]}
    result: dict[str, Any] = json.loads(done.stdout)
    result["endpoints"] = n_endpoints
    log(f"{kind}: sender CPU per delivery, {n_endpoints} endpoints: {result}")
    return result


def delivery_counts(direct: core.Direct, org_id: int) -> dict[str, int]:
    rows = direct.q(
        "SELECT status, count(*) FROM webhook_deliveries WHERE organization_id = ? GROUP BY status",
        (org_id,),
    )
    return {str(s): int(n) for s, n in rows}


# ================================================================ report


def render(results: dict[str, Any]) -> str:
    opts = results["options"]
    m = results["machine"]
    noise = opts["noise_threshold"]
    lines = [
        f"# invoicehub webhook benchmark — {results['started_at']}",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Code: {m['git']}. Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, "
        f"{m['memory_gib']} GiB; Python {m['python']}; SQLite {m['sqlite']}"
        + (f"; PostgreSQL {m['postgres']}" if m.get("postgres") else "")
        + f". Total run time {results['elapsed_s']:.0f} s. † marks a figure measured while "
        f"other processes on the machine used more than {noise} cores.",
    ]
    for db in results["databases"]:
        kind = db["database"]
        title = "SQLite" if kind == "sqlite" else "PostgreSQL"
        lines += ["", f"## {title}", ""]
        if "error" in db:
            lines += [f"**Failed:** {db['error']}", ""]
        if db.get("create_records"):
            lines += render_create(db, title, kind, opts)
        if db.get("delivery_runs"):
            lines += render_deliveries(db, title, kind, noise)
        if db.get("claim_probes"):
            lines += render_claims(db["claim_probes"], title)
    return "\n".join(lines) + "\n"


def render_create(db: dict[str, Any], title: str, kind: str, opts: dict[str, Any]) -> list[str]:
    summary = create_summary(db["create_records"])
    db["create_summary"] = summary
    rows = {int(k): v for k, v in db.get("create_rows", {}).items()}
    pg = kind == "postgres"
    lines = [
        f"### {title}: create-invoice throughput vs webhook endpoints",
        "",
        f"{opts['rounds']} round(s) of {opts['warmup']} s warm-up + {opts['duration']} s per "
        "configuration, order alternating between rounds; median of the rounds (each round's "
        "req/s in brackets). CPU per request over the whole run, warm-up included.",
        "",
        "| clients | endpoints | delivery rows per create | req/s (rounds) | p50 ms | p99 ms "
        "| server CPU ms/req" + (" | PostgreSQL CPU ms/req" if pg else "") + " | CPU vs 0 "
        "| req/s drop vs 0 endpoints |",
        "|---:|---:|---:|---|---:|---:|---:" + ("|---:" if pg else "") + "|---:|---:|",
    ]
    for s in summary:
        drop = "–" if s["drop"] is None else f"{s['drop']:.1%}"
        cpu = s.get("cpu_increase")
        per = rows.get(s["endpoints"], {}).get("deliveries_per_create")
        rounds = ", ".join(fmt(x) for x in s["rounds"])
        lines.append(
            f"| {s['clients']} | {s['endpoints']} | {fmt(per, 2)} | {fmt(s['rps'])} ({rounds})"
            f"{' †' if s['noisy'] else ''} | {fmt(s['p50_ms'], 2)} | {fmt(s['p99_ms'], 2)} | "
            f"{fmt(s['server_cpu_ms'], 2)}"
            + (f" | {fmt(s['db_cpu_ms'], 2)}" if pg else "")
            + f" | {'–' if cpu is None else f'{cpu:+.1%}'} | {drop}"
            + (f" ({s['errors']} errors)" if s["errors"] else "")
            + " |"
        )
    statements = {int(k): v for k, v in (db.get("create_statements") or {}).items()}
    if statements and all("count" in v for v in statements.values()):
        lines += [
            "",
            "SQL statements per create (open), in-process (`bench/probe.py statements`): "
            + ", ".join(
                f"{n} endpoints {v['count']} ({v['sql_ms']:.2f} ms in SQL)"
                for n, v in sorted(statements.items())
            )
            + ".",
        ]
        most = statements[max(statements)]["statements"]
        extra = [
            line.split("  ", 1)[-1][:110]
            for line in most
            if "webhook" in line.lower() and "SELECT" not in line.split("  ", 1)[-1][:12]
        ]
        selects = [line.split("  ", 1)[-1][:110] for line in most if "webhook_endpoints" in line]
        if extra or selects:
            lines += [
                "",
                f"Webhook statements in one create with {max(statements)} endpoints: "
                + "; ".join(f"`{x}`" for x in dict.fromkeys(selects + extra))
                + ".",
            ]
    probe = db.get("fanout_probe")
    if probe:
        counts = sorted({int(k.split("_")[1]) for k in probe if k.startswith("shipped_")})

        def row(name: str) -> str:
            return ", ".join(
                f"{n}: {probe[f'{name}_{n}_ms']:.3f} ms"
                for n in counts
                if f"{name}_{n}_ms" in probe
            )

        lines += [
            "",
            f"CPU of one `record_event` (invoice.created, in-process, best of 5 × {probe['calls']} "
            f"calls, rolled back), by endpoints: as shipped {row('shipped')}; with the ORM "
            f"fan-out of a33c94d {row('orm')}"
            + (
                f"; the event row alone, no fan-out: {probe['event_only_0_ms']:.3f} ms"
                if "event_only_0_ms" in probe
                else ""
            )
            + ".",
        ]
    worst = max((s["drop"] for s in summary if s["drop"] is not None), default=None)
    if worst is not None:
        verdict = "met" if worst <= DROP_TARGET else "missed"
        lines += [
            "",
            f"Target (req/s drop ≤ {DROP_TARGET:.0%}): **{verdict}**, worst drop {worst:.1%}.",
        ]
    return lines


def render_claims(info: dict[str, Any], title: str) -> list[str]:
    lines = [
        "",
        f"### {title}: one claim (`claim_due`, limit 32, 4 per endpoint, 8 endpoints) vs backlog",
        "",
        "| due deliveries | statistics | claim ms (best of 3) |",
        "|---:|---|---:|",
    ]
    for p in info.get("fresh", []):
        lines.append(f"| {p['backlog']:,} | fresh (ANALYZE after filling) | {fmt(p['ms'], 1)} |")
    for p in info.get("stale", []):
        ms = f"> {p['ms'] / 1000:.0f} s (timed out)" if p["timed_out"] else fmt(p["ms"], 1)
        lines.append(
            f"| {p['backlog']:,} | taken with none pending ({info.get('table_rows', 0):,} rows), "
            f"autovacuum held off | {ms} (1 run) |"
        )
    after = info.get("stale_then_analyzed")
    if after:
        lines.append(f"| {after['backlog']:,} | the same, after ANALYZE | {fmt(after['ms'], 1)} |")
    for label, probes in (("fresh", info.get("fresh", [])), ("stale", info.get("stale", []))):
        plan = next((p["plan"] for p in probes if p.get("plan")), None)
        if plan:
            lines += ["", f"Plan with {label} statistics (first lines):", "", "```"]
            lines += [line.rstrip() for line in plan[:12]]
            lines += ["```"]
    return lines


def render_deliveries(db: dict[str, Any], title: str, kind: str, noise: float) -> list[str]:
    pg = kind == "postgres"
    baselines = {(b["endpoints"], b["workers"]): b for b in db.get("baselines", [])}
    lines = [
        "",
        f"### {title}: delivery throughput (outbox → local sink)",
        "",
        "Deliveries/s from the sink's first receipt to the last `completed_at`; the backlog is "
        "what the outbox held when the workers started. CPU per delivery is measured after the "
        "first delivery succeeded (worker start-up excluded).",
        "",
        "| worker | endpoints | processes | in flight | backlog | sent | deliveries/s "
        "| bare httpx /s | ÷ bare | worker CPU ms/delivery"
        + (" | PostgreSQL CPU ms/delivery" if pg else "")
        + " | sink = succeeded, no dup | sink connections | claim of 32 |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:"
        + ("|---:" if pg else "")
        + "|---|---:|---:|",
    ]
    for r in db["delivery_runs"]:
        b = baselines.get((r["endpoints"], r["workers"]), {})
        ratio = (r["per_s"] / b["per_s"]) if r.get("per_s") and b.get("per_s") else None
        steady = r.get("steady") or {}
        sent = (
            "all"
            if r.get("finished")
            else f"{r.get('succeeded', 0):,} in {r.get('limit_s', 0):g} s (limit)"
        )
        lines.append(
            f"| {r['variant']} | {r['endpoints']} | {r['workers']} | "
            f"{r['in_flight_per_worker'] * r['workers']} | {r.get('backlog', 0):,} | {sent} | "
            f"{fmt(r.get('per_s'))}{' †' if r.get('foreign_cores', 0) > noise else ''} | "
            f"{fmt(b.get('per_s'))}{' †' if b.get('foreign_cores', 0) > noise else ''} | "
            f"{'–' if ratio is None else f'{ratio:.0%}'} | "
            f"{fmt(steady.get('worker_cpu_ms_per_delivery'), 2)}"
            + (f" | {fmt(steady.get('db_cpu_ms_per_delivery'), 2)}" if pg else "")
            + f" | {'yes' if r.get('sink_matches') else '**no**'} | "
            f"{(r.get('sink') or {}).get('connections', '–')} | "
            f"{fmt((r.get('claim_probe') or {}).get('ms'), 1)} ms |"
        )
    prof = db.get("worker_profile") or {}
    if prof and "error" not in prof:
        lines += [
            "",
            f"Where a sender's CPU goes (`_profile_worker`: the `wake` loop in one process, "
            f"{prof['deliveries']:,} deliveries to {prof['endpoints']} endpoints, "
            f"{prof['per_s']}/s, {prof['claims']:,} claims): {prof['cpu_ms']:.2f} ms per "
            f"delivery = claim transaction {prof['claim_ms']:.2f} + record transaction "
            f"{prof['record_ms']:.2f} + the rest (event loop: signing, httpx, thread hops) "
            f"{prof['rest_ms']:.2f} ms.",
        ]
    elif prof:
        lines += ["", f"Sender CPU breakdown failed: {prof['error'][-300:]}"]
    fills = [r["prefill"] for r in db["delivery_runs"] if r.get("prefill")]
    if fills:
        big = max(fills, key=lambda p: p["events"])
        lines += [
            "",
            f"Pre-fill through `record_event` in one transaction: {big['events']:,} events in "
            f"{big['seconds']} s ({big['events_per_s']:,} events/s, "
            f"{big['deliveries_per_s']:,} delivery rows/s).",
        ]
    if baselines:
        lines += [
            "",
            "Bare baseline sender CPU per delivery (its event loop, start-up excluded): "
            + ", ".join(
                f"{n} endpoint(s) × {w} process(es) {b['sender_cpu_ms_per_delivery']} ms"
                for (n, w), b in baselines.items()
            )
            + "; sink CPU "
            + ", ".join(f"{b['sink_cpu_ms_per_delivery']} ms" for b in baselines.values())
            + "; sink connections "
            + ", ".join(str(b["sink"].get("connections")) for b in baselines.values())
            + ".",
        ]
    return lines


# ================================================================ main


def main(argv: list[str]) -> int:
    if argv[:1] == ["_sink"]:
        run_sink(int(argv[1]), int(argv[2]))
        return 0
    if argv[:1] == ["_direct"]:
        run_direct(argv[1])
        return 0
    if argv[:1] == ["_wake_worker"]:
        run_wake_worker()
        return 0
    if argv[:1] == ["_profile_worker"]:
        run_profile_worker(int(argv[1]), float(argv[2]))
        return 0
    opts = parse_args(argv)
    core.NOISE_MARK[0] = opts.noise_threshold
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = opts.results_dir / f"webhooks-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": stamp,
        "command": " ".join([".venv/bin/python", "bench/bench_webhooks.py", *argv]),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "machine": core.machine_info(opts),  # type: ignore[arg-type]
        "databases": [],
    }
    log(f"results go to {run_dir}")
    code = 0
    try:
        for kind in opts.databases:
            out: dict[str, Any] = {"database": kind}
            results["databases"].append(out)
            try:
                run_database(kind, opts, run_dir, out)
            except (
                RuntimeError,
                OSError,
                psycopg.Error,
                sqlite3.Error,
                subprocess.TimeoutExpired,
            ) as exc:
                log(f"{kind}: FAILED: {exc}")
                out["error"] = str(exc)
                code = 1
    finally:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        report = render(results)
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        (run_dir / "report.md").write_text(report)
        print(report)
        log(f"wrote {run_dir / 'results.json'} and report.md")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
