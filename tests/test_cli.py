"""The installed ``invoicehub`` command, run as a real subprocess against a real database.

Every run takes a second or two just to import, so each test's commands are started once,
all together, by the module fixture ``runs``; the tests then judge their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from invoicehub.config import Settings
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.migrations import current_revision_is_head
from invoicehub.models import ApiKey, Base, Organization
from tests.conftest import LiveServer, create_org, invoice_body

INVOICEHUB = Path(sys.executable).parent / "invoicehub"
KEYS = {"org_id", "public_key", "secret_key"}


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # what a failed assertion shows
        return f"invoicehub {' '.join(self.args)} -> {self.returncode}\nstdout: {self.stdout!r}\nstderr: {self.stderr!r}"


def invoicehub(*args: str, database_url: str, cwd: Path, **env: str) -> Run:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEHUB_")}
    environment["INVOICEHUB_DATABASE_URL"] = database_url
    environment.update(env)
    done = subprocess.run(
        [str(INVOICEHUB), *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(args, done.returncode, done.stdout, done.stderr)


# name -> (command line, database: "test" | "mysql" | "unmigrated", extra environment)
ERROR_CASES: dict[str, tuple[tuple[str, ...], str, dict[str, str]]] = {
    "key-create-unknown-org": (
        ("key", "create", "--org", "org_000000000000000000000000", "--json"),
        "test",
        {},
    ),
    "org-verify-unknown-org": (("org", "verify", "org_000000000000000000000000"), "test", {}),
    "org-create-mysql-url": (("org", "create", "--name", "cli-err-mysql"), "mysql", {}),
    "migrate-mysql-url": (("migrate",), "mysql", {}),
    "org-create-unmigrated-db": (
        ("org", "create", "--name", "cli-err-unmigrated"),
        "unmigrated",
        {},
    ),
    "org-create-missing-name": (("org", "create", "--verified", "--json"), "test", {}),
    "org-create-bad-setting": (
        ("org", "create", "--name", "cli-err-setting", "--json"),
        "test",
        {"INVOICEHUB_RATE_LIMIT_PER_MINUTE": "many"},
    ),
}


@dataclass
class Runs:
    created: Run  # org create --verified --json, on the test database
    plain_org_id: str  # made in-process, unverified; then key create and org verify on it
    key_created: Run
    verified: Run
    migrated_url: str
    migrate: Run  # on a new SQLite file
    errors: dict[str, Run]


@pytest.fixture(scope="module")
def runs(database_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    assert INVOICEHUB.exists(), f"the invoicehub script is not installed at {INVOICEHUB}"
    cwd = tmp_path_factory.mktemp("cli")
    plain = create_org(settings, name="cli-plain", verified=False)
    migrated_url = f"sqlite:///{cwd}/migrated-by-cli.db"
    urls = {
        "test": database_url,
        "mysql": "mysql://x",
        "unmigrated": f"sqlite:///{cwd}/unmigrated.db",
    }

    def on_test_db(*args: str) -> Callable[[], Run]:
        return lambda: invoicehub(*args, database_url=database_url, cwd=cwd)

    with ThreadPoolExecutor(max_workers=4) as pool:
        migrate = pool.submit(invoicehub, "migrate", database_url=migrated_url, cwd=cwd)
        created = pool.submit(
            on_test_db("org", "create", "--name", "CLI Org", "--verified", "--json")
        )
        key_created = pool.submit(
            on_test_db("key", "create", "--org", plain.org_id, "--name", "from cli", "--json")
        )
        verified = pool.submit(on_test_db("org", "verify", plain.org_id))
        errors = {
            name: pool.submit(invoicehub, *args, database_url=urls[db], cwd=cwd, **env)
            for name, (args, db, env) in ERROR_CASES.items()
        }
        return Runs(
            created=created.result(),
            plain_org_id=plain.org_id,
            key_created=key_created.result(),
            verified=verified.result(),
            migrated_url=migrated_url,
            migrate=migrate.result(),
            errors={name: future.result() for name, future in errors.items()},
        )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(create_db_engine(settings.database_url, pool_size=1, max_overflow=0))
    try:
        yield database
    finally:
        database.dispose()


def only_json_object(run: Run) -> dict[str, str]:
    assert run.returncode == 0, str(run)
    assert run.stderr == "", str(run)
    lines = run.stdout.splitlines()
    assert len(lines) == 1, str(run)
    payload = json.loads(lines[0])
    assert isinstance(payload, dict), str(run)
    assert set(payload) == KEYS, str(run)
    assert payload["org_id"].startswith("org_")
    assert payload["public_key"].startswith("pk_")
    assert payload["secret_key"].startswith("sk_")
    return payload


def test_org_create_json_gives_a_working_key(runs: Runs, server: LiveServer, db: Database) -> None:
    payload = only_json_object(runs.created)
    with server.client(payload["secret_key"]) as api:
        assert api.get("/v1/invoices").json()["data"] == []
        created = api.post("/v1/invoices", json=invoice_body())
        assert created.status_code == 201, created.text
    with server.client(payload["public_key"]) as api:
        assert api.get("/v1/invoices").status_code == 401
    with db.session(write=False) as session:
        organization = session.scalar(
            select(Organization).where(Organization.public_id == payload["org_id"])
        )
        assert organization is not None
        assert (organization.name, organization.verified) == ("CLI Org", True)
        keys = session.scalars(
            select(ApiKey).where(ApiKey.organization_id == organization.id)
        ).all()
        assert [k.public_key for k in keys] == [payload["public_key"]]
        assert payload["secret_key"] not in {k.secret_hash for k in keys}


def test_key_create_json_adds_a_key_to_the_same_org(
    runs: Runs, server: LiveServer, db: Database
) -> None:
    payload = only_json_object(runs.key_created)
    assert payload["org_id"] == runs.plain_org_id
    with server.client(payload["secret_key"]) as api:
        invoice = api.post("/v1/invoices", json=invoice_body())
        assert invoice.status_code == 201, invoice.text
    with db.session(write=False) as session:
        organization = session.scalar(
            select(Organization).where(Organization.public_id == runs.plain_org_id)
        )
        assert organization is not None
        names = session.scalars(
            select(ApiKey.name).where(ApiKey.organization_id == organization.id)
        ).all()
        assert sorted(names, key=str) == sorted([None, "from cli"], key=str)


def test_org_verify_marks_the_org_verified(runs: Runs, db: Database) -> None:
    run = runs.verified
    assert run.returncode == 0, str(run)
    assert run.stderr == "", str(run)
    assert runs.plain_org_id in run.stdout
    with db.session(write=False) as session:
        verified = session.scalar(
            select(Organization.verified).where(Organization.public_id == runs.plain_org_id)
        )
    assert verified is True


def test_migrate_builds_a_new_database(runs: Runs) -> None:
    run = runs.migrate
    assert run.returncode == 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr
    assert run.stdout == "database is up to date\n", str(run)
    assert current_revision_is_head(runs.migrated_url) is True
    engine = create_db_engine(runs.migrated_url, pool_size=1, max_overflow=0)
    try:
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_are_one_line_on_stderr(runs: Runs, case: str) -> None:
    run = runs.errors[case]
    assert run.returncode != 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    assert run.stdout == "", str(run)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, str(run)
    assert lines[0].strip(), str(run)


def test_error_messages_say_what_is_wrong(runs: Runs) -> None:
    expected = {
        "key-create-unknown-org": "org_000000000000000000000000",
        "org-verify-unknown-org": "org_000000000000000000000000",
        "org-create-mysql-url": "INVOICEHUB_DATABASE_URL",
        "migrate-mysql-url": "mysql",
        "org-create-unmigrated-db": "invoicehub migrate",
        "org-create-bad-setting": "INVOICEHUB_RATE_LIMIT_PER_MINUTE",
        "org-create-missing-name": "--name",
    }
    for case, fragment in expected.items():
        assert fragment in runs.errors[case].stderr, str(runs.errors[case])


def test_failed_commands_wrote_nothing(runs: Runs, db: Database) -> None:
    assert all(run.returncode != 0 for run in runs.errors.values())
    with db.session(write=False) as session:
        leaked = session.scalars(
            select(Organization.name).where(Organization.name.like("cli-err-%"))
        ).all()
    assert leaked == []
