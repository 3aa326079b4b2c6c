"""Events: a durable record of every state change, written in the change's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from invoicehub.errors import ValidationFailed
from invoicehub.events import repository
from invoicehub.events.schemas import EventList, EventOut
from invoicehub.kit import clock
from invoicehub.kit.ids import new_public_id
from invoicehub.models import Event
from invoicehub.webhooks import service as webhooks


def record_event(
    session: Session,
    *,
    organization_id: int,
    type: str,
    object_type: str,
    object_id: str,
    data: dict[str, Any],
    route_to_endpoint: str | None = None,
) -> int:
    """Writes the event and, in the same transaction, its webhook deliveries (the outbox).
    Returns the event's internal id."""
    return record_events(
        session,
        organization_id=organization_id,
        object_type=object_type,
        object_id=object_id,
        events=[(type, data)],
        route_to_endpoint=route_to_endpoint,
    )[0]


def record_events(
    session: Session,
    *,
    organization_id: int,
    object_type: str,
    object_id: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    route_to_endpoint: str | None = None,
) -> list[int]:
    """Writes several events about one object, as ``(type, data)`` in the order they
    happened, and their webhook deliveries: one INSERT for the events, one look at the
    endpoints and one INSERT for all the deliveries, whatever the count (an invoice created
    open records invoice.created and invoice.finalized). Returns the events' ids in order."""
    now = clock.utcnow()
    ids = repository.insert_events(
        session,
        [
            {
                "public_id": new_public_id("evt"),
                "organization_id": organization_id,
                "type": type_,
                "object_type": object_type,
                "object_id": object_id,
                "data": data,
                "created_at": now,
            }
            for type_, data in events
        ],
    )
    webhooks.fan_out(
        session,
        organization_id,
        [(event_id, type_) for event_id, (type_, _) in zip(ids, events, strict=True)],
        at=now,
        route_to_endpoint=route_to_endpoint,
    )
    return ids


def present_event(event: Event) -> EventOut:
    return EventOut(
        id=event.public_id,
        type=event.type,
        object_type=event.object_type,
        object_id=event.object_id,
        data=event.data,
        created_at=event.created_at,
    )


def list_events(
    session: Session,
    organization_id: int,
    *,
    limit: int,
    types: tuple[str, ...] = (),
    object_id: str | None = None,
    starting_after: str | None = None,
    after: str | None = None,
) -> EventList:
    if starting_after and after:
        raise ValidationFailed("use either starting_after or after, not both", param="after")
    before_id = _cursor(session, organization_id, starting_after, "starting_after")
    after_id = _cursor(session, organization_id, after, "after")
    rows = repository.list_page(
        session,
        organization_id,
        limit=limit + 1,
        types=types,
        object_id=object_id,
        before_id=before_id,
        after_id=after_id,
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    return EventList(
        data=[present_event(e) for e in rows],
        has_more=has_more,
        next_cursor=rows[-1].public_id if rows else after,
    )


def _cursor(
    session: Session, organization_id: int, public_id: str | None, param: str
) -> int | None:
    if public_id is None:
        return None
    internal = repository.get_internal_id(session, organization_id, public_id)
    if internal is None:
        raise ValidationFailed(f"no event {public_id} to page from", param=param)
    return internal
