"""Stores, orders and invoices synced from shops (Magento).

An import is all or nothing: every record is checked first (a bad one is named with its
field) and only then written, in the caller's one transaction. Importing the same data
again updates what changed and never duplicates, since each record is keyed by its id in
the shop. Imported invoices keep the shop's own totals and state: they are history the shop
already decided, so they write no events and send no webhooks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.orm import Session

from invoicehub.errors import NotFound, ValidationFailed
from invoicehub.invoices import repository as invoices_repository
from invoicehub.invoices.repository import InvoiceRecord
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.money import Currency, MoneyError, currency, to_minor
from invoicehub.models import Invoice, InvoiceLineItem, Order, Store
from invoicehub.orders import repository
from invoicehub.orders.schemas import ImportedInvoice, ImportedOrder, ImportedStore, ImportResult

_STATUS = {
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "cancelled": InvoiceStatus.CANCELLED,
}


def _fail(ref: str, field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{ref}: {field}: {message}", param=field, code="invalid_import_record")


def _minor(value: Any, cur: Currency, ref: str, field: str, *, allow_negative: bool = False) -> int:
    try:
        return to_minor(value, cur, allow_negative=allow_negative)
    except MoneyError as exc:
        raise _fail(ref, field, str(exc)) from exc


def _currency(code: str, ref: str) -> Currency:
    try:
        return currency(code)
    except MoneyError as exc:
        raise _fail(ref, "currency", str(exc)) from exc


@dataclass(slots=True)
class _CheckedInvoice:
    record: ImportedInvoice
    cur: Currency
    subtotal: int
    tax: int
    shipping: int
    discount: int
    total: int
    lines: list[tuple[Any, int, int, int]]  # (line, unit minor, row minor, tax minor)


def _check_invoice(record: ImportedInvoice) -> _CheckedInvoice:
    ref, cur = record.ref, _currency(record.currency, record.ref)
    if not record.increment_id.strip():
        raise _fail(ref, "increment_id", "is empty")
    subtotal = _minor(record.subtotal, cur, ref, "subtotal")
    tax = _minor(record.tax, cur, ref, "tax_amount")
    shipping = _minor(record.shipping, cur, ref, "shipping_amount")
    discount = _minor(
        abs(record.discount), cur, ref, "discount_amount"
    )  # Magento writes it negative
    total = _minor(record.grand_total, cur, ref, "grand_total")
    if subtotal + tax + shipping - discount != total:
        raise _fail(
            ref,
            "grand_total",
            f"{record.grand_total} is not subtotal + tax + shipping - discount "
            f"({record.subtotal} + {record.tax} + {record.shipping} - {abs(record.discount)})",
        )
    lines = []
    for index, line in enumerate(record.lines):
        where = f"items[{index}]"
        if line.quantity <= 0:
            raise _fail(ref, f"{where}.qty", "must be greater than 0")
        lines.append(
            (
                line,
                _minor(line.unit_price, cur, ref, f"{where}.price"),
                _minor(line.row_total, cur, ref, f"{where}.row_total"),
                _minor(line.tax, cur, ref, f"{where}.tax_amount"),
            )
        )
    return _CheckedInvoice(record, cur, subtotal, tax, shipping, discount, total, lines)


def import_records(
    session: Session,
    organization_id: int,
    *,
    source: str,
    orders: list[ImportedOrder],
    invoices: list[ImportedInvoice],
) -> ImportResult:
    # 1. Check everything before anything is written.
    checked_orders = []
    for order in orders:
        cur = _currency(order.currency, order.ref)
        checked_orders.append(
            (order, cur, _minor(order.grand_total, cur, order.ref, "grand_total"))
        )
    checked_invoices = [_check_invoice(record) for record in invoices]
    seen: set[str] = set()
    for item in checked_invoices:
        if item.record.external_id in seen:
            raise _fail(
                item.record.ref,
                "entity_id",
                f"{item.record.external_id} appears twice in this import",
            )
        seen.add(item.record.external_id)
        if repository.number_taken_by_other(
            session, organization_id, item.record.increment_id, source, item.record.external_id
        ):
            raise _fail(
                item.record.ref,
                "increment_id",
                f"{item.record.increment_id} is already an invoice number here",
            )

    # 2. Write: stores, then orders, then invoices (which point at both).
    now = clock.utcnow()
    store_ids: dict[str, int] = {}

    def store_id(store: ImportedStore | None) -> int | None:
        if store is None:
            return None
        if store.external_id not in store_ids:
            store_ids[store.external_id] = repository.upsert_store(
                session,
                organization_id,
                source,
                {
                    "external_id": store.external_id,
                    "name": store.name,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        return store_ids[store.external_id]

    orders_created = orders_updated = invoices_created = invoices_updated = 0
    latest: dt.datetime | None = None
    for order, cur, total in checked_orders:
        _, created = repository.upsert_order(
            session,
            organization_id,
            source,
            {
                "external_id": order.external_id,
                "increment_id": order.increment_id,
                "store_id": store_id(order.store),
                "state": order.state,
                "customer_email": order.customer_email.lower() if order.customer_email else None,
                "customer_name": order.customer_name,
                "currency": cur.code,
                "grand_total_minor": total,
                "items": order.items,
                "source_created_at": order.created_at,
                "source_updated_at": order.updated_at,
                "created_at": now,
                "updated_at": now,
            },
        )
        orders_created += created
        orders_updated += not created
        latest = max(filter(None, (latest, order.updated_at)), default=None)

    for item in checked_invoices:
        created = _write_invoice(
            session, organization_id, source, item, store_id(item.record.store), now
        )
        invoices_created += created
        invoices_updated += not created
        latest = max(filter(None, (latest, item.record.updated_at)), default=None)
    return ImportResult(orders_created, orders_updated, invoices_created, invoices_updated, latest)


def _write_invoice(
    session: Session,
    organization_id: int,
    source: str,
    item: _CheckedInvoice,
    store_id: int | None,
    now: dt.datetime,
) -> bool:
    record = item.record
    order = None
    if record.order_external_id is not None:
        order_id = repository.find_order_id(
            session, organization_id, source, record.order_external_id
        )
        order = repository.get_order(session, organization_id, order_id) if order_id else None
    status = _STATUS[record.state]
    invoiced_at = record.created_at or now
    paid = status == InvoiceStatus.PAID
    values: dict[str, Any] = {
        "number": record.increment_id,
        "status": status.value,
        "currency": item.cur.code,
        "customer_name": order.customer_name if order else None,
        "customer_email": order.customer_email if order else None,
        "subtotal_minor": item.subtotal,
        "discount_minor": item.discount,
        "shipping_minor": item.shipping,
        "tax_minor": item.tax,
        "total_minor": item.total,
        "amount_paid_minor": item.total if paid else 0,
        "amount_refunded_minor": 0,
        "issue_date": invoiced_at.date(),
        "due_date": invoiced_at.date(),
        "order_id": order.id if order else None,
        "store_id": store_id if store_id is not None else (order.store_id if order else None),
        "invoiced_at": invoiced_at,
        "paid_at": (record.updated_at or invoiced_at) if paid else None,
        "cancelled_at": (record.updated_at or invoiced_at)
        if status == InvoiceStatus.CANCELLED
        else None,
        "updated_at": record.updated_at or now,
    }
    lines = [
        InvoiceLineItem(
            public_id=new_public_id("li"),
            position=position,
            description=line.name,
            sku=line.sku,
            type="product",
            quantity=line.quantity,
            unit_price_minor=unit,
            tax_rate=_rate(tax, row),
            amount_minor=row,
            tax_minor=tax,
            created_at=invoiced_at,
        )
        for position, (line, unit, row, tax) in enumerate(item.lines)
    ]
    existing = repository.find_invoice(session, organization_id, source, record.external_id)
    if existing is not None:
        repository.update_invoice(session, existing.id, values)
        repository.replace_lines(session, existing.id, lines)
        return False
    invoice = Invoice(
        public_id=new_public_id("inv"),
        organization_id=organization_id,
        source=source,
        external_id=record.external_id,
        metadata_={},
        version=1,
        created_at=now,
        finalized_at=invoiced_at,
        **values,
    )
    invoices_repository.add_invoice(session, invoice, lines)
    return True


def _rate(tax: int, row: int) -> Decimal:
    """The tax rate a shop's line implies (its tax / its row total), for display only."""
    if not row or not tax:
        return Decimal(0)
    return (Decimal(tax) * 100 / Decimal(row)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------ reads


@dataclass(slots=True)
class OrderPage:
    rows: list[Order]
    total: int


def list_orders(session: Session, organization_id: int, *, page: int, per_page: int) -> OrderPage:
    rows, total = repository.list_orders(
        session, organization_id, limit=per_page, offset=(page - 1) * per_page
    )
    return OrderPage(rows, total)


def get_order_by_increment(session: Session, organization_id: int, increment_id: str) -> Order:
    order = repository.get_order_by_increment(session, organization_id, increment_id)
    if order is None:
        raise NotFound(
            f"No order found with increment ID: {increment_id}",
            param="increment_id",
            code="order_not_found",
        )
    return order


def invoices_of_order(session: Session, organization_id: int, order: Order) -> list[Invoice]:
    return repository.invoices_of_order(session, organization_id, order.id)


def orders_and_stores(
    session: Session, organization_id: int, invoices: Sequence[Invoice | InvoiceRecord]
) -> tuple[dict[int, Order], dict[int, Store]]:
    """The orders and stores a page of invoices points at, in two queries."""
    orders = repository.orders_by_ids(
        session, organization_id, sorted({i.order_id for i in invoices if i.order_id})
    )
    store_ids = {i.store_id for i in invoices if i.store_id} | {
        o.store_id for o in orders.values() if o.store_id
    }
    return orders, repository.stores_by_ids(session, organization_id, sorted(store_ids))
