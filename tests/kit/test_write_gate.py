"""SQLite write transactions of one process queue on ``WriteGate`` (kit/db.py) instead of
sleeping in SQLite's busy handler. The gate must be held exactly while SQLite's write lock
is: from ``BEGIN IMMEDIATE`` until the COMMIT or ROLLBACK has ended, by every path out.

These run on a SQLite file of their own whichever database the suite tests, since the gate
exists only for SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from invoicehub.kit.db import Database, WriteGate, create_db_engine, write_gate


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = create_db_engine(f"sqlite:///{tmp_path}/gate.db", pool_size=8, max_overflow=8)
    with built.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter (id, value) VALUES (1, 0)"))
    yield built
    built.dispose()


def gate_of(engine: Engine) -> WriteGate:
    gate = write_gate(engine)
    assert gate is not None
    return gate


def test_postgresql_engines_have_no_gate() -> None:
    # Creating an engine does not connect, so this needs no server.
    engine = create_db_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    assert write_gate(engine) is None


def test_held_from_the_first_statement_of_a_write_until_commit(engine: Engine) -> None:
    database = Database(engine)
    gate = gate_of(engine)
    with database.session(write=True) as session:
        assert not gate.held  # nothing has been sent yet
        session.execute(text("UPDATE counter SET value = value + 1"))
        assert gate.held
        session.commit()
        assert not gate.held
    with database.session(write=False) as session:
        assert session.execute(text("SELECT value FROM counter")).scalar_one() == 1
        assert not gate.held  # reads never take it


@pytest.mark.parametrize("ending", ["rollback", "close", "error then rollback"])
def test_every_way_out_of_a_write_opens_the_gate(engine: Engine, ending: str) -> None:
    database = Database(engine)
    gate = gate_of(engine)
    session = database.session(write=True)
    session.execute(text("UPDATE counter SET value = value + 1"))
    assert gate.held
    if ending == "rollback":
        session.rollback()
    elif ending == "close":
        session.close()
    else:
        with pytest.raises(IntegrityError):
            session.execute(text("INSERT INTO counter (id, value) VALUES (1, 0)"))
        session.rollback()
    assert not gate.held
    session.close()
    with database.session(write=False) as reader:
        assert reader.execute(text("SELECT value FROM counter")).scalar_one() == 0


def test_a_begin_that_fails_opens_the_gate(tmp_path: Path, engine: Engine) -> None:
    """Another process (here: another engine) holds SQLite's write lock; this engine's
    writer gets the gate, then BEGIN IMMEDIATE times out; the gate must not stay shut."""
    url = f"sqlite:///{tmp_path}/gate.db"
    impatient = create_db_engine(url, sqlite_busy_timeout_seconds=0.05)
    other = Database(engine).session(write=True)
    try:
        other.execute(text("UPDATE counter SET value = value + 1"))
        session = Database(impatient).session(write=True)
        with pytest.raises(OperationalError, match="locked"):
            session.execute(text("UPDATE counter SET value = value + 1"))
        session.close()
        assert not gate_of(impatient).held
    finally:
        other.rollback()
        other.close()
        impatient.dispose()


def test_concurrent_writers_of_one_process_take_turns_and_lose_nothing(engine: Engine) -> None:
    """Eight threads each add 1 fifty times, reading then writing in one transaction; with
    one writer at a time nothing is lost and nobody meets 'database is locked'."""
    database = Database(engine)
    inside = 0
    most_inside = 0
    count_lock = threading.Lock()
    errors: list[BaseException] = []

    def writer() -> None:
        nonlocal inside, most_inside
        try:
            for _ in range(50):
                with database.session(write=True) as session:
                    value = session.execute(
                        text("SELECT value FROM counter WHERE id = 1")
                    ).scalar_one()
                    with count_lock:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})
                    with count_lock:
                        inside -= 1
                    session.commit()
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert most_inside == 1
    assert not gate_of(engine).held
    with database.session(write=False) as session:
        assert session.execute(text("SELECT value FROM counter")).scalar_one() == 400
