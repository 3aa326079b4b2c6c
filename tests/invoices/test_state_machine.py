"""The state machine's moves at the service level: each move, its refusals, and its event,
written in the move's own transaction (services never commit; these tests do)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from invoicehub.api.runtime import Runtime
from invoicehub.errors import AppError, Conflict, ValidationFailed
from invoicehub.invoices import service
from invoicehub.invoices.schemas import InvoiceCreate
from invoicehub.kit import clock
from invoicehub.models import Event, Invoice, Organization
from tests.conftest import OrgKeys, invoice_body

TOTAL = 600_000  # the 004 example: 6000.00 USD in cents


def write(runtime: Runtime) -> Session:
    return runtime.database.session(write=True)


def make_invoice(runtime: Runtime, org: OrgKeys, **overrides: Any) -> str:
    """A committed invoice (open unless told otherwise); returns its public id."""
    overrides.setdefault("status", "open")
    with write(runtime) as session:
        view = service.create_invoice(
            session, org.internal_id, InvoiceCreate.model_validate(invoice_body(**overrides))
        )
        session.commit()
        return view.invoice.public_id


def committed(runtime: Runtime, move: Callable[[Session], Any]) -> Any:
    with write(runtime) as session:
        result = move(session)
        session.commit()
        return result


def stored(runtime: Runtime, org: OrgKeys, public_id: str) -> Invoice:
    with runtime.database.session(write=False) as session:
        invoice = service.get_invoice(session, org.internal_id, public_id, with_lines=False).invoice
        session.expunge(invoice)
        return invoice


def event_types(session: Session, public_id: str) -> list[str]:
    return list(
        session.scalars(select(Event.type).where(Event.object_id == public_id).order_by(Event.id))
    )


def stored_event_types(runtime: Runtime, public_id: str) -> list[str]:
    with runtime.database.session(write=False) as session:
        return event_types(session, public_id)


def stored_payments(
    runtime: Runtime, org: OrgKeys, public_id: str
) -> list[tuple[str, str, int, str | None]]:
    with runtime.database.session(write=False) as session:
        return [
            (p.kind, p.status, p.amount_minor, p.failure_reason)
            for p in service.list_payments(session, org.internal_id, public_id)
        ]


def moved_once(session: Session, public_id: str, before: list[str], expected_type: str) -> None:
    """Exactly one new event, of the expected type, visible inside the move's transaction."""
    after = event_types(session, public_id)
    assert after == [*before, expected_type]


def refused(exc_type: type[AppError], code: str, call: Callable[[], Any]) -> AppError:
    with pytest.raises(exc_type) as info:
        call()
    assert info.value.code == code, info.value.message
    return info.value


# ---------------------------------------------------------------- payment attempts


def test_start_payment_attempt_moves_open_to_processing(runtime: Runtime, org: OrgKeys) -> None:
    public_id = make_invoice(runtime, org)
    with write(runtime) as session:
        before = event_types(session, public_id)
        view, payment = service.start_payment_attempt(
            session, org.internal_id, public_id, provider="sandbox", reference="att-1"
        )
        assert view.invoice.status == "processing"
        assert (payment.kind, payment.status, payment.amount_minor, payment.provider) == (
            "payment",
            "processing",
            TOTAL,
            "sandbox",
        )
        moved_once(session, public_id, before, "invoice.processing")
        session.commit()
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.paid_at) == ("processing", 0, None)
    assert stored_payments(runtime, org, public_id) == [("payment", "processing", TOTAL, None)]


