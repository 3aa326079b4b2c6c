"""All invoice SQL. Every query is scoped by organization; every state change is one
conditional UPDATE … RETURNING whose WHERE clause states the transition's preconditions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Label,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached

from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.db import Prebuilt, unevented
from invoicehub.models import Invoice, InvoiceLineItem, InvoiceNumberSequence, Payment

_LINE_COLUMNS = inspect(InvoiceLineItem).column_attrs
_INVOICES = cast(Table, Invoice.__table__)
_LINE_KEY_COLUMNS = [(attr.key, attr.columns[0].key) for attr in _LINE_COLUMNS if attr.key != "id"]
_INSERT_LINES = Prebuilt(
    core_insert(cast(Table, InvoiceLineItem.__table__)),
    column_keys=[column for _, column in _LINE_KEY_COLUMNS],
)
_SEQUENCES = cast(Table, InvoiceNumberSequence.__table__)
# (attribute, column key) of every invoice column but the id, and how to get the value a
# column takes when a new invoice's values leave it out: its Python default, else NULL.
_INVOICE_FIELDS = [
    (attr.key, attr.columns[0].key) for attr in inspect(Invoice).column_attrs if attr.key != "id"
]


def _default_of(attribute: str) -> Callable[[], Any]:
    default = inspect(Invoice).column_attrs[attribute].columns[0].default
    if default is None:
        return lambda: None
    if default.is_callable:
        return lambda: default.arg(None)  # a fresh value each time (default=dict)
    return lambda: default.arg


_INVOICE_DEFAULTS = {attribute: _default_of(attribute) for attribute, _ in _INVOICE_FIELDS}


def _per_dialect(build: Any, *, column_keys: list[str] | None = None) -> dict[str, Prebuilt]:
    return {
        "sqlite": Prebuilt(build(sqlite_insert), column_keys=column_keys),
        "postgresql": Prebuilt(build(pg_insert), column_keys=column_keys),
    }


# The two writes of every create, built once per dialect: building them per call cost more
# than running them (docs/benchmarks.md, lead 8).
_INSERT_INVOICE = _per_dialect(
    lambda insert: (
        insert(_INVOICES)
        .on_conflict_do_nothing(index_elements=["organization_id", "number"])
        .returning(_INVOICES.c.id)
    ),
    column_keys=[column for _, column in _INVOICE_FIELDS],
)
_NEXT_SEQUENCE_VALUE = _per_dialect(
    lambda insert: (
        insert(_SEQUENCES)
        .values(
            organization_id=bindparam("organization_id"), period=bindparam("period"), last_value=1
        )
        .on_conflict_do_update(
            index_elements=["organization_id", "period"],
            set_={"last_value": _SEQUENCES.c.last_value + 1},
        )
        .returning(_SEQUENCES.c.last_value)
    )
)


@dataclass(frozen=True, slots=True)
class InvoiceFilters:
    statuses: tuple[str, ...] = ()
    customer_email: str | None = None
    external_order_id: str | None = None
    text: str | None = None
    created_gte: dt.datetime | None = None
    created_lt: dt.datetime | None = None
    due_gte: dt.date | None = None
    due_lte: dt.date | None = None
    today: dt.date | None = None
    source: str | None = None
    order_id: int | None = None
    invoiced_gte: dt.datetime | None = None
    invoiced_lt: dt.datetime | None = None
    viewed: bool | None = None
    overdue: bool | None = None


def _overdue(today: dt.date) -> ColumnElement[bool]:
    """``schemas.is_overdue`` in SQL: open or mid-payment, and past due or marked overdue."""
    return and_(
        Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.PROCESSING)),
        or_(Invoice.due_date < today, Invoice.overdue_at.is_not(None)),
    )


def _inline(value: str | int) -> ColumnElement[Any]:
    """A constant written into the SQL text rather than bound: a partial index is only used
    when the planner can see that the query implies its predicate, which a parameter hides
    (SQLite always; PostgreSQL once it switches a prepared statement to a generic plan)."""
    return literal(value, literal_execute=True)


def _status_among(statuses: Sequence[str]) -> ColumnElement[bool]:
    """``status IN (…)`` with constants, written ``status = '…'`` for one status: SQLite
    matches a partial index's predicate term by term and does not read ``IN ('open')`` as
    ``= 'open'``."""
    values = [_inline(str(s)) for s in statuses]
    return Invoice.status == values[0] if len(values) == 1 else Invoice.status.in_(values)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filter_clauses(organization_id: int, filters: InvoiceFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [Invoice.organization_id == organization_id]
    if filters.statuses:
        stored = [s for s in filters.statuses if s != "overdue"]
        options: list[ColumnElement[bool]] = []
        if stored:
            options.append(Invoice.status.in_(stored))
        if "overdue" in filters.statuses and filters.today is not None:
            options.append(_overdue(filters.today))
        clauses.append(or_(*options) if len(options) > 1 else options[0])
    if filters.overdue is not None and filters.today is not None:
        overdue = _overdue(filters.today)
        clauses.append(overdue if filters.overdue else ~overdue)
    if filters.viewed is not None:
        clauses.append(
            Invoice.viewed_at.is_not(None) if filters.viewed else Invoice.viewed_at.is_(None)
        )
    if filters.customer_email:
        clauses.append(
            Invoice.customer_email.ilike(f"%{_escape_like(filters.customer_email)}%", escape="\\")
        )
    if filters.external_order_id is not None:
        clauses.append(Invoice.external_order_id == filters.external_order_id)
    if filters.text:
        pattern = f"%{_escape_like(filters.text)}%"
        clauses.append(
            or_(
                Invoice.number.ilike(pattern, escape="\\"),
                Invoice.description.ilike(pattern, escape="\\"),
                Invoice.external_order_id.ilike(pattern, escape="\\"),
            )
        )
    if filters.created_gte is not None:
        clauses.append(Invoice.created_at >= filters.created_gte)
    if filters.created_lt is not None:
        clauses.append(Invoice.created_at < filters.created_lt)
    if filters.due_gte is not None:
        clauses.append(Invoice.due_date >= filters.due_gte)
    if filters.due_lte is not None:
        clauses.append(Invoice.due_date <= filters.due_lte)
    if filters.source is not None:
        clauses.append(Invoice.source == filters.source)
    if filters.order_id is not None:
        clauses.append(Invoice.order_id == filters.order_id)
    if filters.invoiced_gte is not None:
        clauses.append(Invoice.invoiced_at >= filters.invoiced_gte)
    if filters.invoiced_lt is not None:
        clauses.append(Invoice.invoiced_at < filters.invoiced_lt)
    return clauses


def next_sequence_value(session: Session, organization_id: int, period: str) -> int:
    """One atomic upsert: creates the counter at 1 or adds one, and returns the new value.
    The row stays locked until the invoice's transaction ends, so numbers are gapless."""
    statement = _NEXT_SEQUENCE_VALUE[session.get_bind().dialect.name]
    [(value,)] = statement.execute(session, {"organization_id": organization_id, "period": period})
    return int(value)


