"""Test harness: a real database built by the migrations, a real server on 127.0.0.1.

Pick the database with INVOICEHUB_TEST_DB=sqlite (default) or postgres. PostgreSQL comes
from INVOICEHUB_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
each run makes its own database there and drops it at the end. When PostgreSQL was asked
for and cannot be reached, the run fails; it never silently skips.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import hypothesis
import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from invoicehub.api.runtime import Runtime
from invoicehub.app import create_app
from invoicehub.auth.service import create_api_key
from invoicehub.config import Settings
from invoicehub.kit import clock
from invoicehub.migrations import upgrade_to_head
from invoicehub.orgs.service import create_organization

# No timing assertions in tests, hypothesis's included: its per-example deadline and its
# "input generation is slow" check fail on a slow or busy machine for reasons that say
# nothing about the code (drawing six 50-field invoices took 1.2 s on a loaded 2-core
# machine). Every property still runs all of its examples.
hypothesis.settings.register_profile(
    "invoicehub",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("invoicehub")

TEST_DB = os.environ.get("INVOICEHUB_TEST_DB", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "INVOICEHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_report_header() -> str:
    return f"invoicehub test database: {TEST_DB}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"invoicehub_test_{secrets.token_hex(6)}"
    try:
        conn = psycopg.connect(
            admin.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"INVOICEHUB_TEST_DB=postgres but PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}",
            pytrace=False,
        )
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(
            admin.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(directory: str) -> Iterator[str]:
    """A new, migrated database of the kind this run tests."""
    if TEST_DB == "postgres":
        with fresh_postgres_database() as url:
            upgrade_to_head(url)
            yield url
    elif TEST_DB == "sqlite":
        url = f"sqlite:///{directory}/invoicehub-{secrets.token_hex(4)}.db"
        upgrade_to_head(url)
        yield url
    else:
        pytest.fail(
            f"INVOICEHUB_TEST_DB must be sqlite or postgres, not {TEST_DB!r}", pytrace=False
        )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(str(tmp_path_factory.mktemp("db"))) as url:
        yield url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        # General tests make many quick calls with one key; the limit tests set their own.
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst_per_second": 100_000,
        "public_url": "http://127.0.0.1:8000",
        # Receivers in tests listen on 127.0.0.1; tests that check refusals turn this off.
        "webhook_allow_private": True,
        # Tests drive the worker themselves, so nothing is sent behind their back.
        "run_worker_in_serve": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.build(settings)
        self.app = create_app(settings, runtime=self.runtime)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def client(self, secret_key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret_key}"} if secret_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Settings, database and limiter as a server process builds them, for tests that call
    services directly."""
    built = Runtime.build(settings)
    try:
        yield built
    finally:
        built.database.dispose()


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        yield live


@dataclass(frozen=True)
class OrgKeys:
    org_id: str
    internal_id: int
    public_key: str
    secret_key: str


def create_org(
    settings: Settings, *, name: str = "Test Org", verified: bool = True, **options: object
) -> OrgKeys:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            organization = create_organization(
                session, name=name, settings=settings, verified=verified, **options
            )  # type: ignore[arg-type]
            issued = create_api_key(session, organization)
            session.commit()
            return OrgKeys(
                organization.public_id, organization.id, issued.key.public_key, issued.secret_key
            )
    finally:
        runtime.database.dispose()


@pytest.fixture
def org(settings: Settings) -> OrgKeys:
    """A fresh organization per test, so tests never see each other's invoices."""
    return create_org(settings)


@pytest.fixture
def api(server: LiveServer, org: OrgKeys) -> Iterator[httpx.Client]:
    with server.client(org.secret_key) as client:
        yield client


@pytest.fixture
def moved_clock() -> Iterator[list[float]]:
    """Shift invoicehub's clock: append/set offset seconds in the returned list."""
    import datetime as dt

    offset = [0.0]
    clock.set_clock(lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset[0]))
    try:
        yield offset
    finally:
        clock.set_clock(None)


def invoice_body(**overrides: object) -> dict[str, object]:
    """The 004 example: 1 x 5000 at 10% and 1 x 500 at 0% -> tax 500, total 6000."""
    body: dict[str, object] = {
        "currency": "USD",
        "customer": {"name": "John Smith", "email": "client@example.com"},
        "line_items": [
            {
                "description": "Website Development",
                "quantity": 1,
                "unit_price": "5000",
                "type": "service",
                "tax_rate": 10,
            },
            {
                "description": "Hosting Setup",
                "quantity": 1,
                "unit_price": "500",
                "type": "fee",
                "tax_rate": 0,
            },
        ],
    }
    body.update(overrides)
    return body