def test_decline_returns_to_open_with_the_error(runtime: Runtime, org: OrgKeys) -> None:
    public_id = make_invoice(runtime, org)
    _, payment = committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    with write(runtime) as session:
        before = event_types(session, public_id)
        view = service.decline_payment_attempt(
            session, org.internal_id, payment.public_id, reason="card_declined"
        )
        assert (view.invoice.status, view.invoice.last_payment_error) == ("open", "card_declined")
        moved_once(session, public_id, before, "invoice.payment_failed")
        session.commit()
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.last_payment_error, invoice.amount_paid_minor) == (
        "open",
        "card_declined",
        0,
    )
    assert stored_payments(runtime, org, public_id) == [
        ("payment", "failed", TOTAL, "card_declined")
    ]
    # The attempt is over: it can be neither declined nor completed again.
    with write(runtime) as session:
        refused(
            Conflict,
            "payment_not_processing",
            lambda: service.decline_payment_attempt(
                session, org.internal_id, payment.public_id, reason="again"
            ),
        )
        refused(
            Conflict,
            "payment_not_processing",
            lambda: service.complete_payment_attempt(session, org.internal_id, payment.public_id),
        )
        session.rollback()


def test_complete_full_attempt_pays_and_clears_the_last_error(
    runtime: Runtime, org: OrgKeys
) -> None:
    public_id = make_invoice(runtime, org)
    _, first = committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    committed(
        runtime,
        lambda s: service.decline_payment_attempt(
            s, org.internal_id, first.public_id, reason="insufficient_funds"
        ),
    )
    _, second = committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    with write(runtime) as session:
        before = event_types(session, public_id)
        view = service.complete_payment_attempt(session, org.internal_id, second.public_id)
        assert view.invoice.status == "paid"
        moved_once(session, public_id, before, "invoice.paid")
        session.commit()
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.last_payment_error) == (
        "paid",
        TOTAL,
        None,
    )
    assert invoice.paid_at is not None
    assert stored_payments(runtime, org, public_id) == [
        ("payment", "failed", TOTAL, "insufficient_funds"),
        ("payment", "succeeded", TOTAL, None),
    ]
    assert stored_event_types(runtime, public_id) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.processing",
        "invoice.payment_failed",
        "invoice.processing",
        "invoice.paid",
    ]


def test_complete_partial_attempt_returns_to_open_with_amount_paid(
    runtime: Runtime, org: OrgKeys
) -> None:
    public_id = make_invoice(runtime, org)
    _, payment = committed(
        runtime,
        lambda s: service.start_payment_attempt(
            s, org.internal_id, public_id, provider="sandbox", amount=Decimal("1000.00")
        ),
    )
    assert payment.amount_minor == 100_000
    with write(runtime) as session:
        before = event_types(session, public_id)
        view = service.complete_payment_attempt(session, org.internal_id, payment.public_id)
        assert (view.invoice.status, view.invoice.amount_paid_minor) == ("open", 100_000)
        moved_once(session, public_id, before, "invoice.partially_paid")
        session.commit()
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor, invoice.paid_at) == ("open", 100_000, None)
    # The rest can be attempted and paid; a larger attempt than what is due cannot start.
    with write(runtime) as session:
        refused(
            ValidationFailed,
            "amount_exceeds_due",
            lambda: service.start_payment_attempt(
                session, org.internal_id, public_id, provider="sandbox", amount=Decimal("5000.01")
            ),
        )
        session.rollback()
    _, rest = committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    assert rest.amount_minor == TOTAL - 100_000
    committed(
        runtime,
        lambda s: service.complete_payment_attempt(s, org.internal_id, rest.public_id),
    )
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", TOTAL)


def test_cancelling_or_paying_while_processing_is_refused(runtime: Runtime, org: OrgKeys) -> None:
    public_id = make_invoice(runtime, org)
    committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    with write(runtime) as session:
        refused(
            Conflict,
            "invoice_not_cancellable",
            lambda: service.cancel_invoice(session, org.internal_id, public_id),
        )
        refused(
            Conflict,
            "invoice_not_payable",
            lambda: service.record_payment(session, org.internal_id, public_id),
        )
        refused(
            Conflict,
            "invoice_not_payable",
            lambda: service.record_payment(session, org.internal_id, public_id, amount=Decimal(1)),
        )
        refused(
            Conflict,
            "invoice_not_payable",
            lambda: service.start_payment_attempt(
                session, org.internal_id, public_id, provider="sandbox"
            ),
        )
        refused(
            Conflict,
            "invoice_not_refundable",
            lambda: service.refund_invoice(session, org.internal_id, public_id),
        )
        session.commit()  # nothing above changed anything, so committing changes nothing
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor) == ("processing", 0)
    assert stored_payments(runtime, org, public_id) == [("payment", "processing", TOTAL, None)]
    assert stored_event_types(runtime, public_id)[-1] == "invoice.processing"


