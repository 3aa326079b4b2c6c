"""All webhook SQL: endpoints, the delivery outbox and the attempt log."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from invoicehub.kit.db import Prebuilt
from invoicehub.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Core statements for the work done once per event (the fan-out) or once per delivery sent,
# built once: constructing a statement costs more than running these small ones, and ORM
# entities more again (docs/benchmarks-webhooks.md).
_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)
_SUBSCRIBED = (
    select(_ENDPOINTS.c.id, _ENDPOINTS.c.enabled_events)
    .where(
        _ENDPOINTS.c.organization_id == bindparam("organization_id"),
        _ENDPOINTS.c.enabled.is_(True),
    )
    .order_by(_ENDPOINTS.c.id)
)
_SUBSCRIPTIONS = Prebuilt(_SUBSCRIBED)
_SUBSCRIPTION_OF_ONE = Prebuilt(_SUBSCRIBED.where(_ENDPOINTS.c.public_id == bindparam("public_id")))
_INSERT_DELIVERIES_SQLITE = (
    "INSERT INTO webhook_deliveries (public_id, organization_id, endpoint_id, event_id, status,"
    " attempt_count, next_attempt_at, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)"
)
_INSERT_DELIVERIES_UNNEST = text(
    "INSERT INTO webhook_deliveries (public_id, organization_id, endpoint_id, event_id, status,"
    " attempt_count, next_attempt_at, created_at, updated_at)"
    " SELECT d.public_id, :organization_id, d.endpoint_id, d.event_id, 'pending', 0, :at, :at, :at"
    " FROM unnest(CAST(:public_ids AS varchar[]), CAST(:endpoint_ids AS integer[]),"
    " CAST(:event_ids AS integer[])) AS d(public_id, endpoint_id, event_id)"
)
_INSERT_ATTEMPT = insert(_ATTEMPTS)
_CLEAR_FAILING_SINCE = (
    update(_ENDPOINTS)
    .where(_ENDPOINTS.c.id == bindparam("endpoint_id"), _ENDPOINTS.c.failing_since.is_not(None))
    .values(failing_since=None)
)

# ------------------------------------------------------------------ endpoints


def add_endpoint(session: Session, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, organization_id: int, public_id: str) -> WebhookEndpoint | None:
    return session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization_id,
            WebhookEndpoint.public_id == public_id,
        )
    )


def get_endpoint_by_internal_id(
    session: Session, organization_id: int, endpoint_id: int
) -> WebhookEndpoint | None:
    return session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.id == endpoint_id
        )
    )


def list_endpoints(session: Session, organization_id: int) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == organization_id)
            .order_by(WebhookEndpoint.id)
        ).all()
    )


def subscriptions(
    session: Session, organization_id: int, *, public_id: str | None = None
) -> list[tuple[int, list[str]]]:
    """(id, enabled_events) of the organization's enabled endpoints, or of the one named
    ``public_id`` if it is enabled: only what the fan-out needs, without ORM entities."""
    if public_id is None:
        rows = _SUBSCRIPTIONS.execute(session, {"organization_id": organization_id})
    else:
        rows = _SUBSCRIPTION_OF_ONE.execute(
            session, {"organization_id": organization_id, "public_id": public_id}
        )
    return [(endpoint_id, enabled_events) for endpoint_id, enabled_events in rows]


def update_endpoint(
    session: Session, endpoint_id: int, values: dict[str, Any], *, only_if: Sequence[Any] = ()
) -> WebhookEndpoint | None:
    return session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, *only_if)
        .values(**values)
        .returning(WebhookEndpoint)
        .execution_options(populate_existing=True, synchronize_session=False)
    )


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


# ------------------------------------------------------------------ deliveries


def add_deliveries(session: Session, deliveries: Sequence[WebhookDelivery]) -> None:
    session.add_all(deliveries)
    session.flush()


def insert_deliveries(
    session: Session,
    *,
    organization_id: int,
    at: dt.datetime,
    deliveries: Sequence[tuple[str, int, int]],
) -> None:
    """The outbox write on every state change: pending deliveries, due ``at``, given as
    ``(public_id, endpoint_id, event_id)``. No ORM objects and no RETURNING (nobody reads
    the rows back in that transaction). SQLite: one executemany, a loop inside the driver.
    PostgreSQL: one INSERT … SELECT over unnest() of three arrays, since psycopg's
    executemany sends one execution per row, which cost creates with five endpoints about
    0.2 ms of this process's CPU and as much of wall time (docs/benchmarks-webhooks.md)."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(
            _INSERT_DELIVERIES_UNNEST,
            {
                "organization_id": organization_id,
                "at": at,
                "public_ids": [public_id for public_id, _, _ in deliveries],
                "endpoint_ids": [endpoint_id for _, endpoint_id, _ in deliveries],
                "event_ids": [event_id for _, _, event_id in deliveries],
            },
        )
        return
    # SQLite: the driver's own executemany, with the timestamp turned into its stored form
    # once by the column's type; through SQLAlchemy each row's three timestamps went through
    # the type's processors one by one (about a sixth of a create's instructions at ten rows).
    stored_at = _timestamp_processor(dialect)(at)
    session.connection().exec_driver_sql(
        _INSERT_DELIVERIES_SQLITE,
        [
            (public_id, organization_id, endpoint_id, event_id, stored_at)
            for public_id, endpoint_id, event_id in deliveries
        ],
    )


