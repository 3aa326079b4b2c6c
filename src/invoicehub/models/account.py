from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base, UTCDateTime


class Account(Base):
    """A person who holds money in invoicehub: a wallet owner (phone + password) or a
    Telegram bot's user (bot + Telegram id + PIN). Each has a personal organization that owns
    the invoices they issue; their balance is the sum of their ledger entries."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("kind", "phone"),
        UniqueConstraint("bot_id", "telegram_user_id"),
        Index("ix_accounts_org", "organization_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # wallet | bot_user
    phone: Mapped[str | None] = mapped_column(String(20))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    telegram_user_id: Mapped[str | None] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(200))  # argon2 of the password or PIN
    currency: Mapped[str] = mapped_column(String(3))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