def number_exists(session: Session, organization_id: int, number: str) -> bool:
    found = session.scalar(
        select(Invoice.id).where(
            Invoice.organization_id == organization_id, Invoice.number == number
        )
    )
    return found is not None


def add_invoice(session: Session, invoice: Invoice, lines: Sequence[InvoiceLineItem]) -> None:
    session.add(invoice)
    session.flush()
    for line in lines:
        line.invoice_id = invoice.id
    session.add_all(lines)
    session.flush()


def insert_invoice(session: Session, values: dict[str, Any]) -> Invoice | None:
    """Writes a new invoice unless its number is taken in the organization (then None, and
    nothing was written): the unique constraint guards the number, with no SELECT before.
    ``values`` are keyed by attribute name; the invoice comes back as a persistent object,
    made from those values and the new id (the row holds nothing else: no column has a
    server default), so later changes to it are flushed as usual. A Core INSERT and
    ``make_transient_to_detached`` cost a third of the ORM's bulk INSERT … RETURNING."""
    fields = {
        attribute: values[attribute] if attribute in values else _INVOICE_DEFAULTS[attribute]()
        for attribute, _ in _INVOICE_FIELDS
    }
    inserted = _INSERT_INVOICE[session.get_bind().dialect.name].execute(
        session, {column: fields[attribute] for attribute, column in _INVOICE_FIELDS}
    )
    if not inserted:
        return None
    fields["id"] = inserted[0][0]
    invoice = unevented(Invoice, fields)
    make_transient_to_detached(invoice)
    session.add(invoice)
    return invoice