@functools.cache
def _timestamp_processor(dialect: Dialect) -> Callable[[Any], Any]:
    processor = _DELIVERIES.c.created_at.type.bind_processor(dialect)
    assert processor is not None
    return processor


def claim_due(
    session: Session,
    *,
    now: dt.datetime,
    lease_until: dt.datetime,
    token: str,
    limit: int,
    per_endpoint: int,
    in_flight: Mapping[int, int] | None = None,
) -> list[int]:
    """Leases up to ``limit`` due deliveries, at most ``per_endpoint`` of any one endpoint,
    counting what this worker is still sending to it (``in_flight``), so one endpoint's
    backlog or hang cannot take every slot. On PostgreSQL, rows another worker
    is leasing right now are skipped (FOR UPDATE SKIP LOCKED); on SQLite the write
    transaction (BEGIN IMMEDIATE) already makes the claim exclusive."""
    due = (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        (WebhookDelivery.locked_until.is_(None)) | (WebhookDelivery.locked_until < now),
    )
    ranked = (
        select(
            WebhookDelivery.id.label("id"),
            WebhookDelivery.endpoint_id.label("endpoint_id"),
            WebhookDelivery.next_attempt_at.label("due_at"),
            func.row_number()
            .over(
                partition_by=WebhookDelivery.endpoint_id,
                order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
            )
            .label("rank"),
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(*due, WebhookEndpoint.enabled.is_(True))
    )
    busy = {endpoint_id: n for endpoint_id, n in (in_flight or {}).items() if n > 0}
    full = [endpoint_id for endpoint_id, n in busy.items() if n >= per_endpoint]
    if full:
        ranked = ranked.where(WebhookDelivery.endpoint_id.not_in(full))
    ranked_sub = ranked.subquery()
    room: ColumnElement[int] | int = per_endpoint
    if busy:
        room = per_endpoint - case(busy, value=ranked_sub.c.endpoint_id, else_=0)
    candidates = (
        select(ranked_sub.c.id)
        .where(ranked_sub.c.rank <= room)
        .order_by(ranked_sub.c.due_at, ranked_sub.c.id)
        .limit(limit)
    )
    # Two steps on purpose: the candidates first, then a lock by that literal id list. Nested
    # in one statement, PostgreSQL may re-run the ranking for every due row (a semi join with
    # statistics taken before a backlog): seconds per claim at a few thousand due rows.
    ids = list(session.scalars(candidates).all())
    if not ids:
        return []
    lockable = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(ids), *due)
    if session.get_bind().dialect.name == "postgresql":
        # Locked as a statement of its own, so no plan can run the lock once per due row.
        ids = list(session.scalars(lockable.with_for_update(skip_locked=True)).all())
        if not ids:
            return []
    claimed = session.scalars(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), *due)
        .values(locked_until=lease_until, lock_token=token)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    return list(claimed)


def load_for_sending(
    session: Session, delivery_ids: Sequence[int]
) -> list[tuple[WebhookDelivery, WebhookEndpoint, Event]]:
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint, Event)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(list(delivery_ids)))
        .order_by(WebhookDelivery.id)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def finish_attempt(
    session: Session, delivery_id: int, *, token: str, values: dict[str, Any]
) -> tuple[int, int] | None:
    """Records an attempt's outcome, but only while this worker still holds the lease;
    returns the delivery's (organization_id, endpoint_id), or None if the lease was lost.
    Core, returning two columns: it runs once per delivery sent."""
    row = session.execute(
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == delivery_id, _DELIVERIES.c.lock_token == token)
        .values(**values, locked_until=None, lock_token=None)
        .returning(_DELIVERIES.c.organization_id, _DELIVERIES.c.endpoint_id)
    ).first()
    return None if row is None else (row[0], row[1])


def add_attempt(session: Session, values: Mapping[str, Any]) -> None:
    """One row of the delivery log (Core, no RETURNING: nobody reads it back here)."""
    session.execute(_INSERT_ATTEMPT, dict(values))


def clear_failing_since(session: Session, endpoint_id: int) -> None:
    """A success ends an endpoint's failing streak; a no-op, and no read, when there is none."""
    session.execute(_CLEAR_FAILING_SINCE, {"endpoint_id": endpoint_id})


def get_delivery(session: Session, organization_id: int, public_id: str) -> WebhookDelivery | None:
    return session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.organization_id == organization_id,
            WebhookDelivery.public_id == public_id,
        )
    )


def get_delivery_by_public_id(session: Session, public_id: str) -> WebhookDelivery | None:
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.public_id == public_id))


def list_deliveries(
    session: Session,
    organization_id: int,
    *,
    endpoint_id: int | None = None,
    event_id: int | None = None,
    limit: int,
    before_id: int | None = None,
) -> list[tuple[WebhookDelivery, WebhookEndpoint, Event]]:
    query = (
        select(WebhookDelivery, WebhookEndpoint, Event)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.organization_id == organization_id)
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def attempts_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    grouped: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return grouped
    for attempt in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.id)
    ):
        grouped[attempt.delivery_id].append(attempt)
    return grouped


def delete_events_before(session: Session, cutoff: dt.datetime, *, limit: int) -> int:
    """Removes events older than ``cutoff`` (their deliveries and attempts cascade)."""
    old_ids = (
        select(Event.id)
        .where(Event.created_at < cutoff)
        .order_by(Event.id)
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(Event).where(Event.id.in_(old_ids)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
