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
