from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base, UTCDateTime

# The rows the worker's jobs may still move (repository.expire_due, mark_overdue): partial
# indexes on them keep each scan to the few that are due instead of the whole table.
# Migration 0006 creates them with the same predicates.
_EXPIRY_CANDIDATES = "status = 'open' AND amount_paid_minor = 0 AND expires_at IS NOT NULL"
_OVERDUE_CANDIDATES = "status = 'open' AND overdue_at IS NULL"


class Invoice(Base):
    """The one invoice of the whole system; every seed API is a view of it.

    Money is integer minor units of ``currency``. ``amount_due`` is derived
    (total - amount_paid), as are "overdue" (open and past due) and "viewed".
    """

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("organization_id", "number"),
        Index("ix_invoices_org_id_desc", "organization_id", "id"),
        Index("ix_invoices_org_status_id", "organization_id", "status", "id"),
        Index("ix_invoices_org_external_order", "organization_id", "external_order_id"),
        Index("ix_invoices_org_created", "organization_id", "created_at"),
        Index(
            "ix_invoices_org_source_external",
            "organization_id",
            "source",
            "external_id",
            unique=True,
        ),
        Index("ix_invoices_org_order", "organization_id", "order_id"),
        Index(
            "ix_invoices_expiry_candidates",
            "expires_at",
            sqlite_where=text(_EXPIRY_CANDIDATES),
            postgresql_where=text(_EXPIRY_CANDIDATES),
        ),
        Index(
            "ix_invoices_overdue_candidates",
            "due_date",
            sqlite_where=text(_OVERDUE_CANDIDATES),
            postgresql_where=text(_OVERDUE_CANDIDATES),
        ),
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("amount_paid_minor >= 0", name="paid_not_negative"),
        CheckConstraint("amount_paid_minor <= total_minor", name="paid_within_total"),
        CheckConstraint("amount_refunded_minor >= 0", name="refunded_not_negative"),
        CheckConstraint("amount_refunded_minor <= amount_paid_minor", name="refunded_within_paid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))

    customer_name: Mapped[str | None] = mapped_column(String(200))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    customer_phone: Mapped[str | None] = mapped_column(String(20))
    customer_telegram_user_id: Mapped[str | None] = mapped_column(String(32))

    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    payment_terms: Mapped[str | None] = mapped_column(String(200))
    external_order_id: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    shipping_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)

    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # Set when the invoice names one endpoint to notify (ApiPay's webhook_id); its events then
    # go to that endpoint only.
    webhook_endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.public_id", ondelete="SET NULL"), nullable=True
    )

    # The one payment link (issue: one per invoice); the full URL is kept as it was made, so
    # events and exports show the link customers actually got.
    payment_link_token: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    payment_url: Mapped[str | None] = mapped_column(String(2048))
    payment_link_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    payment_link_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    payment_provider: Mapped[str | None] = mapped_column(String(20))
    # A provider's own checkout for this link (a Stripe Checkout Session): id and URL.
    provider_checkout_id: Mapped[str | None] = mapped_column(String(255))
    provider_checkout_url: Mapped[str | None] = mapped_column(String(2048))
    customer_locale: Mapped[str | None] = mapped_column(String(10))
    # Set when it became overdue (the due date passed, or a provider said a payment failed
    # past due); the invoice.overdue event is written once, with it.
    overdue_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Money arrived after the invoice was cancelled or expired.
    paid_late_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # Person-to-person invoices (wallet, Telegram bots): who is billed and who is paid.
    payer_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    payee_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    # A short public code for APIs that show one (Bots.Business: invoice-XXXXXXXX).
    short_code: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)

    # Invoices synced from a shop (Magento): where from, its id there, and its links.
    source: Mapped[str | None] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    invoiced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    # The last declined payment attempt, so a reader sees why an invoice is open again.
    last_payment_error: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    viewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
