from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from invoicehub.kit import clock
from invoicehub.models import Invoice, Payment, ProviderEvent


def record_provider_event(
    session: Session, *, provider: str, event_id: str, type_: str
) -> int | None:
    """Inserts the event id; None when it was recorded before (a redelivery)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return session.execute(
        insert(ProviderEvent)
        .values(provider=provider, event_id=event_id, type=type_, received_at=clock.utcnow())
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(ProviderEvent.id)
    ).scalar_one_or_none()


def set_provider_event_outcome(
    session: Session, row_id: int, *, invoice_public_id: str | None, outcome: str
) -> None:
    session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.id == row_id)
        .values(invoice_public_id=invoice_public_id, outcome=outcome[:200])
    )


def invoice_for_provider_reference(
    session: Session, provider: str, reference: str
) -> Invoice | None:
    return session.scalar(
        select(Invoice)
        .join(Payment, Payment.invoice_id == Invoice.id)
        .where(
            Payment.provider == provider,
            Payment.provider_reference == reference,
            Payment.kind == "payment",
        )
        .limit(1)
    )


def payment_recorded(session: Session, invoice_id: int, provider: str, reference: str) -> bool:
    found = session.scalar(
        select(Payment.id).where(
            Payment.invoice_id == invoice_id,
            Payment.provider == provider,
            Payment.provider_reference == reference,
            Payment.kind == "payment",
            Payment.status.in_(("succeeded", "review")),
        )
    )
    return found is not None


def refunded_through(session: Session, invoice_id: int, provider: str, reference: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(
            Payment.invoice_id == invoice_id,
            Payment.provider == provider,
            Payment.provider_reference == reference,
            Payment.kind == "refund",
            Payment.status == "succeeded",
        )
    )
    return int(total or 0)


def last_provider_payment(session: Session, invoice_id: int, provider: str) -> Payment | None:
    return session.scalar(
        select(Payment)
        .where(
            Payment.invoice_id == invoice_id,
            Payment.provider == provider,
            Payment.kind == "payment",
            Payment.status == "succeeded",
        )
        .order_by(Payment.id.desc())
        .limit(1)
    )
