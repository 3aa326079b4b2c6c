"""Webhook endpoints, the outbox fan-out and the delivery log.

``fan_out`` runs inside ``record_event``: the delivery rows are written in the same
transaction as the change and its event, so an event is never lost and never sent for a
change that rolled back. The worker in ``webhooks/tasks.py`` sends them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from invoicehub.errors import Conflict, NotFound, ValidationFailed
from invoicehub.kit import clock
from invoicehub.kit.ids import new_public_id
from invoicehub.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from invoicehub.webhooks import repository
from invoicehub.webhooks.schemas import (
    EVENT_TYPES,
    WebhookDeliveryList,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from invoicehub.webhooks.schemas import WebhookAttempt as AttemptOut
from invoicehub.webhooks.schemas import WebhookDelivery as DeliveryOut
from invoicehub.webhooks.schemas import WebhookEndpoint as EndpointOut
from invoicehub.webhooks.signing import new_secret
from invoicehub.webhooks.ssrf import DestinationRefused, check_literal

# Events that go only to the endpoint they concern, never to every subscriber.
_ENDPOINT_ONLY_EVENTS = frozenset({"webhook.test"})


def _check_events(types: list[str]) -> list[str]:
    unknown = [t for t in types if t != "*" and t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"unknown event type {unknown[0]!r}; use '*' or one of {', '.join(EVENT_TYPES)}",
            param="enabled_events",
            code="invalid_event_type",
        )
    return sorted(set(types))


def _check_url(url: str, allow_private: bool) -> str:
    try:
        check_literal(url, allow_private=allow_private)
    except DestinationRefused as exc:
        raise ValidationFailed(str(exc), param="url", code="invalid_webhook_url") from exc
    return url


def present_endpoint(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> EndpointOut:
    return EndpointOut(
        id=endpoint.public_id,
        number=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        enabled_events=list(endpoint.enabled_events),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        secret=endpoint.secret if with_secret else None,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def create_endpoint(
    session: Session, organization_id: int, data: WebhookEndpointCreate, *, allow_private: bool
) -> WebhookEndpoint:
    now = clock.utcnow()
    return repository.add_endpoint(
        session,
        WebhookEndpoint(
            public_id=new_public_id("we"),
            organization_id=organization_id,
            url=_check_url(data.url, allow_private),
            description=data.description,
            enabled_events=_check_events(data.enabled_events),
            enabled=data.enabled,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        ),
    )


def get_endpoint(session: Session, organization_id: int, public_id: str) -> WebhookEndpoint:
    endpoint = repository.get_endpoint(session, organization_id, public_id)
    if endpoint is None:
        raise NotFound(
            f"no webhook endpoint {public_id}", param="id", code="webhook_endpoint_not_found"
        )
    return endpoint


def require_endpoint_for_invoice(session: Session, organization_id: int, public_id: str) -> str:
    """An invoice may name only one of its own organization's endpoints (422 otherwise)."""
    if repository.get_endpoint(session, organization_id, public_id) is None:
        raise ValidationFailed(
            f"webhook_id {public_id} is not one of your webhook endpoints",
            param="webhook_id",
            code="invalid_webhook_id",
        )
    return public_id


def endpoint_public_id_for_number(
    session: Session, organization_id: int, endpoint_number: int
) -> str:
    """ApiPay names endpoints by number ("webhook_id": 1): the endpoint's internal id."""
    endpoint = repository.get_endpoint_by_internal_id(session, organization_id, endpoint_number)
    if endpoint is None:
        raise ValidationFailed(
            f"webhook_id {endpoint_number} is not one of your webhook endpoints",
            param="webhook_id",
            code="invalid_webhook_id",
        )
    return endpoint.public_id


def list_endpoints(session: Session, organization_id: int) -> list[WebhookEndpoint]:
    return repository.list_endpoints(session, organization_id)