def test_organization_without_partial_payments_refuses_partial_amounts(
    runtime: Runtime, org: OrgKeys
) -> None:
    with write(runtime) as session:
        session.execute(
            update(Organization)
            .where(Organization.id == org.internal_id)
            .values(allow_partial_payments=False)
        )
        session.commit()
    public_id = make_invoice(runtime, org)
    with write(runtime) as session:
        refused(
            ValidationFailed,
            "partial_payment_not_allowed",
            lambda: service.record_payment(
                session, org.internal_id, public_id, amount=Decimal("1000.00")
            ),
        )
        refused(
            ValidationFailed,
            "partial_payment_not_allowed",
            lambda: service.start_payment_attempt(
                session, org.internal_id, public_id, provider="sandbox", amount=Decimal("1000.00")
            ),
        )
        refused(
            ValidationFailed,
            "amount_exceeds_due",
            lambda: service.record_payment(
                session, org.internal_id, public_id, amount=Decimal("6000.01")
            ),
        )
        session.commit()
    assert stored(runtime, org, public_id).amount_paid_minor == 0
    assert stored_payments(runtime, org, public_id) == []
    committed(
        runtime,
        lambda s: service.record_payment(s, org.internal_id, public_id, amount=Decimal("6000.00")),
    )
    invoice = stored(runtime, org, public_id)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", TOTAL)


# ---------------------------------------------------------------- viewed and expired


def test_mark_viewed_sets_viewed_at_once_with_one_event(runtime: Runtime, org: OrgKeys) -> None:
    draft = make_invoice(runtime, org, status="draft")
    public_id = make_invoice(runtime, org)
    with write(runtime) as session:
        assert service.mark_viewed(session, org.internal_id, draft) is None  # a draft is not shown
        before = event_types(session, public_id)
        view = service.mark_viewed(session, org.internal_id, public_id)
        assert view is not None
        assert view.invoice.viewed_at is not None
        moved_once(session, public_id, before, "invoice.viewed")
        session.commit()
    first_view = stored(runtime, org, public_id).viewed_at
    assert first_view is not None
    for _ in range(2):
        assert (
            committed(
                runtime,
                lambda s: service.mark_viewed(s, org.internal_id, public_id),
            )
            is None
        )
    assert stored(runtime, org, public_id).viewed_at == first_view
    assert stored_event_types(runtime, public_id).count("invoice.viewed") == 1
    assert stored(runtime, org, draft).viewed_at is None
    assert "invoice.viewed" not in stored_event_types(runtime, draft)


