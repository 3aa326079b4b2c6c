"""The bare baseline that bench_core.py measures beside invoicehub.

A raw ASGI callable (no Starlette routing, no FastAPI, no pydantic, no SQLAlchemy) served by
the same server as invoicehub (uvicorn, same defaults: one process, asyncio loop, h11,
proxy headers on) on the same drivers (sqlite3 / psycopg 3), against the schema that
invoicehub's migrations built, in an organization of its own. It answers the three
benchmarked calls with the same JSON shapes and does the same database work a careful
hand-written service would:

* every request authenticates its key: SHA-256 of the secret, one indexed SELECT joining
  api_keys and organizations, constant-time compare;
* ``POST /v1/invoices`` (one write transaction, ``BEGIN IMMEDIATE`` on SQLite like
  invoicehub): the invoice-number counter upsert, the invoice row (created directly as
  ``open``), the line rows (one executemany) and one ``invoice.created`` event row whose
  data is the invoice's JSON, then the event's webhook outbox lookup (enabled endpoints of
  the organization; when the schema has webhooks); money is computed with ``Decimal`` and
  rounded half-up;
* ``GET /v1/invoices/{id}``: the invoice row and its lines (two indexed SELECTs);
* ``GET /v1/invoices?limit=&starting_after=``: the cursor's id (when given) and one keyset
  page over (organization_id, id), newest first.

Database calls block, so like invoicehub's sync endpoints they run in anyio's worker
threads, each taking a connection from a small LIFO pool. SQLite connections get the
same pragmas as invoicehub's (WAL, synchronous=NORMAL, foreign_keys, busy_timeout 30 s).
Only what the benchmark sends is supported (no filters, no Idempotency-Key, the default
number pattern); this is a yardstick, not a second implementation.

Run: python bench/baseline_app.py --database-url URL --port P  (binds 127.0.0.1 only)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import queue
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import psycopg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3}
DEFAULT_PATTERN = "INV-{YYYY}-{seq:04}"
HUNDRED = Decimal(100)

INVOICE_COLUMNS = (
    "id, public_id, number, status, currency, customer_name, customer_email, customer_phone, "
    "customer_telegram_user_id, title, description, notes, payment_terms, external_order_id, "
    "metadata, subtotal_minor, discount_minor, shipping_minor, tax_minor, total_minor, "
    "amount_paid_minor, amount_refunded_minor, issue_date, due_date, expires_at, "
    "last_payment_error, created_at, updated_at, finalized_at, viewed_at, paid_at, "
    "cancelled_at, expired_at, refunded_at"
)
LINE_COLUMNS = (
    "public_id, description, sku, type, quantity, unit_price_minor, tax_rate, amount_minor, "
    "tax_minor"
)


class HttpProblem(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "type": "authentication_error" if status == 401 else "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
            }
        }


# ---------------------------------------------------------------- database access


class Database:
    """Connections, placeholders and value conversions for one of the two drivers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        if self.is_sqlite:
            self.path = url.split(":///", 1)[1]
        elif not url.startswith("postgresql://"):
            raise SystemExit("database URL must be sqlite:///path or postgresql://…")
        self.json_param = "?" if self.is_sqlite else "%s::json"
        with self.transaction(write=False) as conn:
            found = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'webhook_endpoints'"
                if self.is_sqlite
                else "SELECT to_regclass('webhook_endpoints')"
            ).fetchone()
        self.has_webhooks = bool(found and found[0])

    def sql(self, text: str) -> str:
        return text if self.is_sqlite else text.replace("?", "%s")

    def _connect(self) -> Any:
        if self.is_sqlite:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        return psycopg.connect(self.url, autocommit=False)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        """One connection from the pool, one transaction: committed unless an error escapes."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        if self.is_sqlite:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            try:
                if self.is_sqlite:
                    conn.execute("ROLLBACK")
                else:
                    conn.rollback()
            except Exception:
                conn.close()
                raise
            self._idle.put(conn)
            raise
        if self.is_sqlite:
            conn.execute("COMMIT")
        else:
            conn.commit()
        self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    # Values: SQLite keeps text (as SQLAlchemy writes it), PostgreSQL gets native types.

    def ts_in(self, value: dt.datetime) -> Any:
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.is_sqlite else value

    def date_in(self, value: dt.date) -> Any:
        return value.isoformat() if self.is_sqlite else value


def ts_out(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T") + "Z"
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def date_out(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def money(minor: int, exponent: int) -> str:
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}"


def half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------- the service


class Baseline:
    def __init__(self, database: Database) -> None:
        self.db = database

    # --- auth

    def _auth(self, conn: Any, headers: dict[bytes, bytes]) -> tuple[Any, ...]:
        raw = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = raw.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith("sk_"):
            raise HttpProblem(401, "invalid_api_key", "no API key: send Authorization: Bearer sk_…")
        expected = hashlib.sha256(secret.encode()).hexdigest()
        row = conn.execute(
            self.db.sql(
                "SELECT k.secret_hash, o.id, o.default_currency, o.invoice_number_pattern, "
                "o.default_due_days FROM api_keys k JOIN organizations o "
                "ON o.id = k.organization_id WHERE k.secret_hash = ? AND k.revoked_at IS NULL"
            ),
            (expected,),
        ).fetchone()
        if row is None or not hmac.compare_digest(row[0], expected):
            raise HttpProblem(401, "invalid_api_key", "invalid API key")
        return tuple(row[1:])

    # --- shaping

    def _invoice_json(
        self, row: Any, lines: list[dict[str, Any]] | None, today: str
    ) -> dict[str, Any]:
        exp = EXPONENTS.get(row[4], 2)
        metadata = row[14]
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        due = date_out(row[23])
        return {
            "id": row[1],
            "object": "invoice",
            "number": row[2],
            "status": row[3],
            "overdue": row[3] == "open" and due < today,
            "currency": row[4],
            "customer": {
                "name": row[5],
                "email": row[6],
                "phone": row[7],
                "telegram_user_id": int(row[8]) if row[8] else None,
            },
            "line_items": lines,
            "subtotal": money(row[15], exp),
            "discount": money(row[16], exp),
            "shipping": money(row[17], exp),
            "tax": money(row[18], exp),
            "total": money(row[19], exp),
            "amount_paid": money(row[20], exp),
            "amount_refunded": money(row[21], exp),
            "amount_due": money(row[19] - row[20], exp),
            "issue_date": date_out(row[22]),
            "due_date": due,
            "expires_at": ts_out(row[24]),
            "title": row[9],
            "description": row[10],
            "notes": row[11],
            "payment_terms": row[12],
            "external_order_id": row[13],
            "metadata": metadata or {},
            "last_payment_error": row[25],
            "created_at": ts_out(row[26]),
            "updated_at": ts_out(row[27]),
            "finalized_at": ts_out(row[28]),
            "viewed_at": ts_out(row[29]),
            "paid_at": ts_out(row[30]),
            "cancelled_at": ts_out(row[31]),
            "expired_at": ts_out(row[32]),
            "refunded_at": ts_out(row[33]),
        }

    @staticmethod
    def _line_json(line: Any, exp: int) -> dict[str, Any]:
        return {
            "id": line[0],
            "description": line[1],
            "sku": line[2],
            "type": line[3],
            "quantity": line[4],
            "unit_price": money(line[5], exp),
            "tax_rate": line[6],
            "amount": money(line[7], exp),
            "tax": money(line[8], exp),
        }

    # --- reads

    def get_invoice(self, headers: dict[bytes, bytes], public_id: str) -> tuple[int, Any]:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        with self.db.transaction(write=False) as conn:
            org_id = self._auth(conn, headers)[0]
            row = conn.execute(
                self.db.sql(
                    f"SELECT {INVOICE_COLUMNS} FROM invoices "
                    "WHERE organization_id = ? AND public_id = ?"
                ),
                (org_id, public_id),
            ).fetchone()
            if row is None:
                raise HttpProblem(404, "invoice_not_found", f"no invoice {public_id}", "id")
            lines = conn.execute(
                self.db.sql(
                    f"SELECT {LINE_COLUMNS} FROM invoice_line_items "
                    "WHERE invoice_id = ? ORDER BY position"
                ),
                (row[0],),
            ).fetchall()
        exp = EXPONENTS.get(row[4], 2)
        return 200, self._invoice_json(row, [self._line_json(li, exp) for li in lines], today)

    def list_invoices(self, headers: dict[bytes, bytes], query: bytes) -> tuple[int, Any]:
        args = parse_qs(query.decode("latin-1"))
        try:
            limit = int(args.get("limit", ["10"])[0])
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise HttpProblem(422, "validation_error", "limit: must be 1 to 100", "limit")
        cursor = args.get("starting_after", [None])[0]
        today = dt.datetime.now(dt.UTC).date().isoformat()
        with self.db.transaction(write=False) as conn:
            org_id = self._auth(conn, headers)[0]
            if cursor is None:
                rows = conn.execute(
                    self.db.sql(
                        f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE organization_id = ? "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (org_id, limit + 1),
                ).fetchall()
            else:
                before = conn.execute(
                    self.db.sql(
                        "SELECT id FROM invoices WHERE organization_id = ? AND public_id = ?"
                    ),
                    (org_id, cursor),
                ).fetchone()
                if before is None:
                    raise HttpProblem(
                        422,
                        "validation_error",
                        f"no invoice {cursor} to page from",
                        "starting_after",
                    )
                rows = conn.execute(
                    self.db.sql(
                        f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE organization_id = ? "
                        "AND id < ? ORDER BY id DESC LIMIT ?"
                    ),
                    (org_id, before[0], limit + 1),
                ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return 200, {
            "object": "list",
            "data": [self._invoice_json(r, None, today) for r in rows],
            "has_more": has_more,
            "next_starting_after": rows[-1][1] if rows and has_more else None,
            "page": None,
            "per_page": None,
            "total": None,
        }

    # --- create

    def create_invoice(self, headers: dict[bytes, bytes], body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body)
            items = data["line_items"]
            if not isinstance(items, list) or not 1 <= len(items) <= 500:
                raise ValueError("line_items must hold 1 to 500 lines")
            customer = data.get("customer") or {}
            status = data.get("status", "draft")
            if status not in ("draft", "open"):
                raise ValueError("status must be draft or open")
        except (ValueError, KeyError, TypeError) as exc:
            raise HttpProblem(422, "validation_error", f"invalid body: {exc}") from exc
        now = dt.datetime.now(dt.UTC)
        today = now.date()

        with self.db.transaction(write=True) as conn:
            org_id, default_currency, pattern, due_days = self._auth(conn, headers)
            code = str(data.get("currency") or default_currency).upper()
            exp = EXPONENTS.get(code, 2)
            if pattern != DEFAULT_PATTERN:
                raise HttpProblem(422, "unsupported", "the baseline knows one number pattern")
            lines = []
            try:
                for position, item in enumerate(items):
                    unit = Decimal(str(item["unit_price"])).scaleb(exp)
                    quantity = Decimal(str(item.get("quantity", 1)))
                    rate = Decimal(str(item.get("tax_rate", 0)))
                    if unit != unit.to_integral_value() or unit < 0 or quantity <= 0:
                        raise ValueError(f"line_items.{position}: bad amount")
                    if not 0 <= rate <= 100:
                        raise ValueError(f"line_items.{position}.tax_rate: 0 to 100")
                    amount = half_up(quantity * unit)
                    lines.append(
                        (
                            f"li_{secrets.token_hex(12)}",
                            position,
                            str(item["description"]),
                            item.get("sku"),
                            item.get("type", "service"),
                            format(quantity.normalize(), "f"),
                            int(unit),
                            format(rate.normalize(), "f"),
                            amount,
                            half_up(Decimal(amount) * rate / HUNDRED),
                        )
                    )
            except (InvalidOperation, ValueError, KeyError, TypeError) as exc:
                raise HttpProblem(422, "validation_error", str(exc)) from exc
            subtotal = sum(line[8] for line in lines)
            tax = sum(line[9] for line in lines)
            seq = conn.execute(
                self.db.sql(
                    "INSERT INTO invoice_number_sequences (organization_id, period, last_value) "
                    "VALUES (?, ?, 1) ON CONFLICT (organization_id, period) DO UPDATE SET "
                    "last_value = invoice_number_sequences.last_value + 1 RETURNING last_value"
                ),
                (org_id, f"{today.year:04d}"),
            ).fetchone()[0]
            public_id = f"inv_{secrets.token_hex(12)}"
            number = f"INV-{today.year:04d}-{seq:04d}"
            email = customer.get("email")
            due = today + dt.timedelta(days=due_days)
            stamp = self.db.ts_in(now)
            finalized = stamp if status == "open" else None
            invoice_id = conn.execute(
                self.db.sql(
                    "INSERT INTO invoices (public_id, organization_id, number, status, currency, "
                    "customer_name, customer_email, metadata, subtotal_minor, discount_minor, "
                    "shipping_minor, tax_minor, total_minor, amount_paid_minor, "
                    "amount_refunded_minor, issue_date, due_date, version, created_at, "
                    f"updated_at, finalized_at) VALUES (?, ?, ?, ?, ?, ?, ?, {self.db.json_param}, "
                    "?, 0, 0, ?, ?, 0, 0, ?, ?, 1, ?, ?, ?) RETURNING id"
                ),
                (
                    public_id,
                    org_id,
                    number,
                    status,
                    code,
                    customer.get("name"),
                    email.lower() if email else None,
                    "{}",
                    subtotal,
                    tax,
                    subtotal + tax,
                    self.db.date_in(today),
                    self.db.date_in(due),
                    stamp,
                    stamp,
                    finalized,
                ),
            ).fetchone()[0]
            cur = conn.cursor()
            cur.executemany(
                self.db.sql(
                    "INSERT INTO invoice_line_items (public_id, invoice_id, position, "
                    "description, sku, type, quantity, unit_price_minor, tax_rate, "
                    "amount_minor, tax_minor, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [(line[0], invoice_id, *line[1:], stamp) for line in lines],
            )
            cur.close()
            row = (
                invoice_id,
                public_id,
                number,
                status,
                code,
                customer.get("name"),
                email.lower() if email else None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                {},
                subtotal,
                0,
                0,
                tax,
                subtotal + tax,
                0,
                0,
                today.isoformat(),
                due.isoformat(),
                None,
                None,
                now,
                now,
                now if status == "open" else None,
                None,
                None,
                None,
                None,
                None,
            )
            shaped_lines = [self._line_json((line[0], *line[2:]), exp) for line in lines]
            invoice = self._invoice_json(row, shaped_lines, today.isoformat())
            event_id = conn.execute(
                self.db.sql(
                    "INSERT INTO events (public_id, organization_id, type, object_type, "
                    f"object_id, data, created_at) VALUES (?, ?, ?, ?, ?, {self.db.json_param}, ?) "
                    "RETURNING id"
                ),
                (
                    f"evt_{secrets.token_hex(12)}",
                    org_id,
                    "invoice.created",
                    "invoice",
                    public_id,
                    json.dumps({"object": invoice}, separators=(",", ":")),
                    stamp,
                ),
            ).fetchone()[0]
            if self.db.has_webhooks:
                self._fan_out(conn, org_id, event_id)
        return 201, invoice

    def _fan_out(self, conn: Any, org_id: int, event_id: int) -> None:
        """The event's outbox: one delivery per enabled endpoint. The benchmark configures
        no endpoints, so this is the lookup alone, as it is in invoicehub."""
        endpoints = conn.execute(
            self.db.sql(
                "SELECT id, enabled_events FROM webhook_endpoints "
                "WHERE organization_id = ? AND enabled = ?"
            ),
            (org_id, True),
        ).fetchall()
        if endpoints:
            raise HttpProblem(500, "unsupported", "the baseline does not deliver webhooks")

    def healthz(self) -> tuple[int, Any]:
        with self.db.transaction(write=False) as conn:
            conn.execute("SELECT 1").fetchone()
        return 200, {"status": "ok"}


# ---------------------------------------------------------------- ASGI


class BaselineApp:
    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.service = Baseline(self.db)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        path = scope["path"]
        headers = dict(scope["headers"])
        run = anyio.to_thread.run_sync
        try:
            if path == "/v1/invoices" and method == "POST":
                body = await read_body(receive)
                status, payload = await run(self.service.create_invoice, headers, body)
            elif path == "/v1/invoices" and method == "GET":
                status, payload = await run(
                    self.service.list_invoices, headers, scope["query_string"]
                )
            elif path.startswith("/v1/invoices/") and method == "GET" and path.count("/") == 3:
                status, payload = await run(self.service.get_invoice, headers, path[13:])
            elif path == "/healthz" and method == "GET":
                status, payload = await run(self.service.healthz)
            else:
                raise HttpProblem(404, "not_found", "Not Found")
        except HttpProblem as problem:
            status, payload = problem.status, problem.body
        body_bytes = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body_bytes)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body_bytes, "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        chunks.extend(message.get("body", b""))
        if not message.get("more_body", False):
            return bytes(chunks)


def app_from_environment() -> BaselineApp:
    """The app for each of several worker processes (uvicorn needs an import string then)."""
    return BaselineApp(os.environ["BASELINE_DATABASE_URL"])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--workers", type=int, default=1, help="as invoicehub serve --workers")
    args = parser.parse_args()
    # Same server settings as `invoicehub serve`: uvicorn.run, proxy headers, N workers.
    if args.workers > 1:
        # As `invoicehub serve --workers N` does it, TCP_NODELAY fix included.
        from uvicorn.supervisors import Multiprocess

        from invoicehub.api.serving import tcp_listener

        os.environ["BASELINE_DATABASE_URL"] = args.database_url
        config = uvicorn.Config(
            "baseline_app:app_from_environment",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            proxy_headers=True,
        )
        Multiprocess(config, sockets=[tcp_listener(config)]).run()
        return
    uvicorn.run(
        BaselineApp(args.database_url),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        log_level=args.log_level,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
