"""Native API for payment links and sandbox simulation."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from invoicehub.api.deps import Auth, DbSession, RuntimeDep
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.errors import AppError, ServiceUnavailable
from invoicehub.invoices.endpoints import ERRORS
from invoicehub.invoices.schemas import Invoice
from invoicehub.invoices.service import present
from invoicehub.kit import clock
from invoicehub.payments import service
from invoicehub.payments.schemas import PaymentLink, PaymentLinkCreate, SimulatePayment
from invoicehub.payments.stripe_gateway import SignatureInvalid, verify_signature

router = APIRouter(prefix="/v1/invoices", tags=["payments"], route_class=OneHopRoute)


@router.post(
    "/{invoice_id}/payment-link",
    status_code=201,
    response_model=PaymentLink,
    responses=ERRORS,
    summary="Create the invoice's payment link (finalizes a draft; 409 when one exists)",
)
def create_payment_link(
    invoice_id: str,
    auth: Auth,
    session: DbSession,
    runtime: RuntimeDep,
    body: Annotated[PaymentLinkCreate | None, Body()] = None,
) -> PaymentLink:
    view = service.create_payment_link(
        session,
        auth.organization_id,
        invoice_id,
        public_url=runtime.settings.public_url,
        expires_at=(body or PaymentLinkCreate()).expires_at,
        checkout=runtime.checkout_factory(),
    )
    return service.present_link(view.invoice)


@router.get(
    "/{invoice_id}/payment-link",
    response_model=PaymentLink,
    responses=ERRORS,
    summary="The invoice's payment link",
)
def get_payment_link(invoice_id: str, auth: Auth, session: DbSession) -> PaymentLink:
    return service.get_payment_link(session, auth.organization_id, invoice_id)


@router.post(
    "/{invoice_id}/simulate-payment",
    response_model=Invoice,
    responses=ERRORS,
    summary="Sandbox only: pay, decline or part-pay an invoice as a customer would",
)
def simulate_payment(
    invoice_id: str, body: SimulatePayment, auth: Auth, session: DbSession
) -> JSONResponse:
    view = service.simulate_payment(
        session, auth.organization_id, invoice_id, outcome=body.outcome, amount=body.amount
    )
    return JSONResponse(present(view))


stripe_router = APIRouter(tags=["payments"])


@stripe_router.post("/webhooks/stripe", summary="Stripe's webhook (verified with Stripe-Signature)")
async def stripe_webhook(request: Request, runtime: RuntimeDep, session: DbSession) -> JSONResponse:
    settings = runtime.settings
    if not settings.stripe_webhook_secret:
        raise ServiceUnavailable(
            "Stripe webhooks are not configured here", code="stripe_not_configured"
        )
    payload = await request.body()
    try:
        event = verify_signature(
            payload,
            request.headers.get("stripe-signature"),
            secret=settings.stripe_webhook_secret,
            tolerance=settings.stripe_webhook_tolerance_seconds,
            now=int(clock.utcnow().timestamp()),
        )
    except SignatureInvalid as exc:
        raise AppError(
            f"Stripe-Signature rejected: {exc}", code="invalid_signature", param="Stripe-Signature"
        ) from exc
    gateway = runtime.stripe_gateway()
    outcome = await anyio.to_thread.run_sync(
        lambda: service.handle_stripe_event(session, event, gateway=gateway)
    )
    return JSONResponse({"received": True, "outcome": outcome})
