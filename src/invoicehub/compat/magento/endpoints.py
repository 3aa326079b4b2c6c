"""The Magento hub's read API: translate the query, call the core services, shape the answer.

Every answer is the hub's envelope: ``{"success": true, "data": {...}, "message": null,
"status": 200}``, or ``{"success": false, "error_code", "message", "status"}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, Field
from sqlalchemy.orm import Session

from invoicehub.api.deps import get_session
from invoicehub.auth import service as auth_service
from invoicehub.auth.service import AuthContext
from invoicehub.compat.magento.importer import SOURCE
from invoicehub.compat.magento.schemas import (
    DEFAULT_PER_PAGE,
    MAX_ID,
    MAX_PER_PAGE,
    STATE_FILTERS,
    UNAUTHORIZED_MESSAGE,
    ErrorEnvelope,
    InvoiceEnvelope,
    InvoiceListEnvelope,
    OrderEnvelope,
    OrderListEnvelope,
    StateWord,
)
from invoicehub.compat.magento.shapes import (
    invoice_object,
    ok,
    order_object,
    pagination,
)
from invoicehub.compat.wire import count_request
from invoicehub.errors import NotFound, Unauthenticated, ValidationFailed
from invoicehub.invoices import service as invoices
from invoicehub.invoices.service import ListQuery
from invoicehub.models import Invoice, InvoiceLineItem, Order, Store
from invoicehub.orders import service as orders

router = APIRouter(prefix="/api/v1")
_bearer = HTTPBearer(
    auto_error=False,
    description="Authorization: Bearer sk_… (your organization's secret key: one tenant).",
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "UNAUTHORIZED"},
    422: {"model": ErrorEnvelope, "description": "VALIDATION_ERROR"},
    429: {"model": ErrorEnvelope, "description": "RATE_LIMIT_EXCEEDED"},
}


def authenticate(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthContext:
    """A Bearer token scoped to one tenant: the organization's secret key."""
    if bearer is None or not bearer.credentials.strip():
        raise Unauthenticated(UNAUTHORIZED_MESSAGE)
    try:
        auth = auth_service.authenticate_secret(session, bearer.credentials.strip())
    except Unauthenticated:
        raise Unauthenticated(UNAUTHORIZED_MESSAGE) from None
    count_request(request, f"key:{auth.public_key}")
    return auth


Auth = Annotated[AuthContext, Depends(authenticate)]
Db = Annotated[Session, Depends(get_session)]


def _blank_is_absent(value: Any) -> Any:
    # Laravel reads ``?state=`` as no filter at all; clients built for it send such URLs.
    return None if isinstance(value, str) and not value.strip() else value


Blank = BeforeValidator(_blank_is_absent)
# Constraints sit on the value, not on the optional parameter, so an absent one passes.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PageNumber = Annotated[int, Field(ge=1, le=MAX_ID)]
PageSize = Annotated[int, Field(ge=1)]
Email = Annotated[str, Field(max_length=320)]
Moment = Annotated[str, Field(max_length=40)]
Includes = Annotated[str, Field(max_length=200)]


# ------------------------------------------------------------------ parsing


def _includes(raw: str | None, allowed: tuple[str, ...]) -> set[str]:
    names = {part.strip() for part in (raw or "").split(",") if part.strip()}
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"The selected include is invalid: {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}.",
            param="include",
        )
    return names


def _moment(raw: str | None, field: str) -> tuple[dt.datetime, bool] | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise); True when date-only."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        if len(text) <= 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC), True
        moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValidationFailed(
            f"The {field.replace('_', ' ')} field must be an ISO 8601 date "
            '("2024-01-31") or date-time ("2024-01-31T23:59:59Z").',
            param=field,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC), False
    except OverflowError:
        raise ValidationFailed(
            f"The {field.replace('_', ' ')} field is out of range.", param=field
        ) from None