def insert_lines(session: Session, invoice_id: int, lines: Sequence[InvoiceLineItem]) -> None:
    """All lines in one statement (an executemany without RETURNING, which SQLite batches
    too). The line objects stay transient: they are only read afterwards."""
    if not lines:
        return
    rows = []
    for line in lines:
        line.invoice_id = invoice_id
        rows.append({column: getattr(line, key) for key, column in _LINE_KEY_COLUMNS})
    _INSERT_LINES.execute_many(session, rows)


def replace_lines(session: Session, invoice_id: int, lines: Sequence[InvoiceLineItem]) -> None:
    session.execute(delete(InvoiceLineItem).where(InvoiceLineItem.invoice_id == invoice_id))
    for line in lines:
        line.invoice_id = invoice_id
    session.add_all(lines)
    session.flush()


# Always read the row as it is now: after a conditional UPDATE lost a race, the reason
# must come from the committed row, not the session's earlier copy of it.
_GET = (
    select(Invoice)
    .where(
        Invoice.organization_id == bindparam("organization_id"),
        Invoice.public_id == bindparam("public_id"),
    )
    .execution_options(populate_existing=True)
)
_LINES_OF_ONE = (
    select(InvoiceLineItem)
    .where(InvoiceLineItem.invoice_id == bindparam("invoice_id"))
    .order_by(InvoiceLineItem.position)
)
_LINES_OF_MANY = (
    select(InvoiceLineItem)
    .where(InvoiceLineItem.invoice_id.in_(bindparam("invoice_ids", expanding=True)))
    .order_by(InvoiceLineItem.invoice_id, InvoiceLineItem.position)
)


def get(session: Session, organization_id: int, public_id: str) -> Invoice | None:
    return session.scalar(_GET, {"organization_id": organization_id, "public_id": public_id})


# Records: what the read-only paths (get, the list pages) render. A record is a result row
# (a named tuple from kit.db.Prebuilt, or a SQLAlchemy Row) whose fields are the entity's
# attribute names (``metadata_`` too), so code that reads an Invoice's or a line's
# attributes reads a record alike; it is not tracked by the session (no identity map, no
# attribute events), which for a page of twenty invoices cost a fifth of the request
# (docs/benchmarks.md, lead 12). Nothing may change one.
InvoiceRecord = Any
LineRecord = Any


def _record_of(entity: type[Any]) -> list[Label[Any]]:
    return [attr.columns[0].label(attr.key) for attr in inspect(entity).column_attrs]


_INVOICE_RECORD = _record_of(Invoice)
_GET_RECORD = Prebuilt(
    select(*_INVOICE_RECORD).where(
        _INVOICES.c.organization_id == bindparam("organization_id"),
        _INVOICES.c.public_id == bindparam("public_id"),
    )
)
_LINE_TABLE = cast(Table, InvoiceLineItem.__table__)
_LINE_RECORDS = (
    select(*_record_of(InvoiceLineItem))
    .where(_LINE_TABLE.c.invoice_id.in_(bindparam("invoice_ids", expanding=True)))
    .order_by(_LINE_TABLE.c.invoice_id, _LINE_TABLE.c.position)
)
_LINE_RECORDS_OF_ONE = Prebuilt(
    select(*_record_of(InvoiceLineItem))
    .where(_LINE_TABLE.c.invoice_id == bindparam("invoice_id"))
    .order_by(_LINE_TABLE.c.position)
)


def get_record(session: Session, organization_id: int, public_id: str) -> InvoiceRecord | None:
    params = {"organization_id": organization_id, "public_id": public_id}
    found = _GET_RECORD.records(session, params)
    return found[0] if found else None


