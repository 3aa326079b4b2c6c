"""All report SQL. Every query is scoped by organization and aggregates in the database: rows
come back per currency and UTC day (or per bucket, per day count, per customer), never per
invoice, so a report over a million invoices moves a few hundred rows to Python.

Portability: a UTC day is ``date(ts)`` on SQLite (timestamps are stored as UTC text) and
``CAST(timezone('UTC', ts) AS DATE)`` on PostgreSQL, so the server's or session's TimeZone
setting never shifts a payment to another day. Derived keys are computed in a subquery and
grouped on in the outer query, because PostgreSQL refuses a GROUP BY expression whose bound
parameters were rendered apart from the SELECT's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from invoicehub.invoices.states import InvoiceStatus
from invoicehub.models import Invoice, Payment

SUCCEEDED = "succeeded"
REFUND = "refund"
# Money still expected: what aging and "outstanding" count.
RECEIVABLE = (InvoiceStatus.OPEN.value, InvoiceStatus.PROCESSING.value)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _utc_day(session: Session, column: Any) -> ColumnElement[dt.date]:
    if _is_postgres(session):
        return cast(func.timezone(literal_column("'UTC'"), column), Date)
    # Stored as naive UTC text; type_coerce (not CAST, which gives SQLite a number) lets the
    # Date type read the 'YYYY-MM-DD' back as a date.
    return type_coerce(func.date(column), Date)


def _days_between(session: Session, start_day: Any, end_timestamp: Any) -> ColumnElement[int]:
    """Whole UTC days from a DATE column to a timestamp's day."""
    if _is_postgres(session):
        return cast(_utc_day(session, end_timestamp) - start_day, Integer)
    return cast(func.julianday(func.date(end_timestamp)) - func.julianday(start_day), Integer)


def _as_date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


# Revenue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayMoney:
    currency: str
    day: dt.date
    payments_minor: int
    refunds_minor: int


@dataclass(frozen=True, slots=True)
class DayCount:
    currency: str
    day: dt.date
    count: int


def money_by_day(
    session: Session, organization_id: int, *, start: dt.datetime, end: dt.datetime
) -> list[DayMoney]:
    """Succeeded payments and refunds per currency and UTC day of the payment row, for
    ``start <= created_at < end``."""
    rows = (
        select(
            Payment.currency.label("currency"),
            _utc_day(session, Payment.created_at).label("day"),
            case((Payment.kind == REFUND, 0), else_=Payment.amount_minor).label("paid"),
            case((Payment.kind == REFUND, Payment.amount_minor), else_=0).label("refunded"),
        )
        .where(
            Payment.organization_id == organization_id,
            Payment.status == SUCCEEDED,
            Payment.created_at >= start,
            Payment.created_at < end,
        )
        .subquery()
    )
    stmt = (
        select(rows.c.currency, rows.c.day, func.sum(rows.c.paid), func.sum(rows.c.refunded))
        .group_by(rows.c.currency, rows.c.day)
        .order_by(rows.c.currency, rows.c.day)
    )
    return [
        DayMoney(currency, _as_date(day), int(paid or 0), int(refunded or 0))
        for currency, day, paid, refunded in session.execute(stmt)
    ]


def invoices_paid_by_day(
    session: Session, organization_id: int, *, start: dt.datetime, end: dt.datetime
) -> list[DayCount]:
    """Invoices that became paid in full (paid_at) per currency and UTC day."""
    rows = (
        select(
            Invoice.currency.label("currency"),
            _utc_day(session, Invoice.paid_at).label("day"),
        )
        .where(
            Invoice.organization_id == organization_id,
            Invoice.paid_at >= start,
            Invoice.paid_at < end,
        )
        .subquery()
    )
    stmt = (
        select(rows.c.currency, rows.c.day, func.count())
        .group_by(rows.c.currency, rows.c.day)
        .order_by(rows.c.currency, rows.c.day)
    )
    return [
        DayCount(currency, _as_date(day), int(count))
        for currency, day, count in session.execute(stmt)
    ]


