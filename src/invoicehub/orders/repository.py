"""SQL for stores, orders and the invoices synced from shops; all scoped by organization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from invoicehub.models import Invoice, InvoiceLineItem, Order, Store


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def upsert_store(
    session: Session, organization_id: int, source: str, values: dict[str, Any]
) -> int:
    insert = _insert(session)
    stmt = (
        insert(Store)
        .values(organization_id=organization_id, source=source, **values)
        .on_conflict_do_update(
            index_elements=["organization_id", "source", "external_id"],
            set_={"name": values["name"], "updated_at": values["updated_at"]},
        )
        .returning(Store.id)
    )
    return int(session.execute(stmt).scalar_one())


def find_order_id(
    session: Session, organization_id: int, source: str, external_id: str
) -> int | None:
    return session.scalar(
        select(Order.id).where(
            Order.organization_id == organization_id,
            Order.source == source,
            Order.external_id == external_id,
        )
    )


def upsert_order(
    session: Session, organization_id: int, source: str, values: dict[str, Any]
) -> tuple[int, bool]:
    """Returns the order id and whether it was new."""
    existing = find_order_id(session, organization_id, source, values["external_id"])
    if existing is None:
        order = Order(organization_id=organization_id, source=source, **values)
        session.add(order)
        session.flush()
        return order.id, True
    changes = {k: v for k, v in values.items() if k != "created_at"}
    session.execute(update(Order).where(Order.id == existing).values(**changes))
    return existing, False


def find_invoice(
    session: Session, organization_id: int, source: str, external_id: str
) -> Invoice | None:
    return session.scalar(
        select(Invoice).where(
            Invoice.organization_id == organization_id,
            Invoice.source == source,
            Invoice.external_id == external_id,
        )
    )


def number_taken_by_other(
    session: Session, organization_id: int, number: str, source: str, external_id: str
) -> bool:
    found = session.scalar(
        select(Invoice.id).where(
            Invoice.organization_id == organization_id,
            Invoice.number == number,
            (Invoice.source.is_(None))
            | (Invoice.source != source)
            | (Invoice.external_id != external_id),
        )
    )
    return found is not None


def update_invoice(session: Session, invoice_id: int, values: dict[str, Any]) -> None:
    session.execute(
        update(Invoice)
        .where(Invoice.id == invoice_id)
        .values(**values, version=Invoice.version + 1)
    )


def replace_lines(session: Session, invoice_id: int, lines: Sequence[InvoiceLineItem]) -> None:
    session.execute(delete(InvoiceLineItem).where(InvoiceLineItem.invoice_id == invoice_id))
    for line in lines:
        line.invoice_id = invoice_id
    session.add_all(lines)
    session.flush()


def get_order(session: Session, organization_id: int, order_id: int) -> Order | None:
    return session.scalar(
        select(Order).where(Order.organization_id == organization_id, Order.id == order_id)
    )


def get_order_by_increment(
    session: Session, organization_id: int, increment_id: str
) -> Order | None:
    return session.scalar(
        select(Order)
        .where(Order.organization_id == organization_id, Order.increment_id == increment_id)
        .order_by(Order.id)
        .limit(1)
    )


def orders_by_ids(session: Session, organization_id: int, ids: Sequence[int]) -> dict[int, Order]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Order).where(Order.organization_id == organization_id, Order.id.in_(list(ids)))
    )
    return {o.id: o for o in rows}


def stores_by_ids(session: Session, organization_id: int, ids: Sequence[int]) -> dict[int, Store]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Store).where(Store.organization_id == organization_id, Store.id.in_(list(ids)))
    )
    return {s.id: s for s in rows}


def list_orders(
    session: Session, organization_id: int, *, limit: int, offset: int
) -> tuple[list[Order], int]:
    base = select(Order).where(Order.organization_id == organization_id)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    rows = list(session.scalars(base.order_by(Order.id.desc()).limit(limit).offset(offset)).all())
    return rows, total


def invoices_of_order(session: Session, organization_id: int, order_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.organization_id == organization_id, Invoice.order_id == order_id)
            .order_by(Invoice.id)
        ).all()
    )
