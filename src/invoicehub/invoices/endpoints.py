"""The native invoice API under /v1/invoices: parse, call one service function, shape."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from invoicehub.api.deps import Auth, DbSession, RuntimeDep
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.errors import ValidationFailed
from invoicehub.invoices import service
from invoicehub.invoices.schemas import (
    DuplicateRequest,
    Invoice,
    InvoiceCreate,
    InvoiceList,
    InvoiceListQuery,
    InvoiceUpdate,
    Payment,
    PaymentCreate,
    RefundCreate,
    payment_to_schema,
)
from invoicehub.orgs.service import get_organization_by_id
from invoicehub.payments import service as payments
from invoicehub.web.i18n import Translator, choose_language
from invoicehub.web.invoice_document import invoice_pdf as render_pdf

router = APIRouter(prefix="/v1/invoices", tags=["invoices"], route_class=OneHopRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such invoice in your organization"},
    409: {"description": "The invoice's status does not allow this"},
    422: {"description": "A field is invalid; error.param names it"},
    429: {"description": "Rate limit exceeded"},
}


@router.post(
    "", status_code=201, response_model=Invoice, responses=ERRORS, summary="Create an invoice"
)
def create_invoice(
    body: InvoiceCreate, auth: Auth, session: DbSession, runtime: RuntimeDep
) -> JSONResponse:
    view = service.create_invoice(
        session, auth.organization_id, body, phone_region=runtime.settings.phone_default_region
    )
    return JSONResponse(service.present(view), status_code=201)


@router.get("", response_model=InvoiceList, responses=ERRORS, summary="List invoices, newest first")
def list_invoices(
    auth: Auth, session: DbSession, query: Annotated[InvoiceListQuery, Query()]
) -> JSONResponse:
    includes = {part.strip() for part in (query.include or "").split(",") if part.strip()}
    if includes - {"line_items"}:
        raise ValidationFailed(
            f"include accepts line_items; got {', '.join(sorted(includes))}", param="include"
        )
    for low, high, name in (
        (query.created_from, query.created_to, "created_to"),
        (query.due_from, query.due_to, "due_to"),
    ):
        if low and high and high < low:
            raise ValidationFailed(f"{name} must not be before the start of the range", param=name)
    listed = service.list_invoices(
        session,
        auth.organization_id,
        service.ListQuery(
            limit=query.limit,
            starting_after=query.starting_after,
            ending_before=query.ending_before,
            page=query.page,
            per_page=query.per_page,
            include_lines="line_items" in includes,
            statuses=tuple(query.status or ()),
            customer_email=query.customer_email,
            external_order_id=query.external_order_id,
            text=query.q,
            created_gte=_day_start(query.created_from),
            created_lt=_day_start(query.created_to + dt.timedelta(days=1))
            if query.created_to
            else None,
            due_gte=query.due_from,
            due_lte=query.due_to,
        ),
    )
    return JSONResponse(listed)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@router.get("/{invoice_id}", response_model=Invoice, responses=ERRORS, summary="Get an invoice")
def get_invoice(invoice_id: str, auth: Auth, session: DbSession) -> JSONResponse:
    return JSONResponse(service.read_invoice(session, auth.organization_id, invoice_id))


@router.patch(
    "/{invoice_id}", response_model=Invoice, responses=ERRORS, summary="Update an invoice"
)
def update_invoice(
    invoice_id: str, body: InvoiceUpdate, auth: Auth, session: DbSession, runtime: RuntimeDep
) -> JSONResponse:
    view = service.update_invoice(
        session,
        auth.organization_id,
        invoice_id,
        body,
        phone_region=runtime.settings.phone_default_region,
    )
    return JSONResponse(service.present(view))


@router.post(
    "/{invoice_id}/finalize",
    response_model=Invoice,
    responses=ERRORS,
    summary="Finalize a draft (draft → open)",
)
def finalize_invoice(invoice_id: str, auth: Auth, session: DbSession) -> JSONResponse:
    return JSONResponse(
        service.present(service.finalize_invoice(session, auth.organization_id, invoice_id))
    )


@router.post(
    "/{invoice_id}/cancel",
    response_model=Invoice,
    responses=ERRORS,
    summary="Cancel a draft or unpaid open invoice",
)
def cancel_invoice(invoice_id: str, auth: Auth, session: DbSession) -> JSONResponse:
    return JSONResponse(
        service.present(service.cancel_invoice(session, auth.organization_id, invoice_id))
    )


@router.post(
    "/{invoice_id}/duplicate",
    status_code=201,
    response_model=Invoice,
    responses=ERRORS,
    summary="Copy an invoice into a new one",
)
def duplicate_invoice(
    invoice_id: str,
    auth: Auth,
    session: DbSession,
    body: Annotated[DuplicateRequest | None, Body()] = None,
) -> JSONResponse:
    view = service.duplicate_invoice(
        session, auth.organization_id, invoice_id, status=(body or DuplicateRequest()).status
    )
    return JSONResponse(service.present(view), status_code=201)


@router.post(
    "/{invoice_id}/payments",
    response_model=Invoice,
    responses=ERRORS,
    summary="Record a payment made outside invoicehub",
)
def record_payment(
    invoice_id: str,
    auth: Auth,
    session: DbSession,
    body: Annotated[PaymentCreate | None, Body()] = None,
) -> JSONResponse:
    body = body or PaymentCreate()
    view = service.record_payment(
        session, auth.organization_id, invoice_id, amount=body.amount, reference=body.reference
    )
    return JSONResponse(service.present(view))


@router.get(
    "/{invoice_id}/payments",
    response_model=list[Payment],
    responses=ERRORS,
    summary="Payments and refunds of an invoice",
)
def list_payments(invoice_id: str, auth: Auth, session: DbSession) -> list[Payment]:
    return [
        payment_to_schema(p)
        for p in service.list_payments(session, auth.organization_id, invoice_id)
    ]


@router.post(
    "/{invoice_id}/refunds",
    response_model=Invoice,
    responses=ERRORS,
    summary="Refund a paid invoice, fully or in part",
)
def refund_invoice(
    invoice_id: str,
    auth: Auth,
    session: DbSession,
    runtime: RuntimeDep,
    body: Annotated[RefundCreate | None, Body()] = None,
) -> JSONResponse:
    body = body or RefundCreate()
    # Through the provider that took the payment (Stripe), or recorded as is.
    view = payments.refund(
        session,
        auth.organization_id,
        invoice_id,
        amount=body.amount,
        reason=body.reason,
        gateway=runtime.stripe_gateway(),
    )
    return JSONResponse(service.present(view))


@router.get(
    "/{invoice_id}/pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The invoice as PDF"},
        **ERRORS,
    },
    summary="The invoice as a PDF (lang=en|ru; the customer's language by default)",
)
def invoice_pdf(
    invoice_id: str,
    auth: Auth,
    session: DbSession,
    lang: Annotated[str | None, Query(pattern="^(en|ru)$")] = None,
) -> Response:
    view = service.get_invoice(session, auth.organization_id, invoice_id)
    organization = get_organization_by_id(session, auth.organization_id)
    translator = Translator(choose_language(lang or view.invoice.customer_locale, None))
    return Response(
        render_pdf(view, organization.name, translator),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{view.invoice.number}.pdf"'},
    )
