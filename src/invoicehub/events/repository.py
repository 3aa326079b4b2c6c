from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from invoicehub.models import Event


def add(session: Session, event: Event) -> Event:
    session.add(event)
    session.flush()
    return event


def get_internal_id(session: Session, organization_id: int, public_id: str) -> int | None:
    return session.scalar(
        select(Event.id).where(
            Event.organization_id == organization_id, Event.public_id == public_id
        )
    )


def list_page(
    session: Session,
    organization_id: int,
    *,
    limit: int,
    types: tuple[str, ...] = (),
    object_id: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
) -> list[Event]:
    """Newest first by default; with ``after_id`` oldest first, for catching up."""
    query = select(Event).where(Event.organization_id == organization_id)
    if types:
        query = query.where(Event.type.in_(types))
    if object_id is not None:
        query = query.where(Event.object_id == object_id)
    if after_id is not None:
        query = query.where(Event.id > after_id).order_by(Event.id.asc())
    else:
        if before_id is not None:
            query = query.where(Event.id < before_id)
        query = query.order_by(Event.id.desc())
    return list(session.scalars(query.limit(limit)).all())
