from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base


class InvoiceNumberSequence(Base):
    """The last number handed out per organization and period (the year when the pattern
    has {YYYY}, else one period ""); advanced by one atomic upsert in the invoice's own
    transaction, so a rolled-back invoice gives its number back and numbers stay gapless."""

    __tablename__ = "invoice_number_sequences"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)
