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
import threading
import weakref
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, MetaData, String, TypeDecorator, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

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
