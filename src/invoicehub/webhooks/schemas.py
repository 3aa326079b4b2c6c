from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from invoicehub.kit.schemas import RequestModel, ResponseModel

# Every event type invoicehub sends, documented in docs/webhooks.md.
EVENT_TYPES = (
    "invoice.created",
    "invoice.updated",
    "invoice.finalized",
    "invoice.viewed",
    "invoice.processing",
    "invoice.paid",
    "invoice.partially_paid",
    "invoice.payment_failed",
    "invoice.cancelled",
    "invoice.expired",
    "invoice.overdue",
    "invoice.refunded",
    "invoice.partially_refunded",
    "invoice.paid_late",
    "invoice.payment_flagged",
    "webhook_endpoint.disabled",
    "webhook.test",
)

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
EventTypes = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=60)]],
    Field(min_length=1, max_length=50),
]


class WebhookEndpointCreate(RequestModel):
    url: Url = Field(
        description="Where to POST events: a public http(s) URL.",
        examples=["https://shop.example/hooks/invoicehub"],
    )
    enabled_events: EventTypes = Field(
        default_factory=lambda: ["*"],
        description='Event types to send, or ["*"] for all.',
        examples=[["invoice.paid", "invoice.refunded"]],
    )
    description: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, examples=["Order system"]
    )
    enabled: bool = True


class WebhookEndpointUpdate(RequestModel):
    url: Url | None = None
    enabled_events: EventTypes | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    enabled: bool | None = Field(
        default=None, description="Re-enabling clears the reason it was disabled."
    )


class WebhookEndpoint(ResponseModel):
    id: str = Field(examples=["we_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    number: int = Field(
        description="The endpoint's number, for APIs that name endpoints by number (ApiPay's webhook_id).",
        examples=[1],
    )
    url: str
    description: str | None
    enabled_events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why invoicehub disabled it (410 Gone, failing for days)."
    )
    secret: str | None = Field(
        default=None,
        description="The signing secret (whsec_…): only in the answer that created or rotated it.",
    )
    previous_secret_expires_at: dt.datetime | None = Field(
        description="During a rotation, when the old secret stops signing."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookEndpointList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]


class WebhookAttempt(ResponseModel):
    attempt_number: int
    attempted_at: dt.datetime
    status_code: int | None = Field(
        description="The receiver's HTTP status; null when no answer came."
    )
    latency_ms: int
    response_body: str | None = Field(description="The first 2 KB of the receiver's answer.")
    error: str | None = Field(description="Timeout, connection refused, refused destination …")


class WebhookDelivery(ResponseModel):
    id: str = Field(examples=["whd_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str = Field(description="Also the webhook-id header: the same on every retry.")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None
    attempts: list[WebhookAttempt]


class WebhookDeliveryList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDelivery]
    has_more: bool
    next_starting_after: str | None
