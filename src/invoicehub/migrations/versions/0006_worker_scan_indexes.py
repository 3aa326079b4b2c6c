"""partial indexes for the worker's expiry and overdue scans

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21

Without them "expire invoices" (every 15 s) and "mark overdue invoices" (every 60 s) read the
whole invoices table, inside a write transaction on SQLite (docs/benchmarks.md). Each index
holds only the rows its job may still move, so a scan reads the few that are due.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same predicates as the model's (models/invoice.py) and the jobs' queries
# (invoices/repository.py expire_due, mark_overdue), which state them with literals.
EXPIRY_CANDIDATES = "status = 'open' AND amount_paid_minor = 0 AND expires_at IS NOT NULL"
OVERDUE_CANDIDATES = "status = 'open' AND overdue_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_invoices_expiry_candidates",
        "invoices",
        ["expires_at"],
        unique=False,
        sqlite_where=sa.text(EXPIRY_CANDIDATES),
        postgresql_where=sa.text(EXPIRY_CANDIDATES),
    )
    op.create_index(
        "ix_invoices_overdue_candidates",
        "invoices",
        ["due_date"],
        unique=False,
        sqlite_where=sa.text(OVERDUE_CANDIDATES),
        postgresql_where=sa.text(OVERDUE_CANDIDATES),
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_overdue_candidates", table_name="invoices")
    op.drop_index("ix_invoices_expiry_candidates", table_name="invoices")
