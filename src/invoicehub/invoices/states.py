"""The one state machine of the whole system; every seed API's status words map onto it.

    draft ──finalize──> open ──(payment attempt)──> processing ──> paid ──> partially_refunded
      │                  │  ^                           │            │              │
      │                  │  └──────── declined ─────────┘            └──> refunded <┘
      └──> cancelled <───┤
                         └──> expired

"overdue" (open and past its due date) and "viewed" are derived, never stored.
Each transition below is carried out by one conditional UPDATE whose WHERE clause is the
``from`` set, so two concurrent requests can never both make the same move.
"""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PROCESSING = "processing"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


S = InvoiceStatus

FINALIZABLE = (S.DRAFT,)
CANCELLABLE = (S.DRAFT, S.OPEN)  # and only while nothing has been paid
PAYABLE = (S.OPEN,)
ATTEMPTABLE = (S.OPEN,)
ATTEMPT_IN_FLIGHT = (S.PROCESSING,)
REFUNDABLE = (S.PAID, S.PARTIALLY_REFUNDED)
EXPIRABLE = (S.OPEN,)  # and only while nothing has been paid
VIEWABLE = (S.OPEN, S.PROCESSING, S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED)
LATE_PAYABLE = (S.CANCELLED, S.EXPIRED)  # money that arrives anyway is kept on record
LINKABLE = (S.DRAFT, S.OPEN)  # a payment link may be made (a draft is finalized by it)
OVERDUE_CANDIDATES = (S.OPEN,)
EDITABLE_MONEY = (S.DRAFT,)
EDITABLE_DETAILS = (S.DRAFT, S.OPEN)

# Statuses a list filter accepts: the stored ones plus the derived "overdue".
FILTERABLE = (*tuple(s.value for s in InvoiceStatus), "overdue")


def names(statuses: tuple[InvoiceStatus, ...]) -> str:
    return " or ".join(s.value for s in statuses)


def available_actions(
    status: str, *, amount_paid_minor: int, amount_refunded_minor: int, has_link: bool
) -> frozenset[str]:
    """What a person may ask of an invoice in this state (the dashboard shows these buttons);
    each is still checked by its own conditional UPDATE when asked."""
    actions = {"duplicate"}
    if status in FINALIZABLE:
        actions.add("finalize")
    if status in EDITABLE_MONEY:
        actions.add("edit")
    if status in CANCELLABLE and amount_paid_minor == 0:
        actions.add("cancel")
    if status in PAYABLE:
        actions.add("record_payment")
    if status in REFUNDABLE and amount_paid_minor > amount_refunded_minor:
        actions.add("refund")
    if status in LINKABLE and not has_link:
        actions.add("payment_link")
    return frozenset(actions)