def test_expire_due_invoices_expires_open_unpaid_ones_only(
    runtime: Runtime, org: OrgKeys, moved_clock: list[float]
) -> None:
    soon = (clock.utcnow() + dt.timedelta(minutes=5)).isoformat()
    unpaid = make_invoice(runtime, org, expires_at=soon)
    partly_paid = make_invoice(runtime, org, expires_at=soon)
    no_deadline = make_invoice(runtime, org)
    later = make_invoice(
        runtime, org, expires_at=(clock.utcnow() + dt.timedelta(hours=2)).isoformat()
    )
    draft = make_invoice(runtime, org, status="draft", expires_at=soon)
    committed(
        runtime,
        lambda s: service.record_payment(s, org.internal_id, partly_paid, amount=Decimal("1.00")),
    )
    mine = {unpaid, partly_paid, no_deadline, later, draft}

    def expire() -> set[str]:
        views = committed(runtime, service.expire_due_invoices)
        return {v.invoice.public_id for v in views} & mine

    assert expire() == set()  # nothing is due yet
    moved_clock[0] = 10 * 60
    assert expire() == {unpaid}
    assert expire() == set()  # and never twice

    expired = stored(runtime, org, unpaid)
    assert expired.status == "expired"
    assert expired.expired_at is not None
    assert expired.expired_at >= dt.datetime.fromisoformat(soon)
    assert stored_event_types(runtime, unpaid) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.expired",
    ]
    assert stored(runtime, org, partly_paid).status == "open"
    assert stored(runtime, org, no_deadline).status == "open"
    assert stored(runtime, org, later).status == "open"
    assert stored(runtime, org, draft).status == "draft"
    for other in mine - {unpaid}:
        assert "invoice.expired" not in stored_event_types(runtime, other)
    # An expired invoice takes no payment and cannot be cancelled.
    with write(runtime) as session:
        refused(
            Conflict,
            "invoice_not_payable",
            lambda: service.record_payment(session, org.internal_id, unpaid),
        )
        refused(
            Conflict,
            "invoice_not_cancellable",
            lambda: service.cancel_invoice(session, org.internal_id, unpaid),
        )
        session.rollback()


# ---------------------------------------------------------------- one move, one event, one transaction


@dataclass(frozen=True)
class Move:
    prepare: Callable[[Runtime, OrgKeys], tuple[str, str]]  # -> (invoice id, the move's argument)
    run: Callable[[Session, OrgKeys, str], Any]
    event: str
    status_after: str


def _draft(runtime: Runtime, org: OrgKeys) -> tuple[str, str]:
    public_id = make_invoice(runtime, org, status="draft")
    return public_id, public_id


def _open(runtime: Runtime, org: OrgKeys) -> tuple[str, str]:
    public_id = make_invoice(runtime, org)
    return public_id, public_id


def _processing(runtime: Runtime, org: OrgKeys) -> tuple[str, str]:
    public_id = make_invoice(runtime, org)
    _, payment = committed(
        runtime,
        lambda s: service.start_payment_attempt(s, org.internal_id, public_id, provider="sandbox"),
    )
    return public_id, payment.public_id


def _paid(runtime: Runtime, org: OrgKeys) -> tuple[str, str]:
    public_id = make_invoice(runtime, org)
    committed(runtime, lambda s: service.record_payment(s, org.internal_id, public_id))
    return public_id, public_id


MOVES: dict[str, Move] = {
    "finalize": Move(
        _draft,
        lambda s, org, arg: service.finalize_invoice(s, org.internal_id, arg),
        "invoice.finalized",
        "open",
    ),
    "cancel": Move(
        _open,
        lambda s, org, arg: service.cancel_invoice(s, org.internal_id, arg),
        "invoice.cancelled",
        "cancelled",
    ),
    "record full payment": Move(
        _open,
        lambda s, org, arg: service.record_payment(s, org.internal_id, arg),
        "invoice.paid",
        "paid",
    ),
    "record partial payment": Move(
        _open,
        lambda s, org, arg: service.record_payment(
            s, org.internal_id, arg, amount=Decimal("10.00")
        ),
        "invoice.partially_paid",
        "open",
    ),
    "start attempt": Move(
        _open,
        lambda s, org, arg: service.start_payment_attempt(
            s, org.internal_id, arg, provider="sandbox"
        ),
        "invoice.processing",
        "processing",
    ),
    "decline attempt": Move(
        _processing,
        lambda s, org, arg: service.decline_payment_attempt(
            s, org.internal_id, arg, reason="do_not_honor"
        ),
        "invoice.payment_failed",
        "open",
    ),
    "complete attempt": Move(
        _processing,
        lambda s, org, arg: service.complete_payment_attempt(s, org.internal_id, arg),
        "invoice.paid",
        "paid",
    ),
    "partial refund": Move(
        _paid,
        lambda s, org, arg: service.refund_invoice(s, org.internal_id, arg, amount=Decimal("1.00")),
        "invoice.partially_refunded",
        "partially_refunded",
    ),
    "full refund": Move(
        _paid,
        lambda s, org, arg: service.refund_invoice(s, org.internal_id, arg),
        "invoice.refunded",
        "refunded",
    ),
    "mark viewed": Move(
        _open,
        lambda s, org, arg: service.mark_viewed(s, org.internal_id, arg),
        "invoice.viewed",
        "open",
    ),
}


