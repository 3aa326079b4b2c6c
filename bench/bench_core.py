"""Core API benchmark: invoicehub beside a bare ASGI baseline, on SQLite and PostgreSQL.

For each database it makes a fresh database (a temporary SQLite file, or a new PostgreSQL
database on 127.0.0.1:5432 that is dropped afterwards), lets invoicehub's migrations build
the schema, creates two organizations with the CLI, and starts two servers on 127.0.0.1:

* invoicehub: ``invoicehub serve`` (uvicorn), rate limiting off, log level warning;
* the baseline: ``bench/baseline_app.py``, a raw ASGI callable on the same uvicorn and the
  same driver, doing the same inserts and selects against the same schema in its own
  organization.

Load comes from ``bench/loadgen.py``, a closed-loop asyncio HTTP/1.1 client run as its own
process (never inside a server). Every measurement is bounded by a request count and by
time. Measured, at 1 and 16 concurrent clients:

* create invoice (5 line items, status open), plus invoicehub's draft create for contrast;
* get invoice (random invoice among those created through the API);
* list page (``limit=20``, newest first);
* then, after seeding the organizations with bulk SQL to 10k, 100k and 1M invoices: first
  pages, deep pages (``starting_after`` 50-99.9 % of the way down) and get, per size;
* and first pages again after a third organization wrote 200k newer invoices.

Results: a markdown report on stdout, and bench/results/<timestamp>/ (results.json,
report.md, server logs). docs/benchmarks.md explains the method and the figures.
Benchmarks are never part of the test suite.

    .venv/bin/python bench/bench_core.py                 # full run, both databases (~15-20 min)
    .venv/bin/python bench/bench_core.py --quick         # smoke run, a few minutes
    .venv/bin/python bench/bench_core.py --databases sqlite --max-rows 100000
    .venv/bin/python bench/bench_core.py --render bench/results/<stamp>/results.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
INVOICEHUB = str(Path(sys.executable).parent / "invoicehub")
LOADGEN = str(HERE / "loadgen.py")
BASELINE = str(HERE / "baseline_app.py")
PROBE = str(HERE / "probe.py")
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

CREATE_BODY: dict[str, Any] = {
    "currency": "USD",
    "status": "open",
    "customer": {"name": "Benchmark Customer", "email": "bench@example.com"},
    "line_items": [
        {
            "description": "Website development",
            "quantity": 1,
            "unit_price": "1500.00",
            "tax_rate": 10,
        },
        {
            "description": "Hosting, 12 months",
            "quantity": 12,
            "unit_price": "25.00",
            "tax_rate": 10,
        },
        {"description": "Domain name", "quantity": 1, "unit_price": "12.99", "tax_rate": 0},
        {"description": "Support hours", "quantity": "7.5", "unit_price": "80.00", "tax_rate": 10},
        {"description": "Setup fee", "quantity": 1, "unit_price": "99.00", "tax_rate": "12.5"},
    ],
}
PAGE = 20
DEEP_DEPTHS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
FLAT_RATIO = 1.25  # "flat": p50 at the largest size within 25 % of p50 at the smallest
P99_TARGET_MS = 25.0
CREATE_TARGET = 0.40


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- settings


@dataclass
class Options:
    databases: list[str]
    concurrency: list[int]
    duration: float
    warmup: float
    scale_duration: float
    scale_warmup: float
    max_requests: int
    sizes: list[int]
    scale_baseline: bool
    pg_admin_url: str
    results_dir: Path
    time_budget: float
    keep: bool
    quick: bool
    serve_worker: bool
    workers: int
    noise_threshold: float
    noise_retries: int
    quiet_wait: float
    newer_tenant_rows: int
    noise_budget: float


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Benchmark invoicehub's core API against a bare baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short smoke run (small sizes)")
    p.add_argument("--databases", default="sqlite,postgres", help="comma list: sqlite,postgres")
    p.add_argument("--concurrency", default="1,16", help="comma list of client counts")
    p.add_argument("--duration", type=float, help="seconds measured per scenario [5; quick 1.5]")
    p.add_argument("--warmup", type=float, help="unrecorded seconds per scenario [1; quick 0.3]")
    p.add_argument("--scale-duration", type=float, help="seconds per size scenario [3; quick 1]")
    p.add_argument("--max-requests", type=int, default=100_000, help="cap per scenario")
    p.add_argument(
        "--max-rows",
        type=int,
        help="largest organization size for the list-scaling part [1000000; quick 10000]",
    )
    p.add_argument(
        "--no-scale-baseline",
        action="store_true",
        help="seed and measure only invoicehub's organization in the scaling part",
    )
    p.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL on 127.0.0.1 where a fresh database is made (and dropped)",
    )
    p.add_argument("--results-dir", default=str(HERE / "results"))
    p.add_argument(
        "--time-budget",
        type=float,
        default=1800,
        help="seconds; larger scaling sizes are skipped once this is spent",
    )
    p.add_argument("--keep", action="store_true", help="keep the databases for inspection")
    p.add_argument(
        "--noise-threshold",
        type=float,
        default=0.25,
        help="cores used by other processes (or stolen by the hypervisor) during a "
        "measurement above which it is repeated",
    )
    p.add_argument("--noise-retries", type=int, default=2, help="repeats of a noisy measurement")
    p.add_argument(
        "--noise-budget",
        type=float,
        help="seconds the whole run may spend waiting for quiet and repeating noisy "
        "measurements, per database; once spent, figures are kept as measured (and marked) "
        "[150; quick 30]",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="seconds to wait, at most, for the machine to go quiet before each measurement",
    )
    p.add_argument(
        "--newer-tenant-rows",
        type=int,
        help="after the largest size, a third organization writes this many newer invoices "
        "and first pages are measured again [200000; quick 5000; 0 skips]",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes for each server (invoicehub serve --workers N; the baseline "
        "the same); CPU figures then sum the process tree",
    )
    p.add_argument(
        "--no-serve-worker",
        action="store_true",
        help="start invoicehub with INVOICEHUB_RUN_WORKER_IN_SERVE=false (default: as shipped)",
    )
    a = p.parse_args(argv)
    databases = [d.strip() for d in a.databases.split(",") if d.strip()]
    for d in databases:
        if d not in ("sqlite", "postgres"):
            p.error(f"unknown database {d!r}")
    if urlsplit(a.pg_admin_url).hostname != HOST:
        p.error("--pg-admin-url must point at 127.0.0.1")
    max_rows = a.max_rows or (10_000 if a.quick else 1_000_000)
    sizes = [s for s in (10_000, 100_000, 1_000_000) if s <= max_rows]
    if max_rows not in sizes:
        sizes.append(max_rows)
    if a.quick and a.max_rows is None:
        sizes = [2_000, 10_000]
    return Options(
        databases=databases,
        concurrency=[int(c) for c in a.concurrency.split(",")],
        duration=a.duration or (1.5 if a.quick else 5.0),
        warmup=a.warmup if a.warmup is not None else (0.3 if a.quick else 1.0),
        scale_duration=a.scale_duration or (1.0 if a.quick else 3.0),
        scale_warmup=0.3 if a.quick else 0.5,
        max_requests=a.max_requests,
        sizes=sorted(sizes),
        scale_baseline=not a.no_scale_baseline,
        pg_admin_url=a.pg_admin_url,
        results_dir=Path(a.results_dir),
        time_budget=a.time_budget,
        keep=a.keep,
        quick=a.quick,
        serve_worker=not a.no_serve_worker,
        workers=a.workers,
        noise_threshold=a.noise_threshold,
        noise_retries=a.noise_retries,
        quiet_wait=a.quiet_wait,
        noise_budget=a.noise_budget if a.noise_budget is not None else (30 if a.quick else 150),
        newer_tenant_rows=(
            a.newer_tenant_rows
            if a.newer_tenant_rows is not None
            else (5_000 if a.quick else 200_000)
        ),
    )


# ---------------------------------------------------------------- databases


@contextlib.contextmanager
def fresh_database(kind: str, opts: Options, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="invoicehub-bench-"))
        path = directory / "bench.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            if opts.keep:
                log(f"kept {path}")
            else:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                directory.rmdir()
        return
    admin = opts.pg_admin_url
    name = f"invoicehub_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    url = parts._replace(path=f"/{name}").geturl()
    try:
        yield url
    finally:
        if opts.keep:
            log(f"kept PostgreSQL database {name}")
        else:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped PostgreSQL database {name}")


class Direct:
    """The orchestrator's own connection, for seeding and for picking ids and cursors."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.path = url.split(":///", 1)[1]
            self.conn: Any = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            self.conn.execute("PRAGMA busy_timeout=60000")
            self.conn.execute("PRAGMA cache_size=-262144")
        else:
            self.conn = psycopg.connect(url, autocommit=True)

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if not self.is_sqlite:
            sql = sql.replace("?", "%s")
        return list(self.conn.execute(sql, params).fetchall())

    def org_id(self, public_id: str) -> int:
        return int(self.q("SELECT id FROM organizations WHERE public_id = ?", (public_id,))[0][0])

    def count(self, org_id: int) -> int:
        return int(
            self.q("SELECT count(*) FROM invoices WHERE organization_id = ?", (org_id,))[0][0]
        )

    def api_invoice_ids(self, org_id: int, limit: int = 2000) -> list[str]:
        rows = self.q(
            "SELECT public_id FROM invoices WHERE organization_id = ? AND number LIKE ? "
            "ORDER BY random() LIMIT ?",
            (org_id, "INV-%", limit),
        )
        return [r[0] for r in rows]

    def deep_cursors(self, org_id: int, total: int) -> list[dict[str, Any]]:
        """Invoices part of the way down the newest-first list, with a full page after them."""
        out = []
        for depth in DEEP_DEPTHS:
            newer = min(int(depth * total), total - PAGE - 1)
            if newer < PAGE:
                continue
            from_oldest = total - 1 - newer
            row = self.q(
                "SELECT public_id FROM invoices WHERE organization_id = ? "
                "ORDER BY id ASC LIMIT 1 OFFSET ?",
                (org_id, from_oldest),
            )
            out.append({"depth": depth, "rows_newer": newer, "public_id": row[0][0]})
        return out

    def seed(self, wanted: dict[int, int], chunk: int = 5_000) -> dict[str, Any]:
        """Adds ``wanted[org_id]`` open invoices (no lines) to each organization with bulk SQL
        (one executemany in one transaction on SQLite, one COPY on PostgreSQL). The
        organizations' rows are interleaved in chunks, as tenants' rows are in a shared
        table, so neither organization's invoices all sit behind the other's."""
        started = time.perf_counter()
        total = sum(max(0, n) for n in wanted.values())
        if total <= 0:
            return {"rows": 0, "seconds": 0.0}
        now = dt.datetime.now(dt.UTC)
        base = now - dt.timedelta(seconds=total * 0.03 + 3600)
        issue = (now.date() - dt.timedelta(days=10)).isoformat()
        due = (now.date() + dt.timedelta(days=20)).isoformat()
        tag = secrets.token_hex(3)
        token = secrets.token_hex
        as_text = self.is_sqlite
        issue_v: Any = issue if as_text else dt.date.fromisoformat(issue)
        due_v: Any = due if as_text else dt.date.fromisoformat(due)

        def rows() -> Iterator[tuple[Any, ...]]:
            left = {org: n for org, n in wanted.items() if n > 0}
            done = dict.fromkeys(left, 0)
            i = 0
            while left:
                for org in list(left):
                    for _ in range(min(chunk, left[org])):
                        ts = base + dt.timedelta(seconds=i * 0.03)
                        stamp: Any = (
                            ts.isoformat(sep=" ", timespec="microseconds")[:26] if as_text else ts
                        )
                        amount = 1000 + i % 9000
                        yield (
                            f"inv_{token(12)}",
                            org,
                            f"SEED-{tag}-{org}-{done[org]:08d}",
                            "open",
                            "USD",
                            f"Customer {i % 5000}",
                            f"customer{i % 5000}@example.com",
                            "{}",
                            amount,
                            0,
                            0,
                            amount // 10,
                            amount + amount // 10,
                            0,
                            0,
                            issue_v,
                            due_v,
                            1,
                            stamp,
                            stamp,
                            stamp,
                        )
                        done[org] += 1
                        i += 1
                    left[org] -= min(chunk, left[org])
                    if left[org] == 0:
                        del left[org]

        columns = (
            "public_id, organization_id, number, status, currency, customer_name, "
            "customer_email, metadata, subtotal_minor, discount_minor, shipping_minor, "
            "tax_minor, total_minor, amount_paid_minor, amount_refunded_minor, issue_date, "
            "due_date, version, created_at, updated_at, finalized_at"
        )
        if self.is_sqlite:
            placeholders = ", ".join("?" * 21)
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                f"INSERT INTO invoices ({columns}) VALUES ({placeholders})", rows()
            )
            self.conn.execute("COMMIT")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            with (
                self.conn.transaction(),
                self.conn.cursor() as cur,
                cur.copy(f"COPY invoices ({columns}) FROM STDIN") as copy,
            ):
                for row in rows():
                    copy.write_row(row)
        seconds = time.perf_counter() - started
        return {"rows": total, "seconds": round(seconds, 2), "rows_per_s": round(total / seconds)}

    def after_seed(self) -> float:
        """What a running system would have done by itself after a bulk load."""
        started = time.perf_counter()
        if not self.is_sqlite:
            # autovacuum would analyze the table within a minute; do it now so it does not
            # run in the middle of a measurement.
            self.conn.execute("VACUUM (ANALYZE) invoices")
            # The checkpointer would write the load's pages out over the next minutes, into
            # whichever server is measured first (its gets slowed by half at 1M in session
            # 6, the size independent of them); write them now.
            self.conn.execute("CHECKPOINT")
        return round(time.perf_counter() - started, 2)

    def list_plans(self, org_id: int, cursor_id: str) -> dict[str, str]:
        if self.is_sqlite:
            explain = "EXPLAIN QUERY PLAN "

            def plan(sql: str, params: tuple[Any, ...]) -> str:
                return "\n".join(str(r[-1]) for r in self.q(explain + sql, params))
        else:
            explain = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "

            def plan(sql: str, params: tuple[Any, ...]) -> str:
                return "\n".join(str(r[0]) for r in self.q(explain + sql, params))

        before = self.q(
            "SELECT id FROM invoices WHERE organization_id = ? AND public_id = ?",
            (org_id, cursor_id),
        )[0][0]
        return {
            "first_page": plan(
                "SELECT * FROM invoices WHERE organization_id = ? ORDER BY id DESC LIMIT 21",
                (org_id,),
            ),
            "cursor_lookup": plan(
                "SELECT id FROM invoices WHERE organization_id = ? AND public_id = ?",
                (org_id, cursor_id),
            ),
            "deep_page": plan(
                "SELECT * FROM invoices WHERE organization_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT 21",
                (org_id, before),
            ),
        }

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def call(port: int, method: str, path: str, secret: str | None = None, body: Any = None) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def bench_env(url: str, *, serve_worker: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEHUB_")}
    env.update(
        INVOICEHUB_DATABASE_URL=url,
        INVOICEHUB_RATE_LIMIT_ENABLED="false",
        INVOICEHUB_LOG_LEVEL="warning",
    )
    if not serve_worker:
        env["INVOICEHUB_RUN_WORKER_IN_SERVE"] = "false"
    return env


def probe(*args: str, timeout: float = 300) -> dict[str, Any]:
    """bench/probe.py in its own process; a failure is recorded, never fatal."""
    try:
        done = subprocess.run(
            [PYTHON, PROBE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
        reason = next((x for x in reversed(lines) if "Error" in x), lines[-1] if lines else "")
        return {"error": reason[:400]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def cli(url: str, *args: str) -> str:
    done = subprocess.run(
        [INVOICEHUB, *args],
        env=bench_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"invoicehub {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_until_healthy(
    name: str,
    process: subprocess.Popen[bytes],
    port: int,
    log_path: Path,
    *,
    limit_s: float,
    poll_s: float = 0.2,
) -> None:
    """Until a just-started server answers GET /healthz with 200; it exiting or taking
    longer than ``limit_s`` is an error that names its log."""
    deadline = time.monotonic() + limit_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start; see {log_path}")
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            status, _ = call(port, "GET", "/healthz")
            if status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer /healthz in {limit_s:g} s; see {log_path}")
        time.sleep(poll_s)


@dataclass
class Server:
    """A server process on 127.0.0.1 (``argv`` plus ``--port P``), restarted if it dies."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    deaths: list[dict[str, Any]] = field(default_factory=list)
    _log: Any = None

    def start(self) -> None:
        self.port = free_port()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.argv, "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_healthy(self.name, self.process, self.port, self.log_path, limit_s=60)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_alive(self) -> None:
        """Something outside the benchmark may end the server; note it and start another."""
        if self.alive():
            return
        assert self.process is not None
        code = self.process.returncode
        self.deaths.append({"at": time.strftime("%H:%M:%S"), "returncode": code})
        log(f"{self.name} server had exited with {code} (negative: killed by that signal)")
        if len(self.deaths) > 3:
            raise RuntimeError(f"{self.name} server keeps exiting: {self.deaths}")
        self._log.close()
        self.start()
        log(f"{self.name} server restarted on port {self.port}")

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return tree_cpu_ticks(self.process.pid) / CLK_TCK


def tree_cpu_ticks(pid: int) -> int:
    """CPU of a process and its live descendants (uvicorn's worker processes)."""
    total = proc_cpu_ticks(pid)
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return total
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                children = [int(c) for c in fh.read().split()]
        except OSError:
            continue
        total += sum(tree_cpu_ticks(child) for child in children)
    return total


def proc_cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return 0
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def system_busy_seconds() -> float:
    """CPU seconds spent by every process on the machine (all cores), from /proc/stat,
    including steal: time the hypervisor gave this virtual machine's cores to others."""
    return system_cpu_seconds()[0]


def system_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK, fields[7] / CLK_TCK


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Waits (at most ``max_wait`` s) until the machine is nearly idle before a measurement:
    other work on a 2-core box would otherwise be measured as ours. Returns the load seen
    in the last half second, in cores."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy_seconds(), time.monotonic()
        time.sleep(0.5)
        cores = (system_busy_seconds() - b0) / (time.monotonic() - t0)
        if cores <= threshold or time.monotonic() >= deadline:
            return cores


# ---------------------------------------------------------------- measuring


@dataclass
class Target:
    """One server and the organization it is measured in."""

    name: str
    server: Server
    secret: str
    org_public_id: str
    org_id: int = 0
    get_ids: list[str] = field(default_factory=list)


class Runner:
    def __init__(
        self, opts: Options, run_dir: Path, kind: str, direct: Direct, servers: list[Server]
    ) -> None:
        self.direct = direct
        self.servers = servers
        self.noise_spent = 0.0
        # bench_webhooks.py reuses this class with options of its own, without a budget.
        self.noise_budget: float = getattr(opts, "noise_budget", float("inf"))
        self.opts = opts
        self.run_dir = run_dir
        self.kind = kind
        self.records: list[dict[str, Any]] = []
        self.spec_dir = run_dir / "specs"
        self.spec_dir.mkdir(exist_ok=True)

    def measure(
        self,
        target: Target,
        scenario: str,
        requests: list[dict[str, Any]],
        *,
        expect: int,
        concurrency: int,
        duration: float,
        warmup: float,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        best: dict[str, Any] | None = None
        for attempt in range(1 + self.opts.noise_retries):
            if attempt and self.noise_spent >= self.noise_budget:
                break
            target.server.ensure_alive()
            spec = {
                "host": HOST,
                "port": target.server.port,
                "headers": {
                    "Authorization": f"Bearer {target.secret}",
                    "Accept": "application/json",
                },
                "requests": requests,
                "expect_status": expect,
                "concurrency": concurrency,
                "duration": duration,
                "warmup": warmup,
                "max_requests": self.opts.max_requests,
            }
            spec_path = self.spec_dir / f"{self.kind}-{len(self.records):03d}-{attempt}.json"
            spec_path.write_text(json.dumps(spec))
            budget_left = max(0.0, self.noise_budget - self.noise_spent)
            waited_from = time.monotonic()
            quiet = wait_for_quiet(
                min(self.opts.quiet_wait, budget_left), self.opts.noise_threshold
            )
            self.noise_spent += max(0.0, time.monotonic() - waited_from - 0.5)
            attempt_from = time.monotonic()
            record = self._run_loadgen(spec_path, target, warmup + duration)
            if attempt:
                self.noise_spent += time.monotonic() - attempt_from
            record.update(
                database=self.kind,
                target=target.name,
                scenario=scenario,
                concurrency=concurrency,
                attempt=attempt + 1,
                idle_load_before_cores=round(quiet, 3),
                **(extra or {}),
            )
            if not target.server.alive():
                log(f"{target.name} server died during {scenario} c={concurrency}; repeating")
                record["server_died"] = True
                record["foreign_cores"] = 99.0
            if best is None or record["foreign_cores"] < best["foreign_cores"]:
                best = record
            if record["foreign_cores"] <= self.opts.noise_threshold:
                break
            if record.get("server_died"):
                continue
            again = attempt < self.opts.noise_retries and self.noise_spent < self.noise_budget
            log(
                f"noisy: other processes and steal used {record['foreign_cores']:.2f} cores during "
                f"{target.name} {scenario} c={concurrency}; "
                + ("repeating" if again else "keeping the quietest")
                + f" (noise budget used {self.noise_spent:.0f}/{self.noise_budget:.0f} s)"
            )
        assert best is not None
        self.records.append(best)
        lat = best["latency_ms"]
        log(
            f"{self.kind:8} {target.name:10} {scenario:14} c={concurrency:<2} "
            f"{extra or ''} {best['throughput_rps']:8.1f} req/s  p50 {lat.get('p50', 0):7.2f} ms"
            f"  p99 {lat.get('p99', 0):7.2f} ms  n={best['requests']}"
            f"  other={best['foreign_cores']:.2f} cores (steal {best.get('steal_cores', 0):.2f})"
            + (f"  ERRORS={best['errors']} {best['error_samples'][:1]}" if best["errors"] else "")
        )
        return best

    def _run_loadgen(self, spec_path: Path, target: Target, span: float) -> dict[str, Any]:
        pg = self.kind == "postgres"
        servers0 = {s.name: s.cpu_seconds() for s in self.servers}
        db0 = self.pg_cpu() if pg else {}
        sessions0 = self.pg_sessions() if pg else 0
        busy0, steal0 = system_cpu_seconds()
        own0 = resource.getrusage(resource.RUSAGE_SELF)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        done = subprocess.run(
            [PYTHON, LOADGEN, str(spec_path)],
            capture_output=True,
            text=True,
            timeout=span + 180,
            check=False,
        )
        wall = time.perf_counter() - wall0
        busy1, steal1 = system_cpu_seconds()
        busy, steal = busy1 - busy0, steal1 - steal0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        servers = {s.name: s.cpu_seconds() - servers0[s.name] for s in self.servers}
        db_cpu = None
        new_sessions = None
        if pg:
            db1 = self.pg_cpu()
            db_cpu = sum(v - db0.get(pid, 0.0) for pid, v in db1.items())
            new_sessions = self.pg_sessions() - sessions0
        if done.returncode != 0:
            raise RuntimeError(f"loadgen failed: {done.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        loadgen_cpu = cpu_of(kids1) - cpu_of(kids0)
        ours = sum(servers.values()) + (db_cpu or 0.0) + loadgen_cpu + cpu_of(own1) - cpu_of(own0)
        return {
            **result,
            "server_cpu_s": round(servers[target.name], 3),
            "db_cpu_s": None if db_cpu is None else round(db_cpu, 3),
            # Backends that exit during the run take their CPU with them (db_cpu_s is then a
            # lower bound); new_sessions counts the connections opened meanwhile.
            "pg_new_sessions": new_sessions,
            "loadgen_process_cpu_s": round(loadgen_cpu, 3),
            "machine_busy_s": round(busy, 3),
            # Other processes' CPU and the hypervisor's steal, which on a shared virtual
            # machine can take half the cores for minutes (seen in session 5).
            "foreign_cores": round(max(0.0, busy - ours) / wall, 3),
            "steal_cores": round(steal / wall, 3),
            "run_wall_s": round(wall, 3),
        }

    def pg_sessions(self) -> int:
        """Connections ever opened to the benchmark database (PostgreSQL 14+)."""
        rows = self.direct.q(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(rows[0][0] or 0) if rows else 0

    def pg_cpu(self) -> dict[int, float]:
        """CPU of the PostgreSQL processes that work for this run: the backends connected
        to the benchmark database and the shared background processes (WAL writer, …)."""
        rows = self.direct.q(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() OR backend_type <> 'client backend'"
        )
        return {int(r[0]): proc_cpu_ticks(int(r[0])) / CLK_TCK for r in rows}


def cpu_of(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def get_requests(ids: list[str]) -> list[dict[str, Any]]:
    return [{"method": "GET", "path": f"/v1/invoices/{i}"} for i in ids]


def list_requests(cursors: list[str] | None) -> list[dict[str, Any]]:
    if not cursors:
        return [{"method": "GET", "path": f"/v1/invoices?limit={PAGE}"}]
    return [
        {"method": "GET", "path": f"/v1/invoices?limit={PAGE}&starting_after={c}"} for c in cursors
    ]


def parity_check(targets: list[Target]) -> dict[str, Any]:
    """The baseline must answer the same shapes and amounts as invoicehub."""
    created = {}
    for t in targets:
        status, body = call(t.server.port, "POST", "/v1/invoices", t.secret, CREATE_BODY)
        if status != 201:
            raise RuntimeError(f"{t.name} create answered {status}: {body}")
        status, got = call(t.server.port, "GET", f"/v1/invoices/{body['id']}", t.secret)
        status2, page = call(t.server.port, "GET", f"/v1/invoices?limit={PAGE}", t.secret)
        if status != 200 or status2 != 200:
            raise RuntimeError(f"{t.name} get/list answered {status}/{status2}")
        created[t.name] = (body, got, page)
    a, b = created["invoicehub"], created["baseline"]
    problems = []

    def paths(obj: Any, prefix: str = "") -> set[str]:
        if isinstance(obj, dict):
            return {p for k, v in obj.items() for p in paths(v, f"{prefix}.{k}")} | {prefix}
        if isinstance(obj, list) and obj:
            return paths(obj[0], f"{prefix}[]")
        return {prefix}

    only_invoicehub: set[str] = set()
    for label, x, y in (("create", a[0], b[0]), ("get", a[1], b[1]), ("list", a[2], b[2])):
        px, py = paths(x), paths(y)
        if py - px:
            problems.append(f"{label}: fields only the baseline has: {sorted(py - px)}")
        only_invoicehub |= {f"{label}: {p}" for p in px - py if not p.startswith(".metadata.")}
    for money in ("subtotal", "tax", "total", "amount_due", "status", "number", "due_date"):
        if a[0][money] != b[0][money]:
            problems.append(f"create: {money} {a[0][money]!r} != {b[0][money]!r}")
    for i, (la, lb) in enumerate(zip(a[1]["line_items"], b[1]["line_items"], strict=True)):
        for k in ("quantity", "unit_price", "tax_rate", "amount", "tax"):
            if la[k] != lb[k]:
                problems.append(f"line {i}: {k} {la[k]!r} != {lb[k]!r}")
    for p in problems:
        log(f"PARITY WARNING {p}")
    if only_invoicehub:
        log(f"fields the baseline leaves out: {sorted(only_invoicehub)}")
    return {
        "ok": not problems,
        "problems": problems,
        "fields_only_in_invoicehub": sorted(only_invoicehub),
        "invoicehub_create_bytes": len(json.dumps(a[0], separators=(",", ":"))),
        "baseline_create_bytes": len(json.dumps(b[0], separators=(",", ":"))),
    }


def run_database(
    kind: str, opts: Options, run_dir: Path, started: float, out: dict[str, Any]
) -> None:
    """Fills ``out`` as it goes, so an interrupted run still reports what it measured."""
    with fresh_database(kind, opts, run_dir) as url:
        out["url"] = url
        log(f"{kind}: migrating {url}")
        cli(url, "migrate")
        orgs = {
            name: json.loads(cli(url, "org", "create", "--name", f"bench {name}", "--json"))
            for name in ("invoicehub", "baseline")
        }
        ih_server = Server(
            "invoicehub",
            [INVOICEHUB, "serve", "--host", HOST, "--workers", str(opts.workers)],
            bench_env(url, serve_worker=opts.serve_worker),
            run_dir / f"{kind}-invoicehub-server.log",
        )
        bl_server = Server(
            "baseline",
            [PYTHON, BASELINE, "--database-url", url, "--workers", str(opts.workers)],
            bench_env(url),
            run_dir / f"{kind}-baseline-server.log",
        )
        direct = Direct(url)
        runner = Runner(opts, run_dir, kind, direct, [ih_server, bl_server])
        out["records"] = runner.records
        out["server_deaths"] = {"invoicehub": ih_server.deaths, "baseline": bl_server.deaths}
        try:
            with ih_server, bl_server:
                targets = [
                    Target(
                        "invoicehub",
                        ih_server,
                        orgs["invoicehub"]["secret_key"],
                        orgs["invoicehub"]["org_id"],
                    ),
                    Target(
                        "baseline",
                        bl_server,
                        orgs["baseline"]["secret_key"],
                        orgs["baseline"]["org_id"],
                    ),
                ]
                for t in targets:
                    t.org_id = direct.org_id(t.org_public_id)
                out["parity"] = parity_check(targets)
                out["statements"] = probe(
                    "statements", "--database-url", url, "--secret", targets[0].secret
                )
                run_core(runner, targets, opts, direct)
                out["scaling"] = {}
                run_scaling(runner, targets, opts, direct, started, out["scaling"])
        finally:
            direct.close()


def run_core(runner: Runner, targets: list[Target], opts: Options, direct: Direct) -> None:
    body_open = json.dumps(CREATE_BODY)
    body_draft = json.dumps({**CREATE_BODY, "status": "draft"})
    timing = {"duration": opts.duration, "warmup": opts.warmup}
    for c in opts.concurrency:
        for t in targets:
            runner.measure(
                t,
                "create",
                [{"method": "POST", "path": "/v1/invoices", "body": body_open}],
                expect=201,
                concurrency=c,
                **timing,
            )
        runner.measure(
            targets[0],
            "create_draft",
            [{"method": "POST", "path": "/v1/invoices", "body": body_draft}],
            expect=201,
            concurrency=c,
            **timing,
        )
    for t in targets:
        t.get_ids = direct.api_invoice_ids(t.org_id)
    for c in opts.concurrency:
        for t in targets:
            runner.measure(t, "get", get_requests(t.get_ids), expect=200, concurrency=c, **timing)
        for t in targets:
            runner.measure(t, "list", list_requests(None), expect=200, concurrency=c, **timing)
    for t in targets:
        runner.measure(
            t,
            "healthz",
            [{"method": "GET", "path": "/healthz"}],
            expect=200,
            concurrency=1,
            duration=min(opts.duration, 3.0),
            warmup=opts.warmup,
        )


def run_scaling(
    runner: Runner,
    targets: list[Target],
    opts: Options,
    direct: Direct,
    started: float,
    info: dict[str, Any],
) -> None:
    scaled = targets if opts.scale_baseline else targets[:1]
    info.update(sizes=[], seeding=[], plans={}, skipped=[])
    timing = {"duration": opts.scale_duration, "warmup": opts.scale_warmup}
    for step, size in enumerate(opts.sizes):
        spent = time.monotonic() - started
        if spent > opts.time_budget:
            log(f"time budget spent ({spent:.0f} s): skipping {size} rows")
            info["skipped"].append(size)
            continue
        have = {t.name: direct.count(t.org_id) for t in scaled}
        log(f"{runner.kind}: seeding to {size:,} invoices per organization (now {have})")
        seeded = direct.seed({t.org_id: size - have[t.name] for t in scaled})
        seeded.update(size=size, before=have, organizations=[t.name for t in scaled])
        info["seeding"].append(seeded)
        log(f"{runner.kind}: seeded {seeded}")
        info["seeding"].append({"after_seed_s": direct.after_seed(), "size": size})
        info["sizes"].append(size)
        job = probe("housekeeping", "--database-url", direct.url)
        job["size"] = size
        info.setdefault("housekeeping", []).append(job)
        log(
            f"{runner.kind}: worker job 'expire invoices' at {size:,}: "
            + (f"{job['seconds']} s" if "seconds" in job else f"probe failed: {job['error']}")
        )
        # Each size starts with the other server, so neither always goes first after a load.
        for t in scaled if step % 2 == 0 else scaled[::-1]:
            total = direct.count(t.org_id)
            cursors = direct.deep_cursors(t.org_id, total)
            extra = {"size": total, "size_target": size}
            for c in opts.concurrency:
                runner.measure(
                    t,
                    "list_first",
                    list_requests(None),
                    expect=200,
                    concurrency=c,
                    extra=extra,
                    **timing,
                )
                runner.measure(
                    t,
                    "list_deep",
                    list_requests([x["public_id"] for x in cursors]),
                    expect=200,
                    concurrency=c,
                    extra=extra,
                    **timing,
                )
                runner.measure(
                    t,
                    "get",
                    get_requests(t.get_ids),
                    expect=200,
                    concurrency=c,
                    extra={**extra, "phase": "scaling"},
                    **timing,
                )
            if size == opts.sizes[-1] and t.name == "invoicehub":
                info["plans"] = direct.list_plans(t.org_id, cursors[-1]["public_id"])
                info["deep_cursors"] = cursors
    if info["sizes"] and opts.newer_tenant_rows > 0:
        behind_newer_tenant(runner, scaled, opts, direct, info)


def behind_newer_tenant(
    runner: Runner, scaled: list[Target], opts: Options, direct: Direct, info: dict[str, Any]
) -> None:
    """A third organization writes many invoices after ours: each measured organization's
    newest invoices are now older than the other tenant's. A list page must still use the
    (organization_id, id) index, not walk the primary key through the other's rows."""
    rows = opts.newer_tenant_rows
    other = json.loads(cli(direct.url, "org", "create", "--name", "bench newer tenant", "--json"))
    log(f"{runner.kind}: a newer tenant writes {rows:,} invoices")
    seeded = direct.seed({direct.org_id(other["org_id"]): rows})
    seeded.update(size=info["sizes"][-1], organizations=["newer tenant"])
    info["seeding"].append(seeded)
    info["seeding"].append({"after_seed_s": direct.after_seed(), "size": info["sizes"][-1]})
    for t in scaled:
        extra = {"size": direct.count(t.org_id), "newer_tenant_rows": rows}
        for c in opts.concurrency:
            runner.measure(
                t,
                "list_first_behind",
                list_requests(None),
                expect=200,
                concurrency=c,
                extra=extra,
                duration=opts.scale_duration,
                warmup=opts.scale_warmup,
            )
        if t.name == "invoicehub":
            info["plans_behind_newer_tenant"] = direct.list_plans(
                t.org_id, info["deep_cursors"][-1]["public_id"]
            )


# ---------------------------------------------------------------- report


def machine_info(opts: Options) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    info: dict[str, Any] = {
        "git": git + (f" + {len(dirty.splitlines())} uncommitted changes in src/" if dirty else ""),
        "nproc": nproc,
        "cpu": cpu,
        "memory_gib": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {
            p: version(p)
            for p in (
                "fastapi",
                "starlette",
                "pydantic",
                "sqlalchemy",
                "psycopg",
                "uvicorn",
                "h11",
                "anyio",
            )
        },
    }
    if "postgres" in opts.databases:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(opts.pg_admin_url, connect_timeout=5) as c,
        ):
            info["postgres"] = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return info


def pick(records: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in records:
        if all(r.get(k) == v for k, v in match.items()) and ("phase" not in r or "phase" in match):
            return r
    return None


NOISE_MARK = [0.25]  # set from the run's --noise-threshold when rendering


def mark(r: dict[str, Any]) -> str:
    """† on figures measured while other processes used the CPU (see foreign_cores)."""
    return " †" if r.get("foreign_cores", 0) > NOISE_MARK[0] else ""


def fmt(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def core_table(records: list[dict[str, Any]], concurrency: list[int]) -> str:
    rows = [
        "| operation | clients | invoicehub req/s | p50 ms | p99 ms | baseline req/s | p50 ms | p99 ms | invoicehub ÷ baseline (req/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "create": "create invoice (5 lines, status open)",
        "create_draft": "create invoice (5 lines, draft) – invoicehub only",
        "get": "get invoice",
        "list": f"list first page (limit {PAGE})",
        "healthz": "GET /healthz (framework floor)",
    }
    for scenario, label in labels.items():
        for c in concurrency:
            a = pick(records, target="invoicehub", scenario=scenario, concurrency=c)
            b = pick(records, target="baseline", scenario=scenario, concurrency=c)
            if not a and not b:
                continue
            ratio = (
                f"{a['throughput_rps'] / b['throughput_rps']:.0%}"
                if a and b and b["throughput_rps"]
                else "–"
            )
            cells = [label, str(c)]
            for r in (a, b):
                if r:
                    err = f" ({r['errors']} errors)" if r["errors"] else ""
                    cells += [
                        fmt(r["throughput_rps"]) + err + mark(r),
                        fmt(r["latency_ms"]["p50"], 2),
                        fmt(r["latency_ms"]["p99"], 2),
                    ]
                else:
                    cells += ["–", "–", "–"]
            cells.append(ratio)
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cpu_table(records: list[dict[str, Any]], kind: str) -> str:
    rows = [
        "| operation | clients | invoicehub server CPU ms/req | baseline server CPU ms/req"
        + (
            " | PostgreSQL CPU ms/req (ih / baseline) | new PostgreSQL connections (ih / baseline)"
            if kind == "postgres"
            else ""
        )
        + " |",
        "|---|---:|---:|---:" + ("|---:|---:" if kind == "postgres" else "") + "|",
    ]
    for scenario in ("create", "get", "list", "healthz"):
        for c in sorted({r["concurrency"] for r in records}):
            a = pick(records, target="invoicehub", scenario=scenario, concurrency=c)
            b = pick(records, target="baseline", scenario=scenario, concurrency=c)
            if not a or not b:
                continue
            cells = [
                scenario,
                str(c),
                fmt(per_req(a, "server_cpu_s"), 2),
                fmt(per_req(b, "server_cpu_s"), 2),
            ]
            if kind == "postgres":
                cells.append(f"{fmt(per_req(a, 'db_cpu_s'), 2)} / {fmt(per_req(b, 'db_cpu_s'), 2)}")
                # Backends that exit take their CPU along: with new connections during the
                # run, the PostgreSQL CPU figure is a lower bound.
                cells.append(f"{a.get('pg_new_sessions', '–')} / {b.get('pg_new_sessions', '–')}")
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def total_cpu_per_req(r: dict[str, Any]) -> float | None:
    """Server plus database CPU per request: what bounds throughput on a saturated box,
    and much less disturbed than req/s by other processes sharing the CPU."""
    server = per_req(r, "server_cpu_s")
    db = per_req(r, "db_cpu_s") or 0.0
    return None if server is None else server + db


def per_req(r: dict[str, Any], key: str) -> float | None:
    """CPU ms per request over the whole loadgen run (warm-up requests included)."""
    value = r.get(key)
    total = r.get("all_requests") or r["requests"]
    if value is None or not total:
        return None
    return value / total * 1000


def scaling_table(records: list[dict[str, Any]], concurrency: list[int]) -> str:
    rows = [
        "| invoices in org | request | clients | invoicehub p50 ms | p99 ms | req/s | baseline p50 ms | p99 ms | req/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sizes = sorted(
        {r["size_target"] for r in records if r.get("size_target") and r["target"] == "invoicehub"}
    )
    for size in sizes:
        for scenario, label in (
            ("list_first", "first page"),
            ("list_deep", "deep page (starting_after)"),
            ("get", "get invoice"),
        ):
            for c in concurrency:
                a = next(
                    (
                        r
                        for r in records
                        if r["target"] == "invoicehub"
                        and r["scenario"] == scenario
                        and r.get("size_target") == size
                        and r["concurrency"] == c
                    ),
                    None,
                )
                b = next(
                    (
                        r
                        for r in records
                        if r["target"] == "baseline"
                        and r["scenario"] == scenario
                        and r.get("size_target") == size
                        and r["concurrency"] == c
                    ),
                    None,
                )
                if not a:
                    continue
                cells = [f"{size:,}", label, str(c)]
                for r in (a, b):
                    if r:
                        err = f" ({r['errors']} err)" if r["errors"] else ""
                        cells += [
                            fmt(r["latency_ms"]["p50"], 2),
                            fmt(r["latency_ms"]["p99"], 2),
                            fmt(r["throughput_rps"]) + err + mark(r),
                        ]
                    else:
                        cells += ["–", "–", "–"]
                rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def evaluate(records: list[dict[str, Any]], concurrency: list[int]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figures it was judged on."""
    out = []
    ratios = []
    for c in concurrency:
        a = pick(records, target="invoicehub", scenario="create", concurrency=c)
        b = pick(records, target="baseline", scenario="create", concurrency=c)
        if a and b and b["throughput_rps"]:
            ratios.append((c, a["throughput_rps"] / b["throughput_rps"]))
    cpu_ratios = []
    for c in concurrency:
        a = pick(records, target="invoicehub", scenario="create", concurrency=c)
        b = pick(records, target="baseline", scenario="create", concurrency=c)
        if a and b:
            ca, cb = total_cpu_per_req(a), total_cpu_per_req(b)
            sa, sb = per_req(a, "server_cpu_s"), per_req(b, "server_cpu_s")
            if ca and cb and sa and sb:
                cpu_ratios.append((c, f"{sb / sa:.0%} / {cb / ca:.0%}"))
    out.append(
        {
            "target": f"create ≥ {CREATE_TARGET:.0%} of the baseline's throughput",
            "met": bool(ratios) and all(r >= CREATE_TARGET for _, r in ratios),
            "detail": ", ".join(f"{r:.0%} at {c} client{'s' if c > 1 else ''}" for c, r in ratios)
            + (
                "; CPU per request, baseline ÷ invoicehub (server / server + database): "
                + ", ".join(f"{r} at {c}" for c, r in cpu_ratios)
                if cpu_ratios
                else ""
            ),
        }
    )
    high = max(concurrency)
    for scenario, names in (("get", ("get",)), ("list", ("list", "list_first", "list_deep"))):
        worst = [
            r
            for r in records
            if r["target"] == "invoicehub" and r["scenario"] in names and r["concurrency"] == high
        ]
        if not worst:
            continue
        w = max(worst, key=lambda r: r["latency_ms"]["p99"])
        core = pick(records, target="invoicehub", scenario=scenario, concurrency=high)
        out.append(
            {
                "target": f"{scenario} p99 < {P99_TARGET_MS:g} ms at {high} clients",
                "met": w["latency_ms"]["p99"] < P99_TARGET_MS,
                "detail": (f"{core['latency_ms']['p99']:.1f} ms in the core run; " if core else "")
                + f"worst {w['latency_ms']['p99']:.1f} ms ({w['scenario']}"
                + (f", {w['size']:,} invoices" if w.get("size") else "")
                + ")",
            }
        )
    sizes = sorted(
        {r["size_target"] for r in records if r["target"] == "invoicehub" and r.get("size_target")}
    )
    if len(sizes) >= 2:
        details = []
        met = True
        for scenario in ("list_first", "list_deep"):
            for c in concurrency:
                lo = next(
                    (
                        r
                        for r in records
                        if r["target"] == "invoicehub"
                        and r["scenario"] == scenario
                        and r.get("size_target") == sizes[0]
                        and r["concurrency"] == c
                    ),
                    None,
                )
                hi = next(
                    (
                        r
                        for r in records
                        if r["target"] == "invoicehub"
                        and r["scenario"] == scenario
                        and r.get("size_target") == sizes[-1]
                        and r["concurrency"] == c
                    ),
                    None,
                )
                if not lo or not hi:
                    continue
                ratio = hi["latency_ms"]["p50"] / lo["latency_ms"]["p50"]
                if c == min(concurrency):
                    met = met and ratio <= FLAT_RATIO
                details.append(
                    f"{scenario.replace('list_', '')} c={c}: p50 {lo['latency_ms']['p50']:.2f} → "
                    f"{hi['latency_ms']['p50']:.2f} ms (×{ratio:.2f})"
                )
        out.append(
            {
                "target": f"list page time flat from {sizes[0]:,} to {sizes[-1]:,} invoices "
                f"(p50 at 1 client within ×{FLAT_RATIO})",
                "met": met,
                "detail": "; ".join(details),
            }
        )
    behind = [
        r
        for r in records
        if r["target"] == "invoicehub"
        and r["scenario"] == "list_first_behind"
        and r["concurrency"] == high
    ]
    if behind:
        r = behind[0]
        out.append(
            {
                "target": f"(same, after another organization wrote {r['newer_tenant_rows']:,} "
                "newer invoices)",
                "met": r["latency_ms"]["p99"] < P99_TARGET_MS,
                "detail": f"first page p50 {r['latency_ms']['p50']:.1f} ms, "
                f"p99 {r['latency_ms']['p99']:.1f} ms at {high} clients",
            }
        )
    return out


def render(results: dict[str, Any]) -> str:
    opts = results["options"]
    machine = results["machine"]
    NOISE_MARK[0] = opts["noise_threshold"]
    lines = [
        f"# invoicehub core API benchmark — {results['started_at']}",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Code: {machine['git']}; invoicehub's in-process worker "
        f"{'on (as shipped)' if opts['serve_worker'] else 'off (INVOICEHUB_RUN_WORKER_IN_SERVE=false)'}; "
        f"{opts.get('workers', 1)} server process(es) each.",
        "",
        f"Machine: {machine['nproc']} cores (`nproc`), {machine['cpu']}, {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}; Python {machine['python']}; SQLite {machine['sqlite']}"
        + (f"; PostgreSQL {machine['postgres']}" if machine.get("postgres") else "")
        + "; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
        + ".",
        "",
        f"Per scenario: {opts['warmup']} s warm-up, then {opts['duration']} s or {opts['max_requests']:,} "
        f"requests (size scenarios: {opts['scale_warmup']} s + {opts['scale_duration']} s). "
        f"Total run time {results['elapsed_s']:.0f} s. "
        f"† marks a figure measured while other processes on the machine, or the hypervisor's "
        f"steal, used more than {opts['noise_threshold']} cores (after {opts['noise_retries']} "
        "repeats; the quietest attempt is kept; `foreign_cores` and `steal_cores` in "
        "results.json).",
    ]
    for db in results["databases"]:
        kind = db["database"]
        title = "SQLite" if kind == "sqlite" else "PostgreSQL"
        recs = db.get("records", [])
        lines += ["", f"## {title}", ""]
        if "error" in db:
            lines += [f"**Failed:** {db['error']}", ""]
            if not recs:
                continue
        lines += [core_table(recs, opts["concurrency"]), ""]
        lines += [
            "Server CPU per request (whole run, warm-up included):",
            "",
            cpu_table(recs, kind),
            "",
        ]
        st = db.get("statements") or {}
        if st and "error" not in st:
            lines += [
                "invoicehub SQL per call (bench/probe.py; pool checkouts in brackets"
                + (", each also a pre-ping round trip" if st.get("pre_ping") else "")
                + "): "
                + ", ".join(
                    f"{k} {v['count']} [{v['pool_checkouts']}]"
                    for k, v in st.items()
                    if isinstance(v, dict)
                )
                + ".",
                "",
            ]
        elif st:
            lines += [f"Statement probe failed: {st['error'][-300:]}", ""]
        scaling = db.get("scaling") or {}
        jobs = [j for j in scaling.get("housekeeping", []) if "seconds" in j]
        if jobs:
            plan = " / ".join(jobs[-1]["statements"][0]["plan"]) if jobs[-1]["statements"] else ""
            lines += [
                "Worker job 'expire invoices' (runs every 15 s inside `invoicehub serve`), one run: "
                + ", ".join(
                    f"{j['size']:,} invoices/org {j['seconds'] * 1000:,.0f} ms" for j in jobs
                )
                + (f"; plan: `{plan}`" if plan else "")
                + ".",
                "",
            ]
        if scaling.get("sizes"):
            lines += [
                f"### {title}: list page and get vs. organization size",
                "",
                scaling_table(recs, opts["concurrency"]),
                "",
            ]
            seeds = [s for s in scaling["seeding"] if s.get("rows")]
            if seeds:
                lines += [
                    "Seeding: "
                    + "; ".join(
                        f"+{s['rows']:,} rows ({', '.join(s.get('organizations', []))}) in {s['seconds']} s ({s['rows_per_s']:,}/s)"
                        for s in seeds
                    )
                    + ".",
                    "",
                ]
        behind = [r for r in recs if r["scenario"] == "list_first_behind"]
        if behind:
            n = behind[0]["newer_tenant_rows"]
            lines += [
                f"### {title}: first page after another organization wrote {n:,} newer invoices",
                "",
                "| organization | invoices in it | clients | p50 ms | p99 ms | req/s |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in behind:
                lines.append(
                    f"| {r['target']} | {r['size']:,} | {r['concurrency']} | "
                    f"{fmt(r['latency_ms'].get('p50'), 2)} | {fmt(r['latency_ms'].get('p99'), 2)} | "
                    f"{fmt(r['throughput_rps'])}{mark(r)} |"
                )
            lines.append("")
        lines += [f"### {title}: targets", "", "| target | met | figures |", "|---|---|---|"]
        for e in evaluate(recs, opts["concurrency"]):
            lines.append(f"| {e['target']} | {'yes' if e['met'] else '**no**'} | {e['detail']} |")
        if not db.get("parity", {}).get("ok", True):
            lines += ["", f"Parity problems: {db['parity']['problems']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--render"] and len(args) == 2:
        # Re-render the report of a finished run: --render bench/results/<stamp>/results.json
        print(render(json.loads(Path(args[1]).read_text())))
        return 0
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = opts.results_dir / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        [".venv/bin/python", "bench/bench_core.py", *(argv if argv is not None else sys.argv[1:])]
    )
    results: dict[str, Any] = {
        "started_at": stamp,
        "command": command,
        "options": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        },
        "machine": machine_info(opts),
        "databases": [],
    }
    log(f"results go to {run_dir}")
    exit_code = 0
    try:
        for kind in opts.databases:
            out: dict[str, Any] = {"database": kind}
            results["databases"].append(out)
            try:
                run_database(kind, opts, run_dir, started, out)
            except (
                RuntimeError,
                OSError,
                psycopg.Error,
                sqlite3.Error,
                subprocess.TimeoutExpired,
            ) as exc:
                log(f"{kind}: FAILED: {exc}")
                out["error"] = str(exc)
                exit_code = 1
    finally:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        report = render(results)
        (run_dir / "report.md").write_text(report)
        print(report)
        log(f"wrote {run_dir / 'results.json'} and report.md")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
