from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from invoicehub.kit.db import Prebuilt
from invoicehub.models import Event

_EVENTS = cast(Table, Event.__table__)
_EVENT_COLUMNS = [column.key for column in _EVENTS.columns if column.key != "id"]
# Built once: every state change runs it, a statement per row (a change records one or
# two); prebuilt, two of them cost less than SQLAlchemy's one multi-row INSERT.
_INSERT_EVENT = Prebuilt(insert(_EVENTS).returning(_EVENTS.c.id), column_keys=_EVENT_COLUMNS)


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Writes the event rows without ORM objects (nobody reads them back in the change's
    transaction) and returns their ids, in the order of ``rows``. Every row has every column
    but the id."""
    return [_INSERT_EVENT.execute(session, row)[0][0] for row in rows]


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
    """Newest first by default; with ``after_id`` oldest first, for catching up.

    Shaped as invoices.repository.list_page, for the same reason: the page's ids come from
    the (organization_id, id) index in a subquery and the rows are joined back, so
    PostgreSQL does not walk the primary key through other organizations' newer events."""
    ids = select(Event.id).where(Event.organization_id == organization_id)
    if types:
        ids = ids.where(Event.type.in_(types))
    if object_id is not None:
        ids = ids.where(Event.object_id == object_id)
    if after_id is not None:
        ids = ids.where(Event.id > after_id).order_by(Event.id.asc())
    else:
        if before_id is not None:
            ids = ids.where(Event.id < before_id)
        elif types or object_id is not None:
            newest = (
                select(func.max(Event.id))
                .where(Event.organization_id == organization_id)
                .scalar_subquery()
            )
            ids = ids.where(Event.id <= newest)
        ids = ids.order_by(Event.id.desc())
    page = ids.limit(limit).subquery("page")
    query = select(Event).join(page, Event.id == page.c.id)
    order = Event.id.asc() if after_id is not None else Event.id.desc()
    return list(session.scalars(query.order_by(order)).all())