# Aging --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketTotal:
    currency: str
    bucket: str
    amount_due_minor: int
    count: int


def receivables_by_age(
    session: Session, organization_id: int, *, bounds: Sequence[tuple[str, dt.date]], last: str
) -> list[BucketTotal]:
    """Amount due (total - amount_paid) of open and processing invoices per currency and
    bucket. ``bounds`` is (bucket, earliest due_date in it), newest bucket first; an
    invoice due before every bound falls in ``last``."""
    bucket = case(
        *((Invoice.due_date >= earliest, literal(name)) for name, earliest in bounds),
        else_=literal(last),
    )
    rows = (
        select(
            Invoice.currency.label("currency"),
            bucket.label("bucket"),
            (Invoice.total_minor - Invoice.amount_paid_minor).label("due"),
        )
        .where(Invoice.organization_id == organization_id, Invoice.status.in_(RECEIVABLE))
        .subquery()
    )
    stmt = select(rows.c.currency, rows.c.bucket, func.sum(rows.c.due), func.count()).group_by(
        rows.c.currency, rows.c.bucket
    )
    return [
        BucketTotal(currency, name, int(due or 0), int(count))
        for currency, name, due, count in session.execute(stmt)
    ]


# Days to pay and collection rate ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaysCount:
    currency: str
    days: int
    count: int


@dataclass(frozen=True, slots=True)
class IssuedCount:
    currency: str
    issued: int
    paid: int


def days_to_pay_histogram(
    session: Session, organization_id: int, *, start: dt.datetime, end: dt.datetime
) -> list[DaysCount]:
    """For invoices paid in full with ``start <= paid_at < end``: how many took how many days
    from issue_date to the UTC day of paid_at, per currency. One row per distinct day count,
    so the median is found in Python over a histogram, the same way on both databases."""
    rows = (
        select(
            Invoice.currency.label("currency"),
            _days_between(session, Invoice.issue_date, Invoice.paid_at).label("days"),
        )
        .where(
            Invoice.organization_id == organization_id,
            Invoice.paid_at >= start,
            Invoice.paid_at < end,
        )
        .subquery()
    )
    stmt = (
        select(rows.c.currency, rows.c.days, func.count())
        .group_by(rows.c.currency, rows.c.days)
        .order_by(rows.c.currency, rows.c.days)
    )
    return [
        DaysCount(currency, int(days), int(count))
        for currency, days, count in session.execute(stmt)
    ]


