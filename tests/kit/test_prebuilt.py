"""``kit.db.Prebuilt`` runs hot statements on the DBAPI cursor, beside SQLAlchemy's execution
machinery: what it writes and reads must be what ``Session.execute`` writes and reads, its
errors SQLAlchemy's, and statement listeners must still see it. On both databases."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from invoicehub.api.runtime import Runtime
from invoicehub.invoices import repository as invoices
from invoicehub.kit.db import Prebuilt, write_gate
from invoicehub.kit.ids import new_public_id
from invoicehub.models import Event, Organization
from tests.conftest import OrgKeys

EVENTS = cast(Table, Event.__table__)
ORGANIZATIONS = cast(Table, Organization.__table__)
EVENT_COLUMNS = [column.key for column in EVENTS.columns if column.key != "id"]
INSERT_EVENT = Prebuilt(insert(EVENTS).returning(EVENTS.c.id), column_keys=EVENT_COLUMNS)
INSERT_EVENTS = Prebuilt(insert(EVENTS), column_keys=EVENT_COLUMNS)

# Five hours east of UTC: stored, it must become the same instant in UTC.
ALMATY = dt.timezone(dt.timedelta(hours=5))


def event_row(organization_id: int, **overrides: Any) -> dict[str, Any]:
    return {
        "public_id": new_public_id("evt"),
        "organization_id": organization_id,
        "type": "invoice.created",
        "object_type": "invoice",
        "object_id": "inv_test",
        "data": {"object": {"total": "6000.00", "lines": [1, 2], "note": "naïve ✓"}},
        "created_at": dt.datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=ALMATY),
        **overrides,
    }


STORED = text("SELECT created_at, data FROM events WHERE public_id = :public_id")


def test_a_row_is_stored_exactly_as_the_orm_stores_it(runtime: Runtime, org: OrgKeys) -> None:
    prebuilt, orm = event_row(org.internal_id), event_row(org.internal_id)
    with runtime.database.session(write=True) as session:
        [(new_id,)] = INSERT_EVENT.execute(session, prebuilt)
        session.add(Event(**orm))
        session.flush()
        # Stored form, as the database holds it (text on SQLite): processors ran the same.
        raw = session.execute(STORED, {"public_id": prebuilt["public_id"]}).one()
        raw_orm = session.execute(STORED, {"public_id": orm["public_id"]}).one()
        assert tuple(raw) == tuple(raw_orm)
        loaded = session.get(Event, new_id)
        assert loaded is not None
        assert loaded.public_id == prebuilt["public_id"]
        assert loaded.data == prebuilt["data"]
        assert loaded.created_at == prebuilt["created_at"]
        assert loaded.created_at.utcoffset() == dt.timedelta(0)
        session.rollback()


def test_returned_and_selected_columns_are_processed_like_session_execute(
    runtime: Runtime, org: OrgKeys
) -> None:
    query = select(
        ORGANIZATIONS.c.verified, ORGANIZATIONS.c.created_at, ORGANIZATIONS.c.name
    ).where(ORGANIZATIONS.c.id == bindparam("organization_id"))
    with runtime.database.session(write=False) as session:
        rows = Prebuilt(query).execute(session, {"organization_id": org.internal_id})
        expected = session.execute(query, {"organization_id": org.internal_id}).one()
    assert rows == [tuple(expected)]
    verified, created_at, _ = rows[0]
    assert verified is True  # an integer on SQLite unless processed
    assert isinstance(created_at, dt.datetime)
    assert created_at.tzinfo is not None


def test_many_rows_in_one_call(runtime: Runtime, org: OrgKeys) -> None:
    rows = [event_row(org.internal_id, type=f"test.{n}") for n in range(3)]
    with runtime.database.session(write=True) as session:
        INSERT_EVENTS.execute_many(session, rows)
        found = session.execute(
            select(Event.type).where(Event.public_id.in_([row["public_id"] for row in rows]))
        ).scalars()
        assert sorted(found) == ["test.0", "test.1", "test.2"]
        session.rollback()


def test_values_written_into_the_statement_are_sent(runtime: Runtime, org: OrgKeys) -> None:
    # The number sequence's upsert is prebuilt with last_value=1 and +1 inside it.
    period = f"t{secrets.token_hex(6)}"  # the column holds 20
    with runtime.database.session(write=True) as session:
        first = invoices.next_sequence_value(session, org.internal_id, period)
        second = invoices.next_sequence_value(session, org.internal_id, period)
        session.rollback()
    assert (first, second) == (1, 2)


def test_a_driver_error_is_sqlalchemys_and_the_session_recovers(
    runtime: Runtime, org: OrgKeys
) -> None:
    row = event_row(org.internal_id)
    with runtime.database.session(write=True) as session:
        INSERT_EVENT.execute(session, row)
        with pytest.raises(IntegrityError):
            INSERT_EVENT.execute(session, {**row, "type": "again"})  # the same public_id
        session.rollback()
        [(new_id,)] = INSERT_EVENT.execute(session, event_row(org.internal_id))
        assert isinstance(new_id, int)
        session.rollback()


def test_statement_listeners_get_a_statement_with_its_context(
    runtime: Runtime, org: OrgKeys
) -> None:
    # With a listener (a tracer, the benchmark's probe), the statement goes the usual way,
    # so the listener gets an execution context as it would for any other statement.
    seen: list[tuple[str, bool, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, many: bool
    ) -> None:
        seen.append((statement, many, context))

    engine = runtime.database.engine
    event.listen(engine, "before_cursor_execute", record)
    rows = [event_row(org.internal_id), event_row(org.internal_id)]
    try:
        with runtime.database.session(write=True) as session:
            INSERT_EVENTS.execute_many(session, rows)
            [(new_id,)] = INSERT_EVENT.execute(session, event_row(org.internal_id))
            stored = session.execute(
                select(func.count()).where(Event.public_id.in_([r["public_id"] for r in rows]))
            ).scalar_one()
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    inserts = [
        (many, context) for sql, many, context in seen if sql.startswith("INSERT INTO events")
    ]
    assert [many for many, _ in inserts] == [True, False]
    assert all(context is not None for _, context in inserts)
    assert stored == 2
    assert isinstance(new_id, int)


def test_an_insert_without_returning_asks_for_nothing_back(runtime: Runtime) -> None:
    # PostgreSQL's compiler adds RETURNING of the primary key to a one-row INSERT unless told
    # it is for many rows; every row of an executemany would then be sent back.
    dialect = runtime.database.engine.dialect
    for prebuilt in (INSERT_EVENTS, invoices._INSERT_LINES):
        assert "RETURNING" not in prebuilt._compiled(dialect).sql
    assert "RETURNING" in INSERT_EVENT._compiled(dialect).sql


def test_binds_computed_per_execution_are_refused(runtime: Runtime) -> None:
    expanding = Prebuilt(
        select(EVENTS.c.id).where(EVENTS.c.id.in_(bindparam("ids", expanding=True)))
    )
    with runtime.database.session(write=False) as session, pytest.raises(ValueError, match="ids"):
        expanding.execute(session, {"ids": [1, 2]})


def test_a_value_its_type_refuses_is_a_statement_error(runtime: Runtime, org: OrgKeys) -> None:
    naive = event_row(org.internal_id, created_at=dt.datetime(2026, 11, 22, 9, 30))
    with runtime.database.session(write=True) as session:
        with pytest.raises(StatementError, match="naive datetime"):
            INSERT_EVENT.execute(session, naive)
        session.rollback()


def test_a_lost_connection_is_invalidated(runtime: Runtime, org: OrgKeys) -> None:
    with runtime.database.session(write=True) as session:
        connection = session.connection()
        connection.connection.dbapi_connection.close()  # type: ignore[union-attr]
        with pytest.raises(DBAPIError) as raised:
            INSERT_EVENT.execute(session, event_row(org.internal_id))
        assert raised.value.connection_invalidated
        assert connection.invalidated
        session.rollback()
    # The pool hands out a working connection afterwards.
    with runtime.database.session(write=False) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    gate = write_gate(runtime.database.engine)
    assert gate is None or not gate.held


def test_it_runs_in_the_sessions_transaction(runtime: Runtime, org: OrgKeys) -> None:
    # Prebuilt goes through session.connection(), so the session's transaction (BEGIN
    # IMMEDIATE and the write gate on SQLite) is the one it runs in; rolled back, nothing
    # stays.
    period = f"t{secrets.token_hex(6)}"  # the column holds 20
    with runtime.database.session(write=True) as session:
        assert invoices.next_sequence_value(session, org.internal_id, period) == 1
        session.rollback()
    with runtime.database.session(write=False) as session:
        left = session.execute(
            text("SELECT count(*) FROM invoice_number_sequences WHERE period = :period"),
            {"period": period},
        ).scalar_one()
    assert left == 0
