"""In-process probes of invoicehub's SQL, run by bench_core.py as a subprocess.

``statements``: calls the app in-process (httpx ASGI transport, no socket, no lifespan, so
no background worker) and records every SQL statement and pool checkout of one create
(open and draft), get, list first page and list deep page. On PostgreSQL each checkout
also costs a ``pool_pre_ping`` round trip, which cursor events do not show.

``housekeeping``: runs the worker's "expire invoices" job (``expire_due_invoices``) once in
a write transaction that is rolled back, timing each statement and printing its plan.
``invoicehub serve`` runs this job every 15 s by default.

    python bench/probe.py statements --database-url URL --secret sk_…
    python bench/probe.py housekeeping --database-url URL

Prints one JSON object. Imports invoicehub, so it measures whatever src/ holds now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx
from bench_core import CREATE_BODY  # bench/ is sys.path[0] when run as a script
from sqlalchemy import event

from invoicehub.api.runtime import Runtime
from invoicehub.app import create_app
from invoicehub.config import Settings


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, rate_limit_enabled=False, log_level="warning")


class Recorder:
    def __init__(self, runtime: Runtime) -> None:
        self.statements: list[dict[str, Any]] = []
        self.checkouts = 0
        engine = runtime.database.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _before(
            conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
        ) -> None:
            conn.info["probe_t0"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(
            conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
        ) -> None:
            self.statements.append(
                {
                    "sql": " ".join(statement.split())[:160],
                    "full_sql": statement,
                    "params": params,
                    "executemany": many,
                    "ms": round((time.perf_counter() - conn.info.pop("probe_t0")) * 1000, 3),
                }
            )

        @event.listens_for(engine.pool, "checkout")
        def _checkout(*_: Any) -> None:
            self.checkouts += 1

    def take(self) -> dict[str, Any]:
        out = {
            "count": len(self.statements),
            "pool_checkouts": self.checkouts,
            "sql_ms": round(sum(s["ms"] for s in self.statements), 3),
            "statements": [f"{s['ms']:.2f} ms  {s['sql']}" for s in self.statements],
        }
        self.statements = []
        self.checkouts = 0
        return out


async def statements(url: str, secret: str) -> dict[str, Any]:
    settings = settings_for(url)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    recorder = Recorder(runtime)
    headers = {"Authorization": f"Bearer {secret}"}
    out: dict[str, Any] = {"pre_ping": bool(runtime.database.engine.pool._pre_ping)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        calls: list[tuple[str, str, str, Any]] = [
            ("warm-up", "POST", "/v1/invoices", CREATE_BODY),
            ("create (open)", "POST", "/v1/invoices", CREATE_BODY),
            ("create (draft)", "POST", "/v1/invoices", {**CREATE_BODY, "status": "draft"}),
        ]
        last_id = None
        for label, method, path, body in calls:
            recorder.take()
            response = await client.request(method, path, json=body, headers=headers)
            response.raise_for_status()
            last_id = response.json()["id"]
            if label != "warm-up":
                out[label] = recorder.take()
        for label, path in (
            ("get", f"/v1/invoices/{last_id}"),
            ("list first page", "/v1/invoices?limit=20"),
            ("list deep page", f"/v1/invoices?limit=20&starting_after={last_id}"),
        ):
            recorder.take()
            response = await client.get(path, headers=headers)
            response.raise_for_status()
            out[label] = recorder.take()
    runtime.database.dispose()
    return out


def housekeeping(url: str) -> dict[str, Any]:
    from invoicehub.invoices.service import expire_due_invoices

    settings = settings_for(url)
    runtime = Runtime.build(settings)
    recorder = Recorder(runtime)
    session = runtime.database.session(write=True)
    started = time.perf_counter()
    try:
        expired = expire_due_invoices(session)
        seconds = time.perf_counter() - started
        plans = []
        connection = session.connection()
        for s in recorder.statements:
            if not s["sql"].startswith(("SELECT", "UPDATE", "WITH")):
                continue
            prefix = (
                "EXPLAIN QUERY PLAN "
                if runtime.database.is_sqlite
                else "EXPLAIN (ANALYZE, COSTS OFF) "
            )
            rows = connection.exec_driver_sql(prefix + s["full_sql"], s["params"]).fetchall()
            plans.append({"sql": s["sql"], "ms": s["ms"], "plan": [str(r[-1]) for r in rows]})
    finally:
        session.rollback()
        session.close()
        runtime.database.dispose()
    return {
        "job": "expire invoices",
        "seconds": round(seconds, 4),
        "expired": len(expired),
        "statements": plans,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=("statements", "housekeeping"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--secret")
    args = parser.parse_args()
    if args.probe == "statements":
        result = asyncio.run(statements(args.database_url, args.secret))
    else:
        result = housekeeping(args.database_url)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