def update_endpoint(
    session: Session,
    organization_id: int,
    public_id: str,
    data: WebhookEndpointUpdate,
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, organization_id, public_id)
    given = data.model_fields_set
    values: dict[str, Any] = {"updated_at": clock.utcnow()}
    if "url" in given:
        if data.url is None:
            raise ValidationFailed("url cannot be null", param="url")
        values["url"] = _check_url(data.url, allow_private)
    if "enabled_events" in given:
        if data.enabled_events is None:
            raise ValidationFailed("enabled_events cannot be null", param="enabled_events")
        values["enabled_events"] = _check_events(data.enabled_events)
    if "description" in given:
        values["description"] = data.description
    if "enabled" in given:
        if data.enabled is None:
            raise ValidationFailed("enabled cannot be null", param="enabled")
        values["enabled"] = data.enabled
        if data.enabled:
            values.update(disabled_reason=None, failing_since=None)
    updated = repository.update_endpoint(session, endpoint.id, values)
    assert updated is not None
    return updated


def rotate_secret(
    session: Session, organization_id: int, public_id: str, *, overlap: dt.timedelta
) -> WebhookEndpoint:
    """A new secret signs from now on; the old one keeps signing too until ``overlap`` ends."""
    endpoint = get_endpoint(session, organization_id, public_id)
    now = clock.utcnow()
    updated = repository.update_endpoint(
        session,
        endpoint.id,
        {
            "secret": new_secret(),
            "previous_secret": endpoint.secret,
            "previous_secret_expires_at": now + overlap,
            "updated_at": now,
        },
        only_if=[WebhookEndpoint.secret == endpoint.secret],
    )
    if updated is None:
        raise Conflict(
            "the secret was rotated by another request at the same time; read it again",
            code="concurrent_rotation",
        )
    return updated


def delete_endpoint(session: Session, organization_id: int, public_id: str) -> None:
    endpoint = get_endpoint(session, organization_id, public_id)
    repository.delete_endpoint(session, endpoint.id)


def signing_secrets(endpoint: WebhookEndpoint, now: dt.datetime) -> list[str]:
    secrets_ = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets_.append(endpoint.previous_secret)
    return secrets_


# ------------------------------------------------------------------ the outbox


def _wants(enabled_events: list[str], event_type: str) -> bool:
    return "*" in enabled_events or event_type in enabled_events


def fan_out(
    session: Session,
    organization_id: int,
    events: Sequence[tuple[int, str]],
    *,
    at: dt.datetime,
    route_to_endpoint: str | None = None,
) -> int:
    """Writes one pending delivery per enabled endpoint subscribed to each event's type, for
    the ``(event id, type)`` pairs of one organization recorded at ``at``, and returns how
    many. Events about an invoice that names an endpoint go to that endpoint only (if it is
    enabled and subscribed).

    This runs for every state change, inside the request that made it, so it reads only the
    endpoints' ids and subscriptions, once for all the change's events, and writes every row
    in one Core statement without RETURNING; ORM objects per row cost creates 16-38 % with
    five endpoints (docs/benchmarks-webhooks.md)."""
    wanted = [(event_id, type_) for event_id, type_ in events if type_ not in _ENDPOINT_ONLY_EVENTS]
    if not wanted:
        return 0
    endpoints = repository.subscriptions(session, organization_id, public_id=route_to_endpoint)
    if not endpoints:
        return 0
    deliveries = [
        (new_public_id("whd"), endpoint_id, event_id)
        for event_id, type_ in wanted
        for endpoint_id, enabled_events in endpoints
        if _wants(enabled_events, type_)
    ]
    if deliveries:
        repository.insert_deliveries(
            session, organization_id=organization_id, at=at, deliveries=deliveries
        )
    return len(deliveries)


