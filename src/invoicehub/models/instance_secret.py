from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from invoicehub.kit.db import Base


class InstanceSecret(Base):
    """Random keys made once per installation (by the migration that adds them), shared by
    every process through the database: ``session_signing`` signs dashboard cookies unless
    INVOICEHUB_SECRET_KEY is set."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
