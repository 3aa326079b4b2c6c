from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from invoicehub.models import ApiKey, Organization


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


def find_active_by_secret_hash(
    session: Session, secret_hash: str
) -> tuple[ApiKey, Organization] | None:
    row = session.execute(
        select(ApiKey, Organization)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .where(ApiKey.secret_hash == secret_hash, ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])