def line_records_of(session: Session, invoice_ids: Iterable[int]) -> dict[int, list[LineRecord]]:
    def run(statement: Any, params: dict[str, Any]) -> Iterable[Any]:
        if isinstance(statement, Prebuilt):
            return statement.records(session, params)
        return session.connection().execute(statement, params)

    return _by_invoice(invoice_ids, run, _LINE_RECORDS_OF_ONE, _LINE_RECORDS)


def public_id_of(session: Session, organization_id: int, invoice_id: int) -> str | None:
    return session.scalar(
        select(Invoice.public_id).where(
            Invoice.organization_id == organization_id, Invoice.id == invoice_id
        )
    )


def get_internal_id(session: Session, organization_id: int, public_id: str) -> int | None:
    return session.scalar(
        select(Invoice.id).where(
            Invoice.organization_id == organization_id, Invoice.public_id == public_id
        )
    )


def lines_of(session: Session, invoice_ids: Iterable[int]) -> dict[int, list[InvoiceLineItem]]:
    return _by_invoice(invoice_ids, session.scalars, _LINES_OF_ONE, _LINES_OF_MANY)


def _by_invoice(
    invoice_ids: Iterable[int],
    run: Callable[[Any, dict[str, Any]], Iterable[Any]],
    of_one: Select[Any] | Prebuilt,
    of_many: Select[Any],
) -> dict[int, list[Any]]:
    """Line items (entities or records, as ``run`` reads them) grouped by invoice id, in
    position order; one invoice (a get, any action on one) needs no expanding IN."""
    ids = list(invoice_ids)
    grouped: dict[int, list[Any]] = {i: [] for i in ids}
    if not ids:
        return grouped
    if len(ids) == 1:
        rows = run(of_one, {"invoice_id": ids[0]})
    else:
        rows = run(of_many, {"invoice_ids": ids})
    for line in rows:
        grouped[line.invoice_id].append(line)
    return grouped


_FILTER_FIELDS = tuple(f.name for f in dataclasses.fields(InvoiceFilters) if f.name != "today")


def _unfiltered(filters: InvoiceFilters) -> bool:
    return all(getattr(filters, name) in (None, ()) for name in _FILTER_FIELDS)


def _plain_page(*, older_than_cursor: bool) -> Select[Any]:
    """The page most lists ask for (no filter, newest first), built once; ``list_page``
    explains its shape."""
    ids = select(Invoice.id).where(Invoice.organization_id == bindparam("organization_id"))
    if older_than_cursor:
        ids = ids.where(Invoice.id < bindparam("before_id"))
    page = ids.order_by(Invoice.id.desc()).limit(bindparam("limit")).subquery("page")
    return _records_of_page(page).order_by(_INVOICES.c.id.desc())


def _records_of_page(page: Subquery) -> Select[Any]:
    return select(*_INVOICE_RECORD).select_from(_INVOICES.join(page, _INVOICES.c.id == page.c.id))


_NEWEST_PAGE = Prebuilt(_plain_page(older_than_cursor=False))
_OLDER_PAGE = Prebuilt(_plain_page(older_than_cursor=True))