def _invoiced_range(
    date_from: str | None, date_to: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """date_from is inclusive; date_to is inclusive too: a date runs to the end of its day,
    a date-time to that instant."""
    start = _moment(date_from, "date_from")
    end = _moment(date_to, "date_to")
    gte = start[0] if start else None
    lt = None
    if end is not None:
        moment, date_only = end
        try:
            lt = moment + (dt.timedelta(days=1) if date_only else dt.timedelta(microseconds=1))
        except OverflowError:
            lt = None  # the end of time: no upper bound
        if gte is not None and lt is not None and lt <= gte:
            raise ValidationFailed(
                "The date to field must be a date after or equal to date from.", param="date_to"
            )
    return gte, lt


# ------------------------------------------------------------------ invoices


@router.get(
    "/invoices",
    summary="List Invoices",
    response_model=InvoiceListEnvelope,
    responses=ERRORS,
)
def list_invoices(
    auth: Auth,
    session: Db,
    state: Annotated[
        StateWord | None,
        Blank,
        Query(description="Filter by invoice state (`paid`, `open`, `canceled`)."),
    ] = None,
    order_id: Annotated[Id | None, Blank, Query(description="Filter by internal order ID.")] = None,
    customer_email: Annotated[
        Email | None,
        Blank,
        Query(description="Filter by customer email (partial match)."),
    ] = None,
    date_from: Annotated[
        Moment | None,
        Blank,
        Query(description="Invoices from this date (ISO 8601), inclusive."),
    ] = None,
    date_to: Annotated[
        Moment | None,
        Blank,
        Query(description="Invoices until this date (ISO 8601), inclusive."),
    ] = None,
    per_page: Annotated[
        PageSize | None, Blank, Query(description="Results per page (default: 15, max: 100).")
    ] = None,
    page: Annotated[
        PageNumber | None, Blank, Query(description="Page number (default: 1).")
    ] = None,
    include: Annotated[
        Includes | None,
        Blank,
        Query(description="Relationships to include: `items`."),
    ] = None,
) -> JSONResponse:
    with_items = "items" in _includes(include, ("items",))
    gte, lt = _invoiced_range(date_from, date_to)
    size = min(per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    number = page or 1
    found = invoices.find_invoices(
        session,
        auth.organization_id,
        ListQuery(
            page=number,
            per_page=size,
            statuses=STATE_FILTERS[state] if state else (),
            customer_email=customer_email.strip() if customer_email else None,
            source=SOURCE,
            order_id=order_id,
            invoiced_gte=gte,
            invoiced_lt=lt,
            include_lines=with_items,
        ),
    )
    orders_by_id, stores_by_id = orders.orders_and_stores(session, auth.organization_id, found.rows)
    rows = [
        invoice_object(
            row, orders_by_id, stores_by_id, found.lines.get(row.id, []) if with_items else None
        )
        for row in found.rows
    ]
    return ok(
        {
            "invoices": rows,
            "pagination": pagination(number, size, found.total or 0, len(rows)),
        }
    )


def _invoice_by_increment(
    session: Session, organization_id: int, increment_id: str
) -> tuple[Invoice, list[InvoiceLineItem]]:
    """The invoice whose Magento number is exactly ``increment_id``.

    The core has no read by number yet, so this narrows with its text search (which also
    matches longer numbers containing this one) and keeps the exact match."""
    page = 1
    while True:
        found = invoices.find_invoices(
            session,
            organization_id,
            ListQuery(page=page, per_page=MAX_PER_PAGE, text=increment_id, source=SOURCE),
        )
        for row in found.rows:
            if row.number == increment_id:
                view = invoices.get_invoice(session, organization_id, row.public_id)
                return view.invoice, view.lines or []
        if not found.has_more:
            raise NotFound(
                f"No invoice found with increment ID: {increment_id}",
                param="increment_id",
                code="invoice_not_found",
            )
        page += 1


@router.get(
    "/invoices/{increment_id}",
    summary="Get Single Invoice",
    response_model=InvoiceEnvelope,
    responses={**ERRORS, 404: {"model": ErrorEnvelope, "description": "INVOICE_NOT_FOUND"}},
)
def get_invoice(increment_id: str, auth: Auth, session: Db) -> JSONResponse:
    invoice, lines = _invoice_by_increment(session, auth.organization_id, increment_id)
    orders_by_id, stores_by_id = orders.orders_and_stores(session, auth.organization_id, [invoice])
    return ok({"invoice": invoice_object(invoice, orders_by_id, stores_by_id, lines)})


# ------------------------------------------------------------------ orders


def _stores_of(session: Session, organization_id: int, rows: Sequence[Order]) -> dict[int, Store]:
    # The core reads stores through the invoices that point at them; unsaved stand-ins
    # (never added to the session) carry the orders' store ids to that read.
    stand_ins = [Invoice(order_id=None, store_id=row.store_id) for row in rows if row.store_id]
    return orders.orders_and_stores(session, organization_id, stand_ins)[1]


def _with_invoices(
    session: Session, organization_id: int, order: Order, body: dict[str, Any], *, items: bool
) -> dict[str, Any]:
    rows = orders.invoices_of_order(session, organization_id, order)
    orders_by_id, stores_by_id = orders.orders_and_stores(session, organization_id, rows)
    body["invoices"] = [
        invoice_object(
            row,
            orders_by_id,
            stores_by_id,
            (invoices.get_invoice(session, organization_id, row.public_id).lines or [])
            if items
            else None,
        )
        for row in rows
    ]
    return body


ORDER_INCLUDES = ("invoices", "invoices.items")


@router.get("/orders", summary="List Orders", response_model=OrderListEnvelope, responses=ERRORS)
def list_orders(
    auth: Auth,
    session: Db,
    per_page: Annotated[
        PageSize | None, Blank, Query(description="Results per page (default: 15, max: 100).")
    ] = None,
    page: Annotated[
        PageNumber | None, Blank, Query(description="Page number (default: 1).")
    ] = None,
    include: Annotated[
        Includes | None,
        Blank,
        Query(description="`invoices` (and `invoices.items` with their items)."),
    ] = None,
) -> JSONResponse:
    names = _includes(include, ORDER_INCLUDES)
    size = min(per_page or DEFAULT_PER_PAGE, MAX_PER_PAGE)
    number = page or 1
    found = orders.list_orders(session, auth.organization_id, page=number, per_page=size)
    stores = _stores_of(session, auth.organization_id, found.rows)
    rows = []
    for order in found.rows:
        body = order_object(order, stores.get(order.store_id) if order.store_id else None)
        if names:
            body = _with_invoices(
                session, auth.organization_id, order, body, items="invoices.items" in names
            )
        rows.append(body)
    return ok({"orders": rows, "pagination": pagination(number, size, found.total, len(rows))})


@router.get(
    "/orders/{increment_id}",
    summary="Get Single Order",
    response_model=OrderEnvelope,
    responses={**ERRORS, 404: {"model": ErrorEnvelope, "description": "ORDER_NOT_FOUND"}},
)
def get_order(
    increment_id: str,
    auth: Auth,
    session: Db,
    include: Annotated[
        Includes | None,
        Blank,
        Query(description="`invoices` (and `invoices.items` with their items)."),
    ] = None,
) -> JSONResponse:
    names = _includes(include, ORDER_INCLUDES)
    order = orders.get_order_by_increment(session, auth.organization_id, increment_id)
    stores = _stores_of(session, auth.organization_id, [order])
    body = order_object(order, stores.get(order.store_id) if order.store_id else None)
    if names:
        body = _with_invoices(
            session, auth.organization_id, order, body, items="invoices.items" in names
        )
    return ok({"order": body})
