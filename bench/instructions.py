"""Instructions per request: invoicehub beside the bare baseline, counted by callgrind.

Wall-clock and CPU-time figures on this 2-core virtual machine move 10-30 % from one run to
the next even when nothing else runs (bench_core.py and bench_webhooks.py report that spread).
Instructions do not: ``valgrind --tool=callgrind`` counts every instruction the server
process executes, repeatable to about 0.1 % for the same code and the same requests. It is
not time (no cache misses, no waiting, no PostgreSQL backend), but for a CPU-bound server
it is the cost that throughput is the inverse of, so a ratio of instructions is a steady
stand-in for a ratio of throughputs.

Per database (a fresh SQLite file, or a new PostgreSQL database on 127.0.0.1:5432 dropped
afterwards), each server — ``invoicehub serve`` (worker off, rate limit off, as in
bench_core.py) and ``bench/baseline_app.py`` — runs under callgrind with instrumentation off.
For each call (create with 5 line items and ``status: open``, get, list page of 20) the
harness sends ``--warmup`` requests, zeroes the counters, switches instrumentation on, sends
``--requests`` more with bench/loadgen.py (one client, one keep-alive connection), switches
it off and dumps: instructions / requests. With ``--endpoints N`` invoicehub's create is
also counted in an organization with N webhook endpoints (the outbox cost, issue #4).

    .venv/bin/python bench/instructions.py                         # both databases, ~8 min
    .venv/bin/python bench/instructions.py --databases sqlite --calls create --endpoints 5

Needs valgrind (Debian package ``valgrind``). Only 127.0.0.1 is contacted. Prints a
markdown table; raw figures go to bench/results/instructions-<UTC stamp>/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_core import (  # bench/ is sys.path[0] when run as a script
    BASELINE,
    CREATE_BODY,
    HOST,
    INVOICEHUB,
    LOADGEN,
    PYTHON,
    ROOT,
    Options,
    bench_env,
    call,
    cli,
    free_port,
    fresh_database,
    log,
    parse_args,
    wait_until_healthy,
)

START_LIMIT_S = 600  # a server under valgrind starts 20-50x slower
CALLS = ("create", "get", "list", "healthz")  # healthz: each server's floor (one SELECT 1)


class CountedServer:
    """A server process under callgrind, instrumentation off until asked."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.out_dir = workdir / f"callgrind-{name}-{env['INVOICEHUB_DATABASE_URL'].split(':')[0]}"
        self.out_dir.mkdir()
        self.log_path = workdir / f"{name}.log"
        self.argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={self.out_dir}/out",
            *argv,
            "--port",
            str(self.port),
        ]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CountedServer:
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_healthy(
            self.name, self.process, self.port, self.log_path, limit_s=START_LIMIT_S, poll_s=1
        )
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def control(self, *args: str) -> None:
        assert self.process is not None
        subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def count(self, send: Any) -> int:
        """Instructions the process executes while ``send()`` runs."""
        before = set(self.out_dir.iterdir())
        self.control("--zero")
        self.control("--instr=on")
        send()
        self.control("--instr=off")
        self.control("--dump")
        deadline = time.monotonic() + 60
        while True:
            new = sorted(set(self.out_dir.iterdir()) - before)
            if new:
                text = new[-1].read_text(errors="replace")
                found = re.search(r"^totals: (\d+)", text, re.MULTILINE)
                if found:
                    return int(found.group(1))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no callgrind dump from {self.name} in {self.out_dir}")
            time.sleep(0.5)


