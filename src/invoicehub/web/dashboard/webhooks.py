"""Webhook endpoints: register one (its secret shown once), its delivery log, redeliver, send a
test event, enable or disable, delete. Owners only: endpoints receive the organization's data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from invoicehub.errors import AppError
from invoicehub.users.service import DashboardContext, require_owner
from invoicehub.web.dashboard.common import (
    Ctx,
    FormCtx,
    cookie_secure,
    db,
    error_page,
    invalid_input,
    render,
    runtime_of,
    see_other,
    signer,
)
from invoicehub.webhooks import service as webhooks
from invoicehub.webhooks.schemas import EVENT_TYPES, WebhookEndpointCreate, WebhookEndpointUpdate

router = APIRouter()
DELIVERIES_PER_PAGE = 25


def _list_page(
    request: Request,
    context: DashboardContext,
    *,
    error: AppError | None = None,
    created_secret: str | None = None,
    created_id: str | None = None,
    form: dict[str, object] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "webhooks.html",
        context,
        {
            "endpoints": webhooks.list_endpoints(db(request), context.organization_id),
            "event_types": EVENT_TYPES,
            "error": error,
            "created_secret": created_secret,
            "created_id": created_id,
            "form": form or {"url": "", "description": "", "events": []},
        },
        status=error.status_code if error else 200,
        section="webhooks",
    )


REVEAL_COOKIE = "invoicehub_reveal"


def _reveal_value(request: Request, context: DashboardContext, endpoint_id: str) -> str:
    return (
        f"{endpoint_id}.{signer(request).csrf_token(f'reveal:{context.token_hash}:{endpoint_id}')}"
    )


@router.get("/webhooks", response_class=HTMLResponse)
def endpoint_list(request: Request, context: Ctx) -> HTMLResponse:
    """The secret of an endpoint just made is shown here once: the POST that made it leaves a
    short-lived cookie naming it (signed for this session), and this page spends it, so a
    reload neither shows the secret again nor registers a second endpoint."""
    require_owner(context)
    reveal = request.cookies.get(REVEAL_COOKIE, "")
    endpoint_id = reveal.partition(".")[0]
    created = None
    if endpoint_id and reveal == _reveal_value(request, context, endpoint_id):
        try:
            created = webhooks.get_endpoint(db(request), context.organization_id, endpoint_id)
        except AppError:
            created = None
    response = _list_page(
        request,
        context,
        created_secret=created.secret if created else None,
        created_id=created.public_id if created else None,
    )
    if reveal:
        response.delete_cookie(REVEAL_COOKIE, path="/dashboard/webhooks")
    return response


@router.post("/webhooks", response_model=None)
def create_endpoint(
    request: Request,
    context: FormCtx,
    url: Annotated[str, Form(max_length=2048)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
    events: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006
) -> Response:
    require_owner(context)
    form: dict[str, object] = {"url": url, "description": description, "events": events}
    try:
        try:
            data = WebhookEndpointCreate(
                url=url.strip(),
                description=description.strip() or None,
                enabled_events=events or ["*"],
            )
        except ValidationError as exc:
            raise invalid_input(exc) from None
        endpoint = webhooks.create_endpoint(
            db(request),
            context.organization_id,
            data,
            allow_private=runtime_of(request).settings.webhook_allow_private,
        )
    except AppError as error:
        return _list_page(request, context, error=error, form=form)
    response = see_other("/webhooks")
    response.set_cookie(
        REVEAL_COOKIE,
        _reveal_value(request, context, endpoint.public_id),
        max_age=300,
        path="/dashboard/webhooks",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )
    return response


@router.get("/webhooks/{public_id}", response_class=HTMLResponse)
def endpoint_page(
    request: Request,
    context: Ctx,
    public_id: str,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    require_owner(context)
    session = db(request)
    endpoint = webhooks.get_endpoint(session, context.organization_id, public_id)
    deliveries = webhooks.list_deliveries(
        session,
        context.organization_id,
        endpoint_public_id=public_id,
        limit=DELIVERIES_PER_PAGE,
        starting_after=starting_after,
    )
    return render(
        request,
        "webhook.html",
        context,
        {
            "endpoint": endpoint,
            "deliveries": deliveries,
            "done": request.query_params.get("done"),
        },
        section="webhooks",
    )


def _act(request: Request, public_id: str, done: str, action: Callable[[], object]) -> Response:
    try:
        action()
    except AppError as error:
        return error_page(request, error)
    return see_other(f"/webhooks/{public_id}", done=done)


@router.post("/webhooks/{public_id}/test", response_model=None)
def send_test(request: Request, context: FormCtx, public_id: str) -> Response:
    require_owner(context)
    return _act(
        request,
        public_id,
        "test_queued",
        lambda: webhooks.send_test_event(db(request), context.organization_id, public_id),
    )


@router.post("/webhooks/{public_id}/enabled", response_model=None)
def set_enabled(
    request: Request,
    context: FormCtx,
    public_id: str,
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    require_owner(context)
    return _act(
        request,
        public_id,
        "enabled" if enabled == "true" else "disabled",
        lambda: webhooks.update_endpoint(
            db(request),
            context.organization_id,
            public_id,
            WebhookEndpointUpdate(enabled=enabled == "true"),
            allow_private=runtime_of(request).settings.webhook_allow_private,
        ),
    )


@router.post("/webhooks/{public_id}/delete", response_model=None)
def delete_endpoint(request: Request, context: FormCtx, public_id: str) -> Response:
    require_owner(context)
    try:
        webhooks.delete_endpoint(db(request), context.organization_id, public_id)
    except AppError as error:
        return error_page(request, error)
    return see_other("/webhooks", done="deleted")


@router.post("/webhooks/{public_id}/deliveries/{delivery_id}/redeliver", response_model=None)
def redeliver(request: Request, context: FormCtx, public_id: str, delivery_id: str) -> Response:
    require_owner(context)
    return _act(
        request,
        public_id,
        "redelivery_queued",
        lambda: webhooks.redeliver(db(request), context.organization_id, delivery_id),
    )
