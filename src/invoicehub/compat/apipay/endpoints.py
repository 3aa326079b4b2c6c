"""ApiPay's endpoints: translate, call the core services, translate back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub.api.deps import get_runtime, get_session
from invoicehub.api.runtime import Runtime
from invoicehub.auth import service as auth_service
from invoicehub.auth.service import AuthContext
from invoicehub.compat.apipay.schemas import MESSAGES, STATUS_FILTERS, STATUS_WORDS, CreateInvoice
from invoicehub.compat.wire import count_request, iso_z
from invoicehub.errors import (
    AppError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from invoicehub.invoices import service as invoices
from invoicehub.invoices.repository import InvoiceRecord
from invoicehub.invoices.schemas import CustomerIn, InvoiceCreate, LineItemIn
from invoicehub.invoices.service import InvoiceView, ListQuery
from invoicehub.kit.money import currency, format_amount
from invoicehub.kit.phones import to_kz_national
from invoicehub.models import Invoice
from invoicehub.payments import service as payments
from invoicehub.webhooks import service as webhooks

router = APIRouter(prefix="/api")
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Your ApiPay API key (an invoicehub sk_… key)."
)

KZT = currency("KZT")
KASPI_ID_BASE = 10_000_000_000  # kaspi_invoice_id: a stable 11-digit number per invoice


class BadRequest(AppError):
    status_code = 400


def authenticate(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    key: Annotated[str | None, Depends(_api_key)],
) -> AuthContext:
    if not key:
        raise Unauthenticated("Unauthenticated.")
    auth = auth_service.authenticate_secret(session, key.strip())
    count_request(request, f"key:{auth.public_key}")
    return auth


Auth = Annotated[AuthContext, Depends(authenticate)]
Db = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _amount(invoice: Invoice | InvoiceRecord) -> str:
    return format_amount(invoice.total_minor, currency(invoice.currency))


def _status(invoice: Invoice | InvoiceRecord) -> str:
    return STATUS_WORDS[invoice.status]  # type: ignore[index]


def invoice_summary(invoice: Invoice | InvoiceRecord) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "amount": _amount(invoice),
        "status": _status(invoice),
        "description": invoice.description,
        "created_at": iso_z(invoice.created_at),
        "paid_at": iso_z(invoice.paid_at),
    }


def invoice_detail(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "kaspi_invoice_id": str(KASPI_ID_BASE + invoice.id),
        "amount": _amount(invoice),
        "status": _status(invoice),
        "description": invoice.description,
        "external_order_id": invoice.external_order_id,
        "client_name": invoice.customer_name,
        "client_phone": to_kz_national(invoice.customer_phone) if invoice.customer_phone else None,
        "created_at": iso_z(invoice.created_at),
        "paid_at": iso_z(invoice.paid_at),
    }


@router.post("/invoices", status_code=201, summary="Create Invoice")
def create_invoice(
    body: CreateInvoice, auth: Auth, session: Db, runtime: RuntimeDep
) -> JSONResponse:
    if not auth.organization_verified:
        raise Forbidden(
            "Your organization is not verified. Complete verification in Dashboard → Verification before creating invoices."
        )
    webhook_id = (
        webhooks.endpoint_public_id_for_number(session, auth.organization_id, body.webhook_id)
        if body.webhook_id is not None
        else None
    )
    view = invoices.create_invoice(
        session,
        auth.organization_id,
        InvoiceCreate(
            currency="KZT",
            customer=CustomerIn(phone=body.phone_number),
            line_items=[
                LineItemIn(description=body.description or "Payment", unit_price=body.amount)
            ],
            description=body.description,
            external_order_id=body.external_order_id,
            webhook_id=webhook_id,
            status="open",
        ),
        phone_region="KZ",
    )
    linked = payments.create_payment_link(
        session,
        auth.organization_id,
        view.invoice.public_id,
        public_url=runtime.settings.public_url,
    ).invoice
    return JSONResponse(
        {
            "id": linked.id,
            "kaspi_invoice_id": str(KASPI_ID_BASE + linked.id),
            "kaspi_qr_token": linked.payment_link_token,
            "payment_url": linked.payment_url,
            "amount": _amount(linked),
            "status": _status(linked),
            "description": linked.description,
            "external_order_id": linked.external_order_id,
            "created_at": iso_z(linked.created_at),
        },
        status_code=201,
    )


@router.get("/invoices", summary="List Invoices")
def list_invoices(
    auth: Auth,
    session: Db,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 10,
    search: Annotated[str | None, Query(max_length=100)] = None,
    statuses: Annotated[list[str] | None, Query(alias="status[]")] = None,
    date_from: Annotated[str | None, Query()] = None,
    date_to: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    unknown = [s for s in statuses or [] if s not in STATUS_FILTERS]
    if unknown:
        raise ValidationFailed("The selected status is invalid.", param="status")
    start, end = _date(date_from, "date_from"), _date(date_to, "date_to")
    if start and end and end < start:
        raise ValidationFailed(
            "The date to field must be a date after or equal to date from.", param="date_to"
        )
    page_of = invoices.find_invoices(
        session,
        auth.organization_id,
        ListQuery(
            page=page,
            per_page=per_page,
            statuses=tuple(core for word in statuses or [] for core in STATUS_FILTERS[word]),
            text=search or None,
            created_gte=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC) if start else None,
            created_lt=dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
            if end
            else None,
        ),
    )
    return JSONResponse(
        {
            "data": [invoice_summary(row) for row in page_of.rows],
            "meta": {"current_page": page, "per_page": per_page, "total": page_of.total},
        }
    )


def _date(value: str | None, field: str) -> dt.date | None:
    if value is None or value == "":
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC).date()
    except ValueError:
        raise ValidationFailed(
            f"The {field.replace('_', ' ')} field must match the format Y-m-d.", param=field
        ) from None


def _view(session: Session, auth: AuthContext, invoice_id: int) -> InvoiceView:
    try:
        return invoices.get_invoice_by_internal_id(session, auth.organization_id, invoice_id)
    except NotFound:
        raise NotFound("Invoice not found.") from None


@router.get("/invoices/{invoice_id}", summary="Get Invoice")
def get_invoice(invoice_id: int, auth: Auth, session: Db) -> JSONResponse:
    return JSONResponse(invoice_detail(_view(session, auth, invoice_id).invoice))


@router.post("/invoices/{invoice_id}/cancel", summary="Cancel Invoice")
def cancel_invoice(invoice_id: int, auth: Auth, session: Db) -> JSONResponse:
    invoice = _view(session, auth, invoice_id).invoice
    if STATUS_WORDS[invoice.status] != "pending":  # type: ignore[index]
        raise BadRequest(
            f"Invoice cannot be cancelled: it is {_status(invoice)}, only pending invoices can be."
        )
    try:
        cancelled = invoices.cancel_invoice(
            session, auth.organization_id, invoice.public_id
        ).invoice
    except AppError as exc:  # e.g. a payment is in progress, or part of it was paid
        raise BadRequest(f"Invoice cannot be cancelled: {exc.message}") from exc
    return JSONResponse(
        {
            "id": cancelled.id,
            "status": _status(cancelled),
            "cancelled_at": iso_z(cancelled.cancelled_at),
        }
    )


@router.post("/invoices/{invoice_id}/refund", summary="Refund Invoice")
def refund_invoice(invoice_id: int, auth: Auth, session: Db, runtime: RuntimeDep) -> JSONResponse:
    invoice = _view(session, auth, invoice_id).invoice
    if _status(invoice) != "paid":
        raise BadRequest(
            f"Invoice cannot be refunded: it is {_status(invoice)}, only paid invoices can be."
        )
    refunded = payments.refund(
        session,
        auth.organization_id,
        invoice.public_id,
        amount=None,
        reason=None,
        gateway=runtime.stripe_gateway(),
    ).invoice
    return JSONResponse(
        {"id": refunded.id, "status": _status(refunded), "refunded_at": iso_z(refunded.refunded_at)}
    )


def _laravel(
    status: int,
    message: str,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        if isinstance(exc, RateLimited):
            return _laravel(429, "Too Many Attempts.")
        if exc.status_code == 422 and exc.param:
            return _laravel(422, exc.message, {exc.param: [exc.message]})
        return _laravel(exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
            field = ".".join(loc) or "body"
            template = MESSAGES.get(str(error.get("type")), "The {field} field is invalid.")
            context = {k: v for k, v in (error.get("ctx") or {}).items()}
            errors.setdefault(field, []).append(
                template.format(field=field.replace("_", " "), **context)
            )
        first = next(iter(errors.values()))[0]
        extra = sum(len(v) for v in errors.values()) - 1
        message = (
            first if extra == 0 else f"{first} (and {extra} more error{'s' if extra > 1 else ''})"
        )
        return _laravel(422, message, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _laravel(
            exc.status_code, "Not Found." if exc.status_code == 404 else str(exc.detail)
        )
