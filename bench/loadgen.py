"""Closed-loop HTTP/1.1 load generator, run as its own process by bench_core.py.

Each of ``concurrency`` clients keeps one keep-alive connection to 127.0.0.1 and sends its
next request as soon as the previous answer is read. Requests sent in the first ``warmup``
seconds are not recorded. The run stops at ``duration`` seconds after the warm-up or after
``max_requests`` recorded requests, whichever comes first; a hard deadline (a minute
after that) cancels any answer still owed, so it always ends.

It speaks just enough HTTP/1.1 (an asyncio Protocol, fixed Content-Length answers) to keep
its own cost per request in the tens of microseconds; a full client such as httpx costs
several hundred microseconds per request, which on a 2-core machine would take CPU from
the server being measured.

Usage: python bench/loadgen.py SPEC.json   (prints one JSON object with the results)
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from typing import Any

GRACE_S = 60.0  # after the deadline, answers still owed get this long before a hard stop


class HttpError(Exception):
    pass


def build_requests(spec: dict[str, Any]) -> list[bytes]:
    host = f"{spec['host']}:{spec['port']}"
    common = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
    out = []
    for req in spec["requests"]:
        method = req["method"]
        body = req.get("body", "").encode()
        head = f"{method} {req['path']} HTTP/1.1\r\nHost: {host}\r\n{common}"
        if body or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        out.append(head.encode() + b"\r\n" + body)
    return out


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers must carry Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:head_end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.waiter.set_exception(HttpError("answer without Content-Length"))
            return
        end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : end if end > 0 else None])
        total = head_end + 4 + length
        if len(self.buffer) < total:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[head_end + 4 : total])
        del self.buffer[:total]
        self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int) -> Connection:
    _, protocol = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return protocol


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests = build_requests(spec)
    expect = int(spec["expect_status"])
    concurrency = int(spec["concurrency"])
    warmup = float(spec.get("warmup", 0.0))
    duration = float(spec["duration"])
    max_requests = int(spec["max_requests"])
    pick_random = spec.get("order", "random") == "random"

    loop = asyncio.get_running_loop()
    started = loop.time()
    measure_from = started + warmup
    deadline = measure_from + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    recorded = 0
    completed = 0
    transport_errors = 0
    last_done = measure_from

    async def client(index: int) -> None:
        nonlocal recorded, completed, transport_errors, last_done
        rng = random.Random(index * 7919 + 17)
        conn = await connect(spec["host"], spec["port"])
        turn = index
        try:
            while True:
                now = loop.time()
                if now >= deadline or recorded >= max_requests:
                    return
                if pick_random:
                    payload = requests[rng.randrange(len(requests))]
                else:
                    payload = requests[turn % len(requests)]
                    turn += concurrency
                t0 = time.perf_counter()
                try:
                    status, body = await conn.request(payload)
                except (OSError, HttpError) as exc:
                    transport_errors += 1
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    conn.close()
                    if transport_errors > 100:
                        return
                    conn = await connect(spec["host"], spec["port"])
                    continue
                elapsed = time.perf_counter() - t0
                completed += 1
                done = loop.time()
                if done < measure_from:
                    continue
                if recorded >= max_requests:
                    return
                recorded += 1
                last_done = max(last_done, done)
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status != expect and len(errors) < 5:
                    errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")
        finally:
            conn.close()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    hard_limit = warmup + duration + GRACE_S
    tasks = [asyncio.create_task(client(i)) for i in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=hard_limit)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            transport_errors += 1
            errors.append(f"client crashed: {task.exception()!r}"[:300])
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)

    window = max(last_done - measure_from, 1e-9)
    latencies.sort()
    ok = statuses.get(expect, 0)
    return {
        "requests": recorded,
        "all_requests": completed,
        "ok": ok,
        "errors": recorded - ok + transport_errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "error_samples": errors[:5],
        "window_s": round(window, 4),
        "throughput_rps": round(recorded / window, 2) if recorded else 0.0,
        "latency_ms": summarize(latencies),
        "client_cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 4),
        "stopped_by": "count" if recorded >= max_requests else "time",
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(sorted_s: list[float]) -> dict[str, float]:
    if not sorted_s:
        return {}
    ms = [v * 1000 for v in sorted_s]
    return {
        "min": round(ms[0], 3),
        "p50": round(percentile(ms, 50), 3),
        "p90": round(percentile(ms, 90), 3),
        "p99": round(percentile(ms, 99), 3),
        "p99_9": round(percentile(ms, 99.9), 3),
        "max": round(ms[-1], 3),
        "mean": round(sum(ms) / len(ms), 3),
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    if spec["host"] != "127.0.0.1":
        raise SystemExit("loadgen only talks to 127.0.0.1")
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
