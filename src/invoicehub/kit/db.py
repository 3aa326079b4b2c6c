"""Engine, sessions and the portable column types every model uses.

SQLite is the embedded default: WAL so readers never wait for the writer, a busy timeout so
a writer waits instead of failing, and write transactions that start with ``BEGIN IMMEDIATE``
so two writers can never both read and then collide on the upgrade to a write lock; inside
one process those write transactions also queue on a lock of ours (``WriteGate``), which
wakes the next writer the moment the previous one ends, where SQLite's busy handler would
sleep up to 100 ms between retries. PostgreSQL is the production database, reached with
psycopg 3.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, Engine, MetaData, String, TypeDecorator, create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import ClauseElement, Executable, Select, UpdateBase

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Execution option read by the SQLite "begin" hook: which kind of transaction to open.
SQLITE_BEGIN = "invoicehub_sqlite_begin"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_M = TypeVar("_M", bound=Base)


def unevented(entity: type[_M], values: Mapping[str, Any]) -> _M:
    """An instance of ``entity`` holding ``values``, built the way the ORM builds one it
    loads: straight into the instance's dict, without the constructor's attribute events
    (a line item through its constructor costs ~11 µs here, this ~1 µs).

    For objects that are only read (line items the create path wrote with a Core INSERT),
    that are made persistent with ``make_transient_to_detached`` (which then takes every
    value as the committed state), or that are added to a session as new, whose INSERT
    reads the same dict. Keys must be mapped attribute names."""
    instance: _M = entity.__mapper__.class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned as aware UTC datetimes on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use kit.clock.utcnow()")
        value = value.astimezone(dt.UTC)
        # SQLite keeps text; drop the offset so every stored value sorts the same way.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal (quantities, tax rates) kept as canonical text, portable everywhere."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        text = format(value.normalize(), "f")
        return text

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def normalize_database_url(raw: str) -> URL:
    """Accept plain URLs and pick the driver: sqlite -> pysqlite, postgresql -> psycopg 3."""
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername in ("sqlite", "sqlite+aiosqlite"):
        url = url.set(drivername="sqlite+pysqlite")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database URL scheme {url.drivername!r}: use sqlite:/// or postgresql://"
        )
    return url


def create_db_engine(
    raw_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    sqlite_busy_timeout_seconds: float = 30.0,
) -> Engine:
    url = normalize_database_url(raw_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_seconds},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
        )
        _install_sqlite_hooks(engine, busy_timeout_ms=int(sqlite_busy_timeout_seconds * 1000))
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


class WriteGate:
    """One SQLite write transaction at a time in this process, handed over without sleeping.

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps 1,
    2, 5, 10 … up to 100 ms between tries, so under concurrent writes most of the waiting is
    sleeping past the moment the lock came free (create p99 of seconds at 16 clients,
    docs/benchmarks.md). Taking this lock just before ``BEGIN IMMEDIATE`` and giving it back
    just after the COMMIT or ROLLBACK has reached SQLite makes writers of one process wait
    in line instead; writers in other processes still meet SQLite's own lock and busy
    handler. It holds no longer than SQLite's own lock does, so it adds no wait that SQLite
    did not already impose. A writer that cannot get it within the busy timeout goes on to
    SQLite's lock and its timeout as before."""

    def __init__(self, timeout_seconds: float) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None  # the DBAPI connection whose transaction holds the gate
        self._timeout = timeout_seconds

    def enter(self, dbapi_connection: Any) -> None:
        if self._holder is dbapi_connection:
            return
        if self._lock.acquire(timeout=self._timeout):
            self._holder = dbapi_connection

    def leave(self, dbapi_connection: Any) -> None:
        # Only the holder can be here with its own connection, and nobody else changes
        # _holder while the lock is held, so this test-and-release needs no other lock.
        if dbapi_connection is not None and self._holder is dbapi_connection:
            self._holder = None
            self._lock.release()

    @property
    def held(self) -> bool:
        return self._lock.locked()


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def write_gate(engine: Engine) -> WriteGate | None:
    """The SQLite engine's gate (None on PostgreSQL, whose writers do not queue this way)."""
    return _GATES.get(engine)