def list_page(
    session: Session,
    organization_id: int,
    filters: InvoiceFilters,
    *,
    limit: int,
    before_id: int | None = None,
    after_id: int | None = None,
    offset: int | None = None,
) -> list[InvoiceRecord]:
    """Newest first, as records (read-only). Keyset paging (``before_id``: older than; ``after_id``: newer than)
    walks the (organization_id, id) index, so page 10 000 costs what page 1 costs.

    The page's ids are chosen in a subquery that reads only ``id``, and the rows joined
    back: asked for whole rows, PostgreSQL prefers walking the primary key backwards and
    filtering on the organization, which reads every newer row of every other tenant first
    (200k of them: 36 ms for a first page, docs/benchmarks.md); asked for ids, it walks
    ix_invoices_org_id_desc alone (an index-only scan, 0.1 ms). SQLite plans both alike.
    A filter on a column outside that index can bring the primary-key walk back, so a first
    page with filters starts it at the organization's newest invoice: the bound changes no
    result (no invoice of the organization is newer) and skips the other tenants' newer rows."""
    if after_id is None and not offset and _unfiltered(filters):
        plain = _OLDER_PAGE if before_id is not None else _NEWEST_PAGE
        params = {"organization_id": organization_id, "before_id": before_id, "limit": limit}
        return plain.records(session, params)
    clauses = _filter_clauses(organization_id, filters)
    ids = select(Invoice.id).where(*clauses)
    if after_id is not None:
        ids = ids.where(Invoice.id > after_id).order_by(Invoice.id.asc())
    else:
        if before_id is not None:
            ids = ids.where(Invoice.id < before_id)
        elif len(clauses) > 1:
            newest = (
                select(func.max(Invoice.id))
                .where(Invoice.organization_id == organization_id)
                .scalar_subquery()
            )
            ids = ids.where(Invoice.id <= newest)
        ids = ids.order_by(Invoice.id.desc())
    ids = ids.limit(limit)
    if offset and after_id is None:
        ids = ids.offset(offset)
    query = _records_of_page(ids.subquery("page"))
    connection = session.connection()
    if after_id is not None:
        return list(reversed(connection.execute(query.order_by(_INVOICES.c.id.asc())).all()))
    return list(connection.execute(query.order_by(_INVOICES.c.id.desc())).all())


def count(session: Session, organization_id: int, filters: InvoiceFilters) -> int:
    clauses = _filter_clauses(organization_id, filters)
    return int(session.scalar(select(func.count()).select_from(Invoice).where(*clauses)) or 0)


def transition(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    from_statuses: Sequence[str],
    values: dict[str, Any],
    now: dt.datetime,
    extra_where: Sequence[ColumnElement[bool]] = (),
) -> Invoice | None:
    """The state machine's one move: changes the row only if it is in ``from_statuses``
    (and ``extra_where`` holds); returns the updated invoice, or None when nothing moved."""
    stmt = (
        update(Invoice)
        .where(
            Invoice.organization_id == organization_id,
            Invoice.public_id == public_id,
            Invoice.status.in_(list(from_statuses)),
            *extra_where,
        )
        .values(**values, updated_at=now, version=Invoice.version + 1)
        .returning(Invoice)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return session.scalar(stmt)


def apply_payment(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount_minor: int,
    from_statuses: Sequence[str],
    require_full: bool,
    now: dt.datetime,
) -> Invoice | None:
    """Adds a payment; the invoice becomes paid when it is covered, else returns to open."""
    new_paid = Invoice.amount_paid_minor + amount_minor
    covers = new_paid == Invoice.total_minor
    extra: list[ColumnElement[bool]] = [new_paid <= Invoice.total_minor]
    if require_full:
        extra.append(covers)
    return transition(
        session,
        organization_id,
        public_id,
        from_statuses=from_statuses,
        extra_where=extra,
        now=now,
        values={
            "amount_paid_minor": new_paid,
            "status": case((covers, InvoiceStatus.PAID.value), else_=InvoiceStatus.OPEN.value),
            "paid_at": case((covers, now), else_=Invoice.paid_at),
            "last_payment_error": None,
        },
    )


def apply_refund(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount_minor: int,
    from_statuses: Sequence[str],
    now: dt.datetime,
) -> Invoice | None:
    new_refunded = Invoice.amount_refunded_minor + amount_minor
    full = new_refunded == Invoice.amount_paid_minor
    return transition(
        session,
        organization_id,
        public_id,
        from_statuses=from_statuses,
        extra_where=[new_refunded <= Invoice.amount_paid_minor],
        now=now,
        values={
            "amount_refunded_minor": new_refunded,
            "status": case(
                (full, InvoiceStatus.REFUNDED.value), else_=InvoiceStatus.PARTIALLY_REFUNDED.value
            ),
            "refunded_at": case((full, now), else_=Invoice.refunded_at),
        },
    )


def expire_due(
    session: Session, *, now: dt.datetime, from_statuses: Sequence[str], limit: int
) -> list[Invoice]:
    """Expires, across organizations, open unpaid invoices whose deadline has passed."""
    # Stated with constants so that ix_invoices_expiry_candidates (models/invoice.py) serves it.
    due_ids = (
        select(Invoice.id)
        .where(
            _status_among(from_statuses),
            Invoice.amount_paid_minor == _inline(0),
            Invoice.expires_at.is_not(None),
            Invoice.expires_at <= now,
        )
        # The index's order: ordering by id alone makes SQLite walk the table in id order.
        .order_by(Invoice.expires_at, Invoice.id)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(Invoice)
        .where(
            Invoice.id.in_(due_ids),
            Invoice.status.in_(list(from_statuses)),
            Invoice.amount_paid_minor == 0,
        )
        .values(
            status=InvoiceStatus.EXPIRED.value,
            expired_at=now,
            updated_at=now,
            version=Invoice.version + 1,
        )
        .returning(Invoice)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return list(session.scalars(stmt).all())


def add_payment(session: Session, payment: Payment) -> Payment:
    session.add(payment)
    session.flush()
    return payment


def set_payment_status(
    session: Session,
    payment_public_id: str,
    organization_id: int,
    *,
    from_status: str,
    to_status: str,
    failure_reason: str | None = None,
) -> Payment | None:
    stmt = (
        update(Payment)
        .where(
            Payment.public_id == payment_public_id,
            Payment.organization_id == organization_id,
            Payment.status == from_status,
        )
        .values(status=to_status, failure_reason=failure_reason)
        .returning(Payment)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return session.scalar(stmt)


def get_payment(session: Session, organization_id: int, payment_public_id: str) -> Payment | None:
    return session.scalar(
        select(Payment).where(
            Payment.organization_id == organization_id, Payment.public_id == payment_public_id
        )
    )


def payments_of(session: Session, organization_id: int, invoice_id: int) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.organization_id == organization_id, Payment.invoice_id == invoice_id)
            .order_by(Payment.id)
        ).all()
    )


