"""Webhook endpoints and the delivery log under /v1."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response

from invoicehub.api.deps import Auth, DbSession, RuntimeDep
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.webhooks import service
from invoicehub.webhooks.schemas import (
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointUpdate,
)

router = APIRouter(tags=["webhooks"], route_class=OneHopRoute)


@router.post(
    "/v1/webhook-endpoints",
    status_code=201,
    response_model=WebhookEndpoint,
    summary="Register a webhook endpoint",
)
def create_endpoint(
    body: WebhookEndpointCreate, auth: Auth, session: DbSession, runtime: RuntimeDep
) -> WebhookEndpoint:
    endpoint = service.create_endpoint(
        session, auth.organization_id, body, allow_private=runtime.settings.webhook_allow_private
    )
    return service.present_endpoint(endpoint, with_secret=True)


@router.get(
    "/v1/webhook-endpoints", response_model=WebhookEndpointList, summary="List webhook endpoints"
)
def list_endpoints(auth: Auth, session: DbSession) -> WebhookEndpointList:
    return WebhookEndpointList(
        data=[
            service.present_endpoint(e)
            for e in service.list_endpoints(session, auth.organization_id)
        ]
    )


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    summary="Get a webhook endpoint",
)
def get_endpoint(endpoint_id: str, auth: Auth, session: DbSession) -> WebhookEndpoint:
    return service.present_endpoint(
        service.get_endpoint(session, auth.organization_id, endpoint_id)
    )


@router.patch(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    summary="Update a webhook endpoint",
)
def update_endpoint(
    endpoint_id: str,
    body: WebhookEndpointUpdate,
    auth: Auth,
    session: DbSession,
    runtime: RuntimeDep,
) -> WebhookEndpoint:
    endpoint = service.update_endpoint(
        session,
        auth.organization_id,
        endpoint_id,
        body,
        allow_private=runtime.settings.webhook_allow_private,
    )
    return service.present_endpoint(endpoint)


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint"
)
def delete_endpoint(endpoint_id: str, auth: Auth, session: DbSession) -> Response:
    service.delete_endpoint(session, auth.organization_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpoint,
    summary="Rotate the signing secret (the old one keeps signing for 24 hours)",
)
def rotate_secret(
    endpoint_id: str, auth: Auth, session: DbSession, runtime: RuntimeDep
) -> WebhookEndpoint:
    overlap = dt.timedelta(hours=runtime.settings.webhook_secret_rotation_overlap_hours)
    endpoint = service.rotate_secret(session, auth.organization_id, endpoint_id, overlap=overlap)
    return service.present_endpoint(endpoint, with_secret=True)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=WebhookDelivery,
    summary="Send a webhook.test event to this endpoint",
)
def send_test(endpoint_id: str, auth: Auth, session: DbSession) -> WebhookDelivery:
    delivery = service.send_test_event(session, auth.organization_id, endpoint_id)
    return service.get_delivery(session, auth.organization_id, delivery.public_id)


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=WebhookDeliveryList,
    summary="The delivery log of an endpoint, newest first",
)
def endpoint_deliveries(
    endpoint_id: str,
    auth: Auth,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
) -> WebhookDeliveryList:
    return service.list_deliveries(
        session,
        auth.organization_id,
        endpoint_public_id=endpoint_id,
        limit=limit,
        starting_after=starting_after,
    )


@router.get(
    "/v1/events/{event_id}/deliveries",
    response_model=WebhookDeliveryList,
    summary="Deliveries of one event",
)
def event_deliveries(
    event_id: str,
    auth: Auth,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
) -> WebhookDeliveryList:
    return service.list_deliveries(
        session,
        auth.organization_id,
        event_public_id=event_id,
        limit=limit,
        starting_after=starting_after,
    )


@router.get(
    "/v1/webhook-deliveries/{delivery_id}",
    response_model=WebhookDelivery,
    summary="One delivery and its attempts",
)
def get_delivery(delivery_id: str, auth: Auth, session: DbSession) -> WebhookDelivery:
    return service.get_delivery(session, auth.organization_id, delivery_id)


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=WebhookDelivery,
    summary="Send the delivery's event again (a new delivery, same webhook-id)",
)
def redeliver(delivery_id: str, auth: Auth, session: DbSession) -> WebhookDelivery:
    delivery = service.redeliver(session, auth.organization_id, delivery_id)
    return service.get_delivery(session, auth.organization_id, delivery.public_id)
