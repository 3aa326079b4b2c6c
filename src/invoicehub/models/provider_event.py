from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base, UTCDateTime


class ProviderEvent(Base):
    """A payment provider's webhook event, recorded once: a redelivered event id is a no-op."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    invoice_public_id: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
