from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from invoicehub.api.deps import Auth, DbSession
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.events import service
from invoicehub.events.schemas import EventList

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=OneHopRoute)


@router.get("", response_model=EventList, summary="List events")
def list_events(
    auth: Auth,
    session: DbSession,
    type: Annotated[list[str] | None, Query(description="Repeatable event type filter.")] = None,
    object_id: Annotated[
        str | None, Query(max_length=40, description="Only events about this object.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=40, description="Newest first, older than this event.")
    ] = None,
    after: Annotated[
        str | None,
        Query(max_length=40, description="Oldest first, newer than this event: catch up."),
    ] = None,
) -> EventList:
    return service.list_events(
        session,
        auth.organization_id,
        limit=limit,
        types=tuple(type or ()),
        object_id=object_id,
        starting_after=starting_after,
        after=after,
    )