def _delivery_for(
    session: Session, organization_id: int, event_id: int, endpoint: WebhookEndpoint
) -> WebhookDelivery:
    now = clock.utcnow()
    delivery = WebhookDelivery(
        public_id=new_public_id("whd"),
        organization_id=organization_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        status="pending",
        attempt_count=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    repository.add_deliveries(session, [delivery])
    return delivery


def send_test_event(session: Session, organization_id: int, public_id: str) -> WebhookDelivery:
    """Records a ``webhook.test`` event and queues it for this endpoint alone."""
    from invoicehub.events.service import record_event

    endpoint = get_endpoint(session, organization_id, public_id)
    event_id = record_event(
        session,
        organization_id=organization_id,
        type="webhook.test",
        object_type="webhook_endpoint",
        object_id=endpoint.public_id,
        data={"object": present_endpoint(endpoint).model_dump(mode="json")},
    )
    return _delivery_for(session, organization_id, event_id, endpoint)


def redeliver(
    session: Session, organization_id: int | None, delivery_public_id: str
) -> WebhookDelivery:
    """Queues the delivery's event again for the same endpoint, as a new delivery with a fresh
    retry schedule and the same webhook-id; the old delivery's log stays as it was."""
    old = (
        repository.get_delivery(session, organization_id, delivery_public_id)
        if organization_id is not None
        else repository.get_delivery_by_public_id(session, delivery_public_id)
    )
    if old is None:
        raise NotFound(
            f"no webhook delivery {delivery_public_id}",
            param="id",
            code="webhook_delivery_not_found",
        )
    endpoint = repository.get_endpoint_by_internal_id(session, old.organization_id, old.endpoint_id)
    assert endpoint is not None
    if not endpoint.enabled:
        raise Conflict(
            f"webhook endpoint {endpoint.public_id} is disabled ({endpoint.disabled_reason or 'by you'}); enable it first",
            code="webhook_endpoint_disabled",
        )
    return _delivery_for(session, old.organization_id, old.event_id, endpoint)


# ------------------------------------------------------------------ the log


def present_deliveries(
    session: Session, rows: list[tuple[WebhookDelivery, WebhookEndpoint, Event]]
) -> list[DeliveryOut]:
    attempts = repository.attempts_of(session, [d.id for d, _, _ in rows])
    return [
        DeliveryOut(
            id=delivery.public_id,
            endpoint_id=endpoint.public_id,
            event_id=event.public_id,
            event_type=event.type,
            status=delivery.status,
            attempt_count=delivery.attempt_count,
            next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            completed_at=delivery.completed_at,
            attempts=[_present_attempt(a) for a in attempts[delivery.id]],
        )
        for delivery, endpoint, event in rows
    ]


def _present_attempt(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        attempt_number=attempt.attempt_number,
        attempted_at=attempt.attempted_at,
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        response_body=attempt.response_body,
        error=attempt.error,
    )


def list_deliveries(
    session: Session,
    organization_id: int,
    *,
    endpoint_public_id: str | None = None,
    event_public_id: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
) -> WebhookDeliveryList:
    endpoint_id = (
        get_endpoint(session, organization_id, endpoint_public_id).id
        if endpoint_public_id
        else None
    )
    event_id = None
    if event_public_id is not None:
        from invoicehub.events import repository as events_repository

        event_id = events_repository.get_internal_id(session, organization_id, event_public_id)
        if event_id is None:
            raise NotFound(f"no event {event_public_id}", param="id", code="event_not_found")
    before_id = None
    if starting_after is not None:
        cursor = repository.get_delivery(session, organization_id, starting_after)
        if cursor is None:
            raise ValidationFailed(
                f"no webhook delivery {starting_after} to page from", param="starting_after"
            )
        before_id = cursor.id
    rows = repository.list_deliveries(
        session,
        organization_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        limit=limit + 1,
        before_id=before_id,
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    data = present_deliveries(session, rows)
    return WebhookDeliveryList(
        data=data, has_more=has_more, next_starting_after=data[-1].id if has_more and data else None
    )


def get_delivery(session: Session, organization_id: int, public_id: str) -> DeliveryOut:
    delivery = repository.get_delivery(session, organization_id, public_id)
    if delivery is None:
        raise NotFound(
            f"no webhook delivery {public_id}", param="id", code="webhook_delivery_not_found"
        )
    rows = repository.list_deliveries(
        session,
        organization_id,
        endpoint_id=delivery.endpoint_id,
        limit=1,
        before_id=delivery.id + 1,
    )
    return present_deliveries(session, rows)[0]


def purge_old_events(session: Session, *, retention: dt.timedelta, limit: int = 5000) -> int:
    return repository.delete_events_before(session, clock.utcnow() - retention, limit=limit)