def _raw(connection: Any) -> Any:
    """The DBAPI connection under SQLAlchemy's pool proxy (or the connection itself)."""
    return getattr(connection, "dbapi_connection", connection)


def _install_sqlite_hooks(engine: Engine, *, busy_timeout_ms: int) -> None:
    gate = WriteGate(busy_timeout_ms / 1000)
    _GATES[engine] = gate

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so the "begin" hook decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        if mode != "IMMEDIATE":
            connection.exec_driver_sql(f"BEGIN {mode}")
            return
        raw = _raw(connection.connection)
        gate.enter(raw)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.leave(raw)
            raise

    # The gate opens after SQLite has ended the transaction, by whichever path: a commit, a
    # rollback (also the pool's reset of a connection given back mid-transaction), or the
    # connection being closed or invalidated.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            gate.leave(_raw(dbapi_connection))

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection: Any, _record: Any) -> None:
        gate.leave(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
        gate.leave(dbapi_connection)


class Database:
    """The engine plus two session factories: one for reads, one for write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        write_bind = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        self._read = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._write = sessionmaker(bind=write_bind, expire_on_commit=False, autoflush=False)

    def session(self, *, write: bool) -> Session:
        return (self._write if write else self._read)()

    def dispose(self) -> None:
        self.engine.dispose()


# ---------------------------------------------------------------- prebuilt statements


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # every bind, in the statement's order where the driver needs one
    positional: bool
    fixed: dict[str, Any]  # binds whose value is part of the statement (``values(n=1)``)
    # (position in the arguments, processor) of every bind whose type has a processor
    bind: tuple[tuple[Any, Callable[[Any], Any]], ...]
    result: tuple[Callable[[Any], Any] | None, ...]  # per returned column, or ()


class Prebuilt:
    """A hot statement compiled once per dialect and run straight on the transaction's DBAPI
    cursor. ``Session.execute`` spends ~50 µs a statement here on what a prebuilt statement
    does not need each time (its cache key, an execution context, a result object): more
    than SQLite spends running it (docs/benchmarks.md, session 6).

    What stays as ``Session.execute`` does it: the statement runs on the session's own
    connection and transaction (opened by ``session.connection()``, so SQLite's write gate
    and BEGIN IMMEDIATE apply); every bind and returned column goes through its type's
    processors (UTCDateTime, DecimalText, JSON; values written into the statement, such as
    ``values(last_value=1)``, are sent too); a driver error comes out as SQLAlchemy's
    exception class (``IntegrityError``, ``OperationalError`` …), and one that means the
    connection is gone invalidates it (the pool's pre-ping finds its siblings). When the
    engine has statement listeners (a tracer, bench/probe.py, a test counting statements),
    the statement goes through ``Connection.execute`` instead, so they get what they
    expect (an execution context, rewritten statements). What is given up: Python-side
    column defaults (give every column), ORM features (identity map, autoflush, events on
    objects), and binds computed per execution (callables, expanding IN lists), which are
    refused. For INSERTs, UPDATEs and SELECTs built from tables, not ORM entities."""

    def __init__(self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        # Per dialect object: two engines of one dialect may be set up differently.
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _Compiled] = (
            weakref.WeakKeyDictionary()
        )
        self._record: Callable[[Any], Any] | None = None

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect)
        if found is None:
            found = self._by_dialect[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self.statement
        returned: Sequence[Any] = ()
        if isinstance(statement, Select):
            returned = list(statement.selected_columns)
        elif isinstance(statement, UpdateBase):  # its RETURNING columns, if any
            returned = list(statement.exported_columns)
        compiled: Any = statement.compile(
            dialect=dialect,
            column_keys=self._column_keys,
            # Without it PostgreSQL's INSERT gets an implicit RETURNING of the primary key.
            for_executemany=isinstance(statement, UpdateBase) and not returned,
        )
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("Prebuilt takes no bind names that the driver needs escaped")
        positional = bool(dialect.positional)
        by_name = {name: param for param, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup) if positional else tuple(by_name)
        fixed: dict[str, Any] = {}
        bind: list[tuple[Any, Callable[[Any], Any]]] = []
        for at, name in enumerate(names):
            param = by_name[name]
            if param.callable is not None or param.expanding or param.literal_execute:
                raise ValueError(f"Prebuilt cannot compute the bind {name!r} per execution")
            if not param.required:
                fixed[name] = param.value
            processor = param.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                bind.append((at if positional else name, processor))
        result = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        )
        return _Compiled(compiled.string, names, positional, fixed, tuple(bind), result)

    def execute(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Runs the statement once; returns its rows (RETURNING or SELECT), processed."""
        connection = session.connection()
        if _listened(connection):
            result = connection.execute(cast(Executable, self.statement), dict(params))
            return [tuple(row) for row in result] if result.returns_rows else []
        compiled = self._compiled(connection.dialect)
        args = self._args(compiled, params)
        return self._run(connection, compiled, args, many=False)

    def records(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        """``execute`` for a SELECT, each row a named tuple of the selected columns' names
        (their labels): read by attribute as a SQLAlchemy ``Row`` is."""
        make = self._record
        if make is None:
            if not isinstance(self.statement, Select):
                raise TypeError("records() reads the rows of a SELECT")
            fields = list(self.statement.selected_columns.keys())
            record: Any = namedtuple("Record", fields)  # type: ignore[misc]
            make = self._record = record._make
        return [make(row) for row in self.execute(session, params)]

    def execute_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Runs the statement once per row, in one driver call (no RETURNING)."""
        if not rows:
            return
        connection = session.connection()
        if _listened(connection):
            connection.execute(cast(Executable, self.statement), [dict(row) for row in rows])
            return
        compiled = self._compiled(connection.dialect)
        self._run(connection, compiled, [self._args(compiled, row) for row in rows], many=True)

    @staticmethod
    def _args(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        values = {**compiled.fixed, **params} if compiled.fixed else params
        args: Any
        try:
            if compiled.positional:
                args = [values[name] for name in compiled.names]
            else:
                args = {name: values[name] for name in compiled.names}
        except KeyError as missing:
            raise StatementError(
                f"a value is required for the bind parameter {missing}",
                compiled.sql,
                dict(params),
                None,
            ) from None
        try:
            for at, process in compiled.bind:
                args[at] = process(args[at])
        except Exception as exc:
            raise StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}",
                compiled.sql,
                dict(params),
                exc,
            ) from exc
        return args

    def _run(
        self, connection: Connection, compiled: _Compiled, args: Any, *, many: bool
    ) -> list[tuple[Any, ...]]:
        dialect = connection.dialect
        fairy: Any = connection.connection
        sql = compiled.sql
        rows: list[tuple[Any, ...]] = []
        cursor = None
        try:
            cursor = fairy.cursor()
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
                if cursor.description is not None:
                    rows = cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            gone = dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
            _close_quietly(cursor)
            cursor = None
            if gone:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                sql,
                args,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=connection.engine.hide_parameters,
                connection_invalidated=gone,
                dialect=dialect,
                ismulti=many,
            ) from exc
        finally:
            _close_quietly(cursor)
        result = compiled.result
        if rows and any(result):
            return [
                tuple(
                    process(value) if process is not None else value
                    for process, value in zip(result, row, strict=True)
                )
                for row in rows
            ]
        return rows


def _listened(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _close_quietly(cursor: Any) -> None:
    # As SQLAlchemy's own cursor close: the statement's outcome is already decided.
    if cursor is not None:
        try:
            cursor.close()
        except Exception:
            log.debug("closing a cursor failed", exc_info=True)
