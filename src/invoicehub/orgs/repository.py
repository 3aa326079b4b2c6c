from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from invoicehub.models import Organization


def add(session: Session, organization: Organization) -> Organization:
    session.add(organization)
    session.flush()
    return organization


def get_by_public_id(session: Session, public_id: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.public_id == public_id))


def get(session: Session, organization_id: int) -> Organization | None:
    return session.get(Organization, organization_id)


def set_verified(session: Session, public_id: str, *, verified: bool) -> Organization | None:
    return session.scalar(
        update(Organization)
        .where(Organization.public_id == public_id)
        .values(verified=verified)
        .returning(Organization)
    )


def update_fields(
    session: Session, organization_id: int, values: dict[str, object]
) -> Organization | None:
    return session.scalar(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(**values)
        .returning(Organization)
        .execution_options(populate_existing=True, synchronize_session=False)
    )