def issued_invoice_counts(
    session: Session, organization_id: int, *, first_day: dt.date, last_day: dt.date
) -> list[IssuedCount]:
    """Per currency: invoices with an issue_date in the range that were ever finalized
    (finalized_at is set; a draft, or a draft cancelled before finalizing, was never sent),
    and how many of those are paid in full (paid_at is set)."""
    stmt = (
        select(
            Invoice.currency,
            func.count(),
            func.count(Invoice.paid_at),
        )
        .where(
            Invoice.organization_id == organization_id,
            Invoice.issue_date >= first_day,
            Invoice.issue_date <= last_day,
            Invoice.finalized_at.is_not(None),
        )
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    return [
        IssuedCount(currency, int(issued), int(paid))
        for currency, issued, paid in session.execute(stmt)
    ]


# Top customers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """A customer is their lower-cased email; without one, their name; without both, one
    "unnamed" customer per currency."""

    currency: str
    email: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class PayerRow:
    key: CustomerKey
    rank: int
    display_name: str | None
    net_paid_minor: int
    invoices_paid: int


@dataclass(frozen=True, slots=True)
class Outstanding:
    amount_due_minor: int
    count: int


def _email_key() -> ColumnElement[str | None]:
    return func.lower(Invoice.customer_email)


def _name_key() -> ColumnElement[str | None]:
    return case((Invoice.customer_email.is_(None), Invoice.customer_name), else_=None)


def top_payers(
    session: Session, organization_id: int, *, start: dt.datetime, end: dt.datetime, limit: int
) -> list[PayerRow]:
    """Per currency, the ``limit`` customers whose invoices took the most money (payments -
    refunds, ``start <= created_at < end``), best first; ties go to the alphabetically first.
    Only customers who paid more than they got back are listed."""
    money = (
        select(
            Payment.currency.label("currency"),
            _email_key().label("email"),
            _name_key().label("name_key"),
            Invoice.customer_name.label("name"),
            case((Payment.kind == REFUND, -Payment.amount_minor), else_=Payment.amount_minor).label(
                "signed"
            ),
            case((Payment.kind == REFUND, None), else_=Payment.invoice_id).label("paid_invoice"),
        )
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(
            Payment.organization_id == organization_id,
            Invoice.organization_id == organization_id,
            Payment.status == SUCCEEDED,
            Payment.created_at >= start,
            Payment.created_at < end,
        )
        .subquery()
    )
    net = func.sum(money.c.signed)
    per_customer = (
        select(
            money.c.currency,
            money.c.email,
            money.c.name_key,
            func.max(money.c.name).label("name"),
            net.label("net"),
            func.count(distinct(money.c.paid_invoice)).label("invoices"),
        )
        .group_by(money.c.currency, money.c.email, money.c.name_key)
        .having(net > 0)
        .subquery()
    )
    rank = (
        func.row_number()
        .over(
            partition_by=per_customer.c.currency,
            order_by=(
                per_customer.c.net.desc(),
                func.coalesce(per_customer.c.email, ""),
                func.coalesce(per_customer.c.name_key, ""),
            ),
        )
        .label("rank")
    )
    ranked = select(per_customer, rank).subquery()
    stmt = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.currency, ranked.c.rank)
    return [
        PayerRow(
            key=CustomerKey(row.currency, row.email, row.name_key),
            rank=int(row.rank),
            display_name=row.name,
            net_paid_minor=int(row.net),
            invoices_paid=int(row.invoices),
        )
        for row in session.execute(stmt)
    ]


def outstanding_of(
    session: Session, organization_id: int, customers: Sequence[CustomerKey]
) -> dict[CustomerKey, Outstanding]:
    """What each of ``customers`` owes now on open and processing invoices in that currency.

    The filter is a few IN lists (cheap on both databases, unlike one OR branch per
    customer); groups of a wanted email in an unwanted currency are dropped afterwards."""
    if not customers:
        return {}
    emails = sorted({key.email for key in customers if key.email is not None})
    names = sorted({key.name for key in customers if key.email is None and key.name is not None})
    who: list[ColumnElement[bool]] = []
    if emails:
        who.append(_email_key().in_(emails))
    if names:
        who.append(and_(Invoice.customer_email.is_(None), Invoice.customer_name.in_(names)))
    if any(key.email is None and key.name is None for key in customers):
        who.append(and_(Invoice.customer_email.is_(None), Invoice.customer_name.is_(None)))
    rows = (
        select(
            Invoice.currency.label("currency"),
            _email_key().label("email"),
            _name_key().label("name_key"),
            (Invoice.total_minor - Invoice.amount_paid_minor).label("due"),
        )
        .where(
            Invoice.organization_id == organization_id,
            Invoice.status.in_(RECEIVABLE),
            Invoice.currency.in_(sorted({key.currency for key in customers})),
            or_(*who),
        )
        .subquery()
    )
    stmt = select(
        rows.c.currency, rows.c.email, rows.c.name_key, func.sum(rows.c.due), func.count()
    ).group_by(rows.c.currency, rows.c.email, rows.c.name_key)
    wanted = set(customers)
    found = (
        (CustomerKey(currency, email, name), Outstanding(int(due or 0), int(count)))
        for currency, email, name, due, count in session.execute(stmt)
    )
    return {key: owed for key, owed in found if key in wanted}
