from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base, UTCDateTime


class Organization(Base):
    """A merchant, business, tenant or store owner: the one owner of invoices and keys."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    default_currency: Mapped[str] = mapped_column(String(3))
    invoice_number_pattern: Mapped[str] = mapped_column(String(100))
    default_due_days: Mapped[int] = mapped_column(Integer)
    allow_partial_payments: Mapped[bool] = mapped_column(Boolean, default=True)
    payment_provider: Mapped[str] = mapped_column(String(20), default="sandbox")
    # What to do with money that arrives for a cancelled or expired invoice: "accept" it
    # (the invoice becomes paid, flagged paid late) or "refund" it at once.
    late_payment_policy: Mapped[str] = mapped_column(
        String(10), default="accept", server_default="accept"
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
