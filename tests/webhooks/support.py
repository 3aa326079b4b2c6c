"""Helpers for the retry and worker tests: a receiver that counts the requests it holds open
at once, direct looks at the webhook tables, moving the clock to a given instant, and the
installed ``invoicehub`` command."""

from __future__ import annotations

import datetime as dt
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select as sql_select
from sqlalchemy import update
from sqlalchemy.orm import Session

from invoicehub.config import Settings
from invoicehub.kit import clock
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.webhooks.receiver import Received, Reply

INVOICEHUB = Path(sys.executable).parent / "invoicehub"


# ------------------------------------------------------------------ the database


@contextmanager
def db_session(settings: Settings, *, write: bool = False) -> Iterator[Session]:
    """A session on the test database through an engine of its own (closed afterwards)."""
    database = Database(create_db_engine(settings.database_url, pool_size=1, max_overflow=0))
    try:
        with database.session(write=write) as session:
            yield session
    finally:
        database.dispose()


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    public_id: str
    event_id: int
    event_public_id: str
    status: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    locked_until: dt.datetime | None
    lock_token: str | None


def deliveries_of(settings: Settings, endpoint_public_id: str) -> list[DeliveryRow]:
    """Every delivery of one endpoint, oldest first, read straight from the tables."""
    with db_session(settings) as session:
        rows = session.execute(
            sql_select(WebhookDelivery, Event.public_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(WebhookEndpoint.public_id == endpoint_public_id)
            .order_by(WebhookDelivery.id)
        ).all()
        return [
            DeliveryRow(
                id=d.id,
                public_id=d.public_id,
                event_id=d.event_id,
                event_public_id=event_public_id,
                status=d.status,
                attempt_count=d.attempt_count,
                next_attempt_at=d.next_attempt_at,
                locked_until=d.locked_until,
                lock_token=d.lock_token,
            )
            for d, event_public_id in rows
        ]


def attempts_of(settings: Settings, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    with db_session(settings) as session:
        found: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
        for attempt in session.scalars(
            sql_select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.id)
        ):
            found[attempt.delivery_id].append(attempt)
        return found


def endpoint_row(settings: Settings, endpoint_public_id: str) -> WebhookEndpoint:
    with db_session(settings) as session:
        endpoint = session.scalar(
            sql_select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_public_id)
        )
        assert endpoint is not None, endpoint_public_id
        return endpoint


def set_failing_since(settings: Settings, endpoint_public_id: str, when: dt.datetime) -> None:
    with db_session(settings, write=True) as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.public_id == endpoint_public_id)
            .values(failing_since=when)
        )
        session.commit()


def disable_every_endpoint(settings: Settings) -> None:
    """After a test: nothing it left behind may be claimed by the next test's sender."""
    with db_session(settings, write=True) as session:
        session.execute(update(WebhookEndpoint).values(enabled=False))
        session.commit()


# ------------------------------------------------------------------ the clock


def move_clock_to(moved_clock: list[float], when: dt.datetime) -> None:
    """Shift the ``moved_clock`` fixture so that invoicehub's clock reads ``when`` now."""
    moved_clock[0] += (when - clock.utcnow()).total_seconds()


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# ------------------------------------------------------------------ the command line


def cli_environment(database_url: str, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEHUB_")}
    environment["INVOICEHUB_DATABASE_URL"] = database_url
    environment.update(env)
    return environment


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INVOICEHUB), *args],
        env=cli_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ------------------------------------------------------------------ waiting


def wait_until(condition: Callable[[], bool], *, timeout: float = 20, every: float = 0.02) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


# ------------------------------------------------------------------ a receiver that holds


class HoldingReceiver:
    """A receiver on 127.0.0.1 that knows how many requests it is holding open at once.

    A request told to hang is held until ``release()`` or until its client goes away (the
    sender timed out and closed the connection); ``open_now`` counts the requests held right
    now and ``most_open`` the largest number ever held at the same time."""

    def __init__(self, reply: Reply | Callable[[Received], Reply] | None = None) -> None:
        self.reply = reply or Reply()
        self.requests: list[Received] = []
        self.open_now = 0
        self.most_open = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length).decode(),
                )
                reply = receiver.reply(received) if callable(receiver.reply) else receiver.reply
                with receiver.lock:
                    receiver.requests.append(received)
                    receiver.open_now += 1
                    receiver.most_open = max(receiver.most_open, receiver.open_now)
                try:
                    if reply.hang:
                        self._hold()
                finally:
                    with receiver.lock:
                        receiver.open_now -= 1
                body = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def _hold(self) -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not receiver.released.wait(0.02):
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    if readable:
                        try:
                            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                                return  # the client closed the connection
                        except OSError:
                            return

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HoldingReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self.released.set()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)
