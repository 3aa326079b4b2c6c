from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from invoicehub.models import ApiKey, Organization


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


# Every authenticated request runs this: built once, so a request pays for neither the
# statement's construction nor its cache key (both memoized on the statement object).
_FIND_ACTIVE = (
    select(ApiKey, Organization)
    .join(Organization, Organization.id == ApiKey.organization_id)
    .where(ApiKey.secret_hash == bindparam("secret_hash"), ApiKey.revoked_at.is_(None))
)


def find_active_by_secret_hash(
    session: Session, secret_hash: str
) -> tuple[ApiKey, Organization] | None:
    row = session.execute(_FIND_ACTIVE, {"secret_hash": secret_hash}).first()
    return None if row is None else (row[0], row[1])


def list_for_organization(session: Session, organization_id: int) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.organization_id == organization_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
        )
    )


def revoke(session: Session, organization_id: int, public_id: str, now: dt.datetime) -> bool:
    """One conditional UPDATE: only a live key of this organization is revoked."""
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.organization_id == organization_id,
            ApiKey.public_id == public_id,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def exists(session: Session, organization_id: int, public_id: str) -> bool:
    return (
        session.scalar(
            select(ApiKey.id).where(
                ApiKey.organization_id == organization_id, ApiKey.public_id == public_id
            )
        )
        is not None
    )