def send_requests(port: int, secret: str, request: dict[str, Any], n: int, expect: int) -> int:
    spec = {
        "host": HOST,
        "port": port,
        "headers": {"Authorization": f"Bearer {secret}", "Accept": "application/json"},
        "requests": [request],
        "expect_status": expect,
        "concurrency": 1,
        "duration": 3600.0,
        "warmup": 0.0,
        "max_requests": n,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    try:
        done = subprocess.run(
            [PYTHON, LOADGEN, fh.name], capture_output=True, text=True, timeout=3600, check=True
        )
    finally:
        os.unlink(fh.name)
    result = json.loads(done.stdout)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests failed: {result}")
    return int(result["all_requests"])


def request_for(what: str, invoice_id: str) -> tuple[dict[str, Any], int]:
    if what == "create":
        body = json.dumps(CREATE_BODY)
        return {"method": "POST", "path": "/v1/invoices", "body": body}, 201
    if what == "get":
        return {"method": "GET", "path": f"/v1/invoices/{invoice_id}"}, 200
    if what == "healthz":
        return {"method": "GET", "path": "/healthz"}, 200
    return {"method": "GET", "path": "/v1/invoices?limit=20"}, 200


def measure_server(
    server: CountedServer,
    orgs: dict[str, dict[str, Any]],
    calls: list[str],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    out = []
    for org_name, org in orgs.items():
        status, made = call(server.port, "POST", "/v1/invoices", org["secret_key"], CREATE_BODY)
        if status != 201:
            raise RuntimeError(f"{server.name}: create answered {status}: {made}")
        for what in calls if org_name == "plain" else ["create"]:
            request, expect = request_for(what, made["id"])
            send_requests(server.port, org["secret_key"], request, args.warmup, expect)
            sent = 0

            def send(
                request: dict[str, Any] = request,
                expect: int = expect,
                secret: str = org["secret_key"],
            ) -> None:
                nonlocal sent
                sent = send_requests(server.port, secret, request, args.requests, expect)

            instructions = server.count(send)
            row = {
                "server": server.name,
                "call": what,
                "endpoints": org.get("endpoints", 0),
                "requests": sent,
                "instructions_per_request": round(instructions / sent),
            }
            log(f"{row}")
            out.append(row)
    return out


def run_database(kind: str, args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    opts: Options = parse_args(["--databases", kind])
    rows: list[dict[str, Any]] = []
    with fresh_database(kind, opts, workdir) as url:
        cli(url, "migrate")

        def org(name: str) -> dict[str, Any]:
            made: dict[str, Any] = json.loads(
                cli(url, "org", "create", "--name", name, "--verified", "--json")
            )
            return made

        env = bench_env(url, serve_worker=False)
        ours = {"plain": org("counted")}
        for n in args.endpoints:
            ours[f"endpoints-{n}"] = {**org(f"counted, {n} endpoints"), "endpoints": n}
        with CountedServer("invoicehub", [INVOICEHUB, "serve", "--host", HOST], env, workdir) as s:
            for key, made in ours.items():
                for i in range(made.get("endpoints", 0)):
                    status, answer = call(
                        s.port,
                        "POST",
                        "/v1/webhook-endpoints",
                        made["secret_key"],
                        {"url": f"https://hooks{i}.example.com/{key}", "enabled_events": ["*"]},
                    )
                    if status != 201:
                        raise RuntimeError(f"endpoint registration answered {status}: {answer}")
            rows += measure_server(s, ours, args.calls, args)
        baseline = {"plain": org("baseline")}
        argv = [PYTHON, BASELINE, "--database-url", url]
        with CountedServer("baseline", argv, bench_env(url), workdir) as s:
            rows += measure_server(s, baseline, args.calls, args)
    for row in rows:
        row["database"] = kind
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| database | call | invoicehub, M instructions/request | baseline | baseline ÷ invoicehub |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in dict.fromkeys(r["database"] for r in rows):
        for what in CALLS:
            ours = next(
                (
                    r
                    for r in rows
                    if (r["database"], r["server"], r["call"], r["endpoints"])
                    == (kind, "invoicehub", what, 0)
                ),
                None,
            )
            theirs = next(
                (
                    r
                    for r in rows
                    if (r["database"], r["server"], r["call"]) == (kind, "baseline", what)
                ),
                None,
            )
            if ours is None or theirs is None:
                continue
            a, b = ours["instructions_per_request"], theirs["instructions_per_request"]
            lines.append(f"| {kind} | {what} | {a / 1e6:.2f} | {b / 1e6:.2f} | {b / a:.1%} |")
    outbox = [r for r in rows if r["endpoints"]]
    if outbox:
        lines += ["", "| database | endpoints | create, M instructions/request | vs 0 endpoints |"]
        lines.append("|---|---:|---:|---:|")
        for r in outbox:
            zero = next(
                x
                for x in rows
                if (x["database"], x["server"], x["call"], x["endpoints"])
                == (r["database"], "invoicehub", "create", 0)
            )
            a, z = r["instructions_per_request"], zero["instructions_per_request"]
            lines.append(
                f"| {r['database']} | {r['endpoints']} | {a / 1e6:.2f} | {a / z - 1:+.1%} |"
            )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--databases", default="sqlite,postgres")
    p.add_argument("--calls", default=",".join(CALLS))
    p.add_argument("--requests", type=int, default=100, help="counted requests per call")
    p.add_argument("--warmup", type=int, default=60, help="uncounted requests before")
    p.add_argument("--endpoints", default="5", help="comma list; '' for none")
    p.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    args = p.parse_args()
    args.calls = [c for c in args.calls.split(",") if c]
    if unknown := set(args.calls) - set(CALLS):
        p.error(f"unknown call {sorted(unknown)[0]!r}; use {', '.join(CALLS)}")
    args.endpoints = [int(n) for n in args.endpoints.split(",") if n]
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        p.error("valgrind is not installed (apt-get install valgrind)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = Path(args.results_dir) / f"instructions-{stamp}"
    run_dir.mkdir(parents=True)
    rows: list[dict[str, Any]] = []
    for kind in args.databases.split(","):
        rows += run_database(kind, args, run_dir)
        (run_dir / "results.json").write_text(json.dumps(rows, indent=2))
    report = table(rows)
    (run_dir / "report.md").write_text(report + "\n")
    sys.stdout.write(report + "\n")
    log(f"wrote {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
