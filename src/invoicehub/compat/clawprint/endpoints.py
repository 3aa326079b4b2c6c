"""Clawprint's endpoints: translate, call the core services, translate back."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub.api.deps import get_runtime, get_session
from invoicehub.api.runtime import Runtime
from invoicehub.auth import service as auth_service
from invoicehub.auth.service import AuthContext
from invoicehub.compat.clawprint.schemas import (
    CONFLICT,
    DEFAULT_CURRENCY,
    DEFAULT_DUE_DAYS,
    DEFAULT_LIMIT,
    INVALID_AUTHENTICATION,
    INVALID_DATA,
    MAX_LIMIT,
    NOT_FOUND,
    NUMBER_PATTERN,
    PAYMENT_LINK_LIFETIME,
    RATE_LIMITED,
    STATUS_FILTERS,
    STATUS_WORDS,
    STRIPE_ERROR,
    VALIDATION_TITLES,
    BusinessListOut,
    CancelledOut,
    CreateInvoice,
    ErrorOut,
    InvoiceListOut,
    InvoiceOut,
    PaymentLinkOut,
    UpdateInvoice,
    classify,
    loc_of_param,
    status_word,
    wire_loc,
)
from invoicehub.compat.wire import ExactJSONResponse, count_request, iso_date_z, iso_z
from invoicehub.compat.wire import to_decimal_number as number
from invoicehub.errors import AppError, RateLimited, Unauthenticated
from invoicehub.invoices import service as invoices
from invoicehub.invoices.repository import InvoiceRecord
from invoicehub.invoices.schemas import InvoiceCreate, InvoiceUpdate
from invoicehub.invoices.service import InvoiceView, ListQuery
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Invoice, InvoiceLineItem
from invoicehub.orgs import service as orgs
from invoicehub.payments import service as payments
from invoicehub.payments.schemas import PaymentLink

router = APIRouter(prefix="/api")
_bearer = HTTPBearer(
    auto_error=False,
    description="Authorization: Bearer pk_…:sk_… (the organization's public key, a colon, its secret key).",
)

# Core error codes that mean "Stripe is not working here": the document's 500.
_STRIPE_CODES = ("payment_provider_unavailable", "payment_provider_error")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 404, 409, 429, 500)
}


class WireError(Exception):
    """An error already in Clawprint's words."""

    def __init__(self, status: int, title: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.field = field


def authenticate(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthContext:
    if credentials is None:
        raise WireError(401, INVALID_AUTHENTICATION, "send Authorization: Bearer pk_…:sk_…")
    public_key, colon, secret = credentials.credentials.strip().partition(":")
    if not colon or not public_key.strip() or not secret.strip():
        raise WireError(
            401,
            INVALID_AUTHENTICATION,
            "the Bearer token must be your public key and secret key joined by a colon: pk_…:sk_…",
        )
    auth = auth_service.authenticate_secret(session, secret.strip(), public_key=public_key.strip())
    count_request(request, f"key:{auth.public_key}")
    return auth


Auth = Annotated[AuthContext, Depends(authenticate)]
Db = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
M = TypeVar("M", bound=BaseModel)


def _require_business(auth: AuthContext, business_id: str) -> None:
    """A key acts for its own organization only; any other business is unknown to it."""
    if business_id != auth.organization_public_id:
        raise WireError(404, NOT_FOUND, f"no business {business_id}", field="business_id")


def _core_model(model: type[M], values: dict[str, Any]) -> M:
    """The core's request model; its refusals become Clawprint's 400s, naming our fields."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *wire_loc(tuple(error["loc"])))} for error in exc.errors()]
        ) from None


# ---------------------------------------------------------------- presenting


def _link(invoice: Invoice) -> PaymentLink | None:
    return payments.present_link(invoice) if invoice.payment_link_token else None


def link_json(link: PaymentLink) -> dict[str, Any]:
    """A Stripe link is its Checkout Session; the sandbox's is invoicehub's own pay page."""
    return {
        "payment_link_url": link.provider_url or link.url,
        "stripe_invoice_id": link.provider_checkout_id or link.token,
        "expires_at": iso_z(link.expires_at),
    }


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Optional fields are left out when they have no value, as in the document's examples."""
    return {key: value for key, value in fields.items() if value is not None}


def line_json(line: InvoiceLineItem, invoice: Invoice) -> dict[str, Any]:
    cur = currency(invoice.currency)
    return {
        "line_item_id": line.public_id,
        "invoice_id": invoice.public_id,
        "description": line.description,
        "quantity": number(line.quantity),
        "unit_price": number(from_minor(line.unit_price_minor, cur)),
        "type": line.type,
        "tax_rate": number(line.tax_rate),
        "created_at": iso_z(line.created_at),
    }


def invoice_summary(
    invoice: Invoice | InvoiceRecord, business_id: str, *, today: dt.date
) -> dict[str, Any]:
    cur = currency(invoice.currency)
    return {
        "invoice_id": invoice.public_id,
        "business_id": business_id,
        "invoice_number": invoice.number,
        "customer_email": invoice.customer_email,
        "status": status_word(invoice, today=today),
        "amount": number(from_minor(invoice.subtotal_minor, cur)),
        "tax_amount": number(from_minor(invoice.tax_minor, cur)),
        "total_amount": number(from_minor(invoice.total_minor, cur)),
        "currency": invoice.currency,
        "issued_date": iso_date_z(invoice.issue_date),
        "due_date": iso_date_z(invoice.due_date),
        "created_at": iso_z(invoice.created_at),
        "updated_at": iso_z(invoice.updated_at),
    }


def invoice_json(view: InvoiceView, business_id: str) -> dict[str, Any]:
    invoice = view.invoice
    summary = invoice_summary(invoice, business_id, today=clock.today())
    link = _link(invoice)
    shown = link_json(link) if link else {}
    return {
        **{k: summary[k] for k in ("invoice_id", "business_id", "invoice_number")},
        "customer_email": invoice.customer_email,
        **_present({"customer_name": invoice.customer_name}),
        **{k: summary[k] for k in ("status", "amount", "tax_amount", "total_amount", "currency")},
        "issued_date": summary["issued_date"],
        "due_date": summary["due_date"],
        **_present(
            {
                "notes": invoice.notes,
                "payment_terms": invoice.payment_terms,
                "stripe_payment_link": shown.get("payment_link_url"),
                "stripe_invoice_id": shown.get("stripe_invoice_id"),
                "paid_at": iso_z(invoice.paid_at),
                "viewed_at": iso_z(invoice.viewed_at),
            }
        ),
        "line_items": [line_json(line, invoice) for line in view.lines or []],
        "created_at": summary["created_at"],
        "updated_at": summary["updated_at"],
    }


def _known(invoice_id: str) -> str:
    """No invoice id holds a NUL character, and no database may be asked for one."""
    if "\x00" in invoice_id:
        raise WireError(404, NOT_FOUND, "no such invoice")
    return invoice_id


def _view(session: Session, auth: AuthContext, invoice_id: str) -> InvoiceView:
    return invoices.get_invoice(session, auth.organization_id, _known(invoice_id))


# ---------------------------------------------------------------- invoices


@router.post(
    "/invoices",
    status_code=201,
    summary="Create Invoice",
    response_model=None,
    responses={201: {"model": InvoiceOut, "description": "The new invoice, a draft"}, **ERRORS},
)
def create_invoice(body: CreateInvoice, auth: Auth, session: Db) -> ExactJSONResponse:
    _require_business(auth, body.business_id)
    issued = body.issued_date or clock.today()
    data = _core_model(
        InvoiceCreate,
        {
            "currency": body.currency or DEFAULT_CURRENCY,
            "customer": {"name": body.customer_name, "email": body.customer_email},
            "line_items": [
                item.model_dump(exclude_none=True, exclude_unset=True) for item in body.line_items
            ],
            "number": body.invoice_number,
            "issue_date": issued,
            "due_date": body.due_date or issued + dt.timedelta(days=DEFAULT_DUE_DAYS),
            "notes": body.notes,
            "payment_terms": body.payment_terms,
        },
    )
    view = invoices.create_invoice(
        session, auth.organization_id, data, number_pattern=NUMBER_PATTERN
    )
    return ExactJSONResponse(invoice_json(view, auth.organization_public_id), status_code=201)


@router.get(
    "/invoices",
    summary="List Invoices",
    response_model=None,
    responses={200: {"model": InvoiceListOut, "description": "Newest first"}, **ERRORS},
)
def list_invoices(
    auth: Auth,
    session: Db,
    business_id: Annotated[str, Query(min_length=1, description="Business ID to filter by.")],
    status: Annotated[str | None, Query(description=f"One of {', '.join(STATUS_WORDS)}.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Max results (1-100, default 50).")
    ] = DEFAULT_LIMIT,
) -> ExactJSONResponse:
    _require_business(auth, business_id)
    word = status or None
    if word is not None and word not in STATUS_WORDS:
        raise WireError(
            400, INVALID_DATA, f"status must be one of {', '.join(STATUS_WORDS)}", field="status"
        )
    if word is not None and word not in STATUS_FILTERS:
        raise WireError(
            400, INVALID_DATA, f"filtering by status={word} is not available yet", field="status"
        )
    page = invoices.find_invoices(
        session,
        auth.organization_id,
        ListQuery(limit=limit, **(STATUS_FILTERS[word] if word else {})),
    )
    today = clock.today()
    rows = [invoice_summary(row, business_id, today=today) for row in page.rows]
    return ExactJSONResponse(
        {
            "invoices": rows,
            "count": len(rows),
            "business_id": business_id,
            "filter": _present({"status": word, "limit": limit}),
        }
    )


@router.get(
    "/invoices/{invoice_id}",
    summary="Get Invoice",
    response_model=None,
    responses={200: {"model": InvoiceOut, "description": "The invoice"}, **ERRORS},
)
def get_invoice(invoice_id: str, auth: Auth, session: Db) -> ExactJSONResponse:
    return ExactJSONResponse(
        invoice_json(_view(session, auth, invoice_id), auth.organization_public_id)
    )


@router.patch(
    "/invoices/{invoice_id}",
    summary="Update Invoice",
    response_model=None,
    responses={200: {"model": InvoiceOut, "description": "The updated invoice"}, **ERRORS},
)
def update_invoice(
    invoice_id: str, body: UpdateInvoice, auth: Auth, session: Db, runtime: RuntimeDep
) -> ExactJSONResponse:
    view = _view(session, auth, invoice_id)
    given = body.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("due_date", "notes", "payment_terms")
        if name in given
    }
    if "customer_email" in given or "customer_name" in given:
        changes["customer"] = _customer(view.invoice, body, given)
    if changes:
        view = invoices.update_invoice(
            session, auth.organization_id, invoice_id, _core_model(InvoiceUpdate, changes)
        )
    if body.status is not None:
        view = _set_status(session, auth, runtime, view, body.status)
    return ExactJSONResponse(invoice_json(view, auth.organization_public_id))


def _customer(invoice: Invoice, body: UpdateInvoice, given: set[str]) -> dict[str, Any]:
    """The core replaces the whole customer; keep what Clawprint cannot see or send."""
    if "customer_email" in given and body.customer_email is None:
        raise RequestValidationError(
            [{"loc": ("body", "customer_email"), "type": "missing", "input": None, "msg": ""}]
        )
    return {
        "name": body.customer_name if "customer_name" in given else invoice.customer_name,
        "email": body.customer_email if "customer_email" in given else invoice.customer_email,
        "phone": invoice.customer_phone,
        "telegram_user_id": invoice.customer_telegram_user_id,
        "locale": invoice.customer_locale,
    }


def _set_status(
    session: Session, auth: AuthContext, runtime: Runtime, view: InvoiceView, target: str
) -> InvoiceView:
    """A status word set by hand, as the core move it means. Setting the status an invoice
    already shows changes nothing."""
    organization_id, invoice_id = auth.organization_id, view.invoice.public_id
    current = status_word(view.invoice, today=clock.today())
    if target == current:
        return view
    if target == "sent":
        return invoices.finalize_invoice(session, organization_id, invoice_id)
    if target == "paid":
        if view.invoice.status == InvoiceStatus.DRAFT:  # paid before it was sent
            invoices.finalize_invoice(session, organization_id, invoice_id)
        return invoices.record_payment(session, organization_id, invoice_id)
    if target == "refunded":
        return payments.refund(
            session,
            organization_id,
            invoice_id,
            amount=None,
            reason=None,
            gateway=runtime.stripe_gateway(),
        )
    if target == "cancelled":
        return invoices.cancel_invoice(session, organization_id, invoice_id)
    if target == "draft":
        raise WireError(
            409, CONFLICT, f"invoice {invoice_id} is {current}; it cannot go back to draft"
        )
    raise WireError(
        400,
        INVALID_DATA,
        f"status {target} is not set by hand: an invoice becomes viewed when the customer "
        "opens its payment link, and overdue when its due date passes unpaid",
        field="status",
    )


@router.delete(
    "/invoices/{invoice_id}",
    summary="Delete/Cancel Invoice",
    response_model=None,
    responses={200: {"model": CancelledOut, "description": "Cancelled (soft delete)"}, **ERRORS},
)
def cancel_invoice(invoice_id: str, auth: Auth, session: Db) -> ExactJSONResponse:
    view = _view(session, auth, invoice_id)
    if status_word(view.invoice, today=clock.today()) != "cancelled":
        invoices.cancel_invoice(session, auth.organization_id, invoice_id)
    return ExactJSONResponse(
        {"message": "Invoice cancelled successfully", "invoice_id": view.invoice.public_id}
    )


# ---------------------------------------------------------------- payment links


@router.post(
    "/invoices/{invoice_id}/payment-link",
    status_code=201,
    summary="Generate Stripe Payment Link",
    response_model=None,
    responses={201: {"model": PaymentLinkOut, "description": "The new link"}, **ERRORS},
)
def create_payment_link(
    invoice_id: str, auth: Auth, session: Db, runtime: RuntimeDep
) -> ExactJSONResponse:
    view = payments.create_payment_link(
        session,
        auth.organization_id,
        _known(invoice_id),
        public_url=runtime.settings.public_url,
        expires_at=clock.utcnow() + PAYMENT_LINK_LIFETIME,
        checkout=runtime.checkout_factory(),
    )
    return ExactJSONResponse(link_json(payments.present_link(view.invoice)), status_code=201)


@router.get(
    "/invoices/{invoice_id}/payment-link",
    summary="Get Payment Link",
    response_model=None,
    responses={200: {"model": PaymentLinkOut, "description": "The invoice's link"}, **ERRORS},
)
def get_payment_link(invoice_id: str, auth: Auth, session: Db) -> ExactJSONResponse:
    link = payments.get_payment_link(session, auth.organization_id, _known(invoice_id))
    return ExactJSONResponse(link_json(link))


# ---------------------------------------------------------------- businesses


@router.get(
    "/businesses",
    summary="List Businesses",
    response_model=None,
    responses={200: {"model": BusinessListOut, "description": "What this key acts for"}, **ERRORS},
)
def list_businesses(auth: Auth, session: Db) -> ExactJSONResponse:
    organization = orgs.get_organization_by_id(session, auth.organization_id)
    business = {
        "business_id": organization.public_id,
        "name": organization.name,
        "created_at": iso_z(organization.created_at),
        "updated_at": iso_z(organization.updated_at),
    }
    return ExactJSONResponse({"businesses": [business], "count": 1})


# ---------------------------------------------------------------- errors


def _error(
    status: int,
    title: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> ExactJSONResponse:
    return ExactJSONResponse(
        {"error": title, "message": message, "field": field}, status_code=status, headers=headers
    )


def _validation_answer(found: list[tuple[str, str, str | None]]) -> ExactJSONResponse:
    title = min((f[0] for f in found), key=VALIDATION_TITLES.index)
    same = [f for f in found if f[0] == title]
    message = "; ".join(dict.fromkeys(f[1] for f in same))
    return _error(400, title, message, same[0][2])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WireError)
    async def wire_error(_request: Request, exc: WireError) -> ExactJSONResponse:
        return _error(exc.status, exc.title, exc.message, exc.field)

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> ExactJSONResponse:
        if isinstance(exc, RateLimited):
            return _error(429, RATE_LIMITED, exc.message, headers=exc.headers)
        if isinstance(exc, Unauthenticated):
            return _error(401, INVALID_AUTHENTICATION, exc.message)
        if exc.code in _STRIPE_CODES:
            return _error(500, STRIPE_ERROR, exc.message)
        if exc.status_code == 404:
            return _error(404, NOT_FOUND, exc.message)
        if exc.status_code == 409:
            return _error(409, CONFLICT, exc.message)
        if exc.status_code in (400, 422):
            loc = wire_loc(loc_of_param(exc.param)) if exc.param else ()
            title, _, field = classify(loc, "invalid", exc.param, exc.message)
            if not loc:
                title = INVALID_DATA
            return _error(400, title, exc.message, field)
        return _error(exc.status_code, HTTPStatus(exc.status_code).phrase, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> ExactJSONResponse:
        found = []
        for error in exc.errors():
            loc = tuple(error.get("loc", ()))
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            found.append(
                classify(loc, str(error.get("type")), error.get("input"), str(error.get("msg")))
            )
        return _validation_answer(found or [(INVALID_DATA, "invalid request", None)])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ExactJSONResponse:
        if exc.status_code == 404:
            return _error(404, NOT_FOUND, f"no such endpoint: {request.method} {request.url.path}")
        return _error(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))
