"""Native API for payment links and sandbox simulation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from invoicehub.api.deps import Auth, DbSession, RuntimeDep
from invoicehub.invoices.endpoints import ERRORS
from invoicehub.invoices.schemas import Invoice
from invoicehub.invoices.service import present
from invoicehub.payments import service
from invoicehub.payments.schemas import PaymentLink, PaymentLinkCreate, SimulatePayment

router = APIRouter(prefix="/v1/invoices", tags=["payments"])


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