def _snapshot(runtime: Runtime, org: OrgKeys, public_id: str) -> tuple[Any, ...]:
    invoice = stored(runtime, org, public_id)
    return (
        invoice.status,
        invoice.version,
        invoice.amount_paid_minor,
        invoice.amount_refunded_minor,
        invoice.viewed_at,
        invoice.last_payment_error,
        stored_event_types(runtime, public_id),
        stored_payments(runtime, org, public_id),
    )


def _org_event_count(session: Session, org: OrgKeys) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Event).where(Event.organization_id == org.internal_id)
        )
        or 0
    )


@pytest.mark.parametrize("name", list(MOVES))
def test_each_move_writes_exactly_one_event_in_its_own_transaction(
    runtime: Runtime, org: OrgKeys, name: str
) -> None:
    move = MOVES[name]
    public_id, argument = move.prepare(runtime, org)
    before = _snapshot(runtime, org, public_id)
    with write(runtime) as session:
        org_events = _org_event_count(session, org)
        move.run(session, org, argument)
        moved_once(session, public_id, before[6], move.event)
        assert _org_event_count(session, org) == org_events + 1
        assert (
            session.scalar(select(Invoice.status).where(Invoice.public_id == public_id))
            == move.status_after
        )
        session.rollback()
    # Rolled back: neither the change nor its event (nor a payment row) exists.
    assert _snapshot(runtime, org, public_id) == before
    # Committed: both exist, together.
    with write(runtime) as session:
        move.run(session, org, argument)
        session.commit()
    after = _snapshot(runtime, org, public_id)
    assert after[0] == move.status_after
    assert after[6] == [*before[6], move.event]
    assert after[1] == before[1] + 1


def test_expiry_writes_its_event_in_the_same_transaction(
    runtime: Runtime, org: OrgKeys, moved_clock: list[float]
) -> None:
    public_id = make_invoice(
        runtime, org, expires_at=(clock.utcnow() + dt.timedelta(minutes=1)).isoformat()
    )
    before = _snapshot(runtime, org, public_id)
    moved_clock[0] = 120
    with write(runtime) as session:
        expired = {v.invoice.public_id for v in service.expire_due_invoices(session)}
        assert public_id in expired
        moved_once(session, public_id, before[6], "invoice.expired")
        session.rollback()
    assert _snapshot(runtime, org, public_id) == before
    with write(runtime) as session:
        service.expire_due_invoices(session)
        session.commit()
    after = _snapshot(runtime, org, public_id)
    assert (after[0], after[6]) == ("expired", [*before[6], "invoice.expired"])


def test_refused_moves_write_no_event(runtime: Runtime, org: OrgKeys) -> None:
    public_id, _ = _paid(runtime, org)
    before = _snapshot(runtime, org, public_id)
    with write(runtime) as session:
        refused(
            Conflict,
            "invoice_not_cancellable",
            lambda: service.cancel_invoice(session, org.internal_id, public_id),
        )
        refused(
            Conflict,
            "invoice_not_payable",
            lambda: service.record_payment(session, org.internal_id, public_id, amount=Decimal(1)),
        )
        refused(
            Conflict,
            "invoice_not_finalizable",
            lambda: service.finalize_invoice(session, org.internal_id, public_id),
        )
        refused(
            ValidationFailed,
            "amount_exceeds_refundable",
            lambda: service.refund_invoice(
                session, org.internal_id, public_id, amount=Decimal("6000.01")
            ),
        )
        assert event_types(session, public_id) == before[6]
        session.commit()
    assert _snapshot(runtime, org, public_id) == before