def mark_overdue(
    session: Session, *, today: dt.date, now: dt.datetime, from_statuses: Sequence[str], limit: int
) -> list[Invoice]:
    # Stated with constants so that ix_invoices_overdue_candidates (models/invoice.py) serves it.
    due_ids = (
        select(Invoice.id)
        .where(
            _status_among(from_statuses),
            Invoice.overdue_at.is_(None),
            Invoice.due_date < today,
        )
        # The index's order: ordering by id alone makes SQLite walk the table in id order.
        .order_by(Invoice.due_date, Invoice.id)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(Invoice)
        .where(
            Invoice.id.in_(due_ids),
            Invoice.status.in_(list(from_statuses)),
            Invoice.overdue_at.is_(None),
        )
        .values(overdue_at=now, updated_at=now, version=Invoice.version + 1)
        .returning(Invoice)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
    return list(session.scalars(stmt).all())


def stale_attempts(session: Session, *, before: dt.datetime, limit: int) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.status == "processing", Payment.created_at < before)
            .order_by(Payment.id)
            .limit(limit)
        ).all()
    )


def set_payment_link(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    values: dict[str, Any],
    now: dt.datetime,
    from_statuses: Sequence[str],
) -> Invoice | None:
    """Attaches a link only when none is usable: there is none, or it has expired."""
    return transition(
        session,
        organization_id,
        public_id,
        from_statuses=from_statuses,
        extra_where=[
            or_(Invoice.payment_link_token.is_(None), Invoice.payment_link_expires_at <= now)
        ],
        values=values,
        now=now,
    )


def get_by_link_token(session: Session, token: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.payment_link_token == token))


def lock(session: Session, organization_id: int, public_id: str) -> int | None:
    """Takes the invoice's row lock for the rest of the transaction (PostgreSQL FOR UPDATE;
    on SQLite the write transaction already excludes other writers)."""
    return session.scalar(
        select(Invoice.id)
        .where(Invoice.organization_id == organization_id, Invoice.public_id == public_id)
        .with_for_update()
    )


def processing_payment(session: Session, invoice_id: int) -> Payment | None:
    return session.scalar(
        select(Payment)
        .where(Payment.invoice_id == invoice_id, Payment.status == "processing")
        .order_by(Payment.id.desc())
        .limit(1)
    )
