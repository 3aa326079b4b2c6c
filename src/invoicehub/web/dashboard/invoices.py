"""Invoice pages: the list with filters and CSV export, one invoice with its timeline and
actions, and the new/edit form. Every change is one call to the invoice services."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from invoicehub.errors import AppError, ValidationFailed
from invoicehub.events import service as events
from invoicehub.invoices import service as invoices
from invoicehub.invoices import states
from invoicehub.invoices.repository import InvoiceRecord
from invoicehub.invoices.schemas import InvoiceCreate, InvoiceUpdate, is_overdue
from invoicehub.kit import clock
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Invoice
from invoicehub.orgs.service import get_organization_by_id
from invoicehub.payments import service as payments
from invoicehub.reports.schemas import csv_text
from invoicehub.users.service import DashboardContext
from invoicehub.web.dashboard.common import (
    Ctx,
    FormCtx,
    db,
    error_page,
    invalid_input,
    parse_day,
    render,
    runtime_of,
    see_other,
    translator,
)
from invoicehub.web.invoice_document import invoice_pdf
from invoicehub.webhooks import service as webhooks

router = APIRouter()

PAGE_SIZE = 25
CSV_PAGE = 500
CSV_MOST_ROWS = 100_000
MONEY_SAMPLE = 123_456_789  # minor units: every digit group and the decimals show
CURRENCIES = ("USD", "EUR", "GBP", "KZT", "RUB", "CAD", "AUD", "JPY", "KWD")
STATUS_FILTERS = ("draft", "open", "overdue", "processing", "paid", "partially_refunded",
                  "refunded", "cancelled", "expired")  # fmt: skip


# ------------------------------------------------------------------ the list


def _list_query(
    status: list[str],
    customer: str | None,
    q: str | None,
    created_from: str | None,
    created_to: str | None,
    due_from: str | None,
    due_to: str | None,
    *,
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> invoices.ListQuery:
    created_gte = parse_day(created_from, "created_from")
    created_lte = parse_day(created_to, "created_to")
    return invoices.ListQuery(
        limit=limit,
        starting_after=starting_after or None,
        ending_before=ending_before or None,
        statuses=tuple(s for s in status if s),
        customer_email=customer or None,
        text=q or None,
        created_gte=dt.datetime.combine(created_gte, dt.time(), dt.UTC) if created_gte else None,
        created_lt=(
            dt.datetime.combine(created_lte + dt.timedelta(days=1), dt.time(), dt.UTC)
            if created_lte
            else None
        ),
        due_gte=parse_day(due_from, "due_from"),
        due_lte=parse_day(due_to, "due_to"),
    )


Statuses = Annotated[list[str], Query(max_length=20)]
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/invoices", response_class=HTMLResponse)
def invoice_list(
    request: Request,
    context: Ctx,
    status: Statuses = [],  # noqa: B006 - FastAPI copies query defaults
    customer: Text = None,
    q: Text = None,
    created_from: Text = None,
    created_to: Text = None,
    due_from: Text = None,
    due_to: Text = None,
    starting_after: Text = None,
    ending_before: Text = None,
) -> HTMLResponse:
    filters = {
        "status": status,
        "customer": customer,
        "q": q,
        "created_from": created_from,
        "created_to": created_to,
        "due_from": due_from,
        "due_to": due_to,
    }
    query = _list_query(
        status,
        customer,
        q,
        created_from,
        created_to,
        due_from,
        due_to,
        limit=PAGE_SIZE,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    page = invoices.find_invoices(db(request), context.organization_id, query)
    rows = page.rows
    paging_back = bool(starting_after) or (page.backwards and page.has_more)
    paging_on = bool(rows) and (page.has_more or page.backwards)
    return render(
        request,
        "invoices.html",
        context,
        {
            "rows": rows,
            "filters": filters,
            "status_filters": STATUS_FILTERS,
            "previous": rows[0].public_id if rows and paging_back else None,
            "next": rows[-1].public_id if paging_on else None,
        },
        section="invoices",
    )


@router.get("/invoices.csv")
def invoice_csv(
    request: Request,
    context: Ctx,
    status: Statuses = [],  # noqa: B006
    customer: Text = None,
    q: Text = None,
    created_from: Text = None,
    created_to: Text = None,
    due_from: Text = None,
    due_to: Text = None,
) -> Response:
    """The filtered list, every page of it, walked by the same keyset paging as the table."""
    session = db(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "number", "status", "overdue", "customer_name", "customer_email", "currency",
         "total", "amount_paid", "amount_due", "issue_date", "due_date", "created_at",
         "paid_at"]
    )  # fmt: skip
    cursor: str | None = None
    written = 0
    today = clock.today()
    while True:
        query = _list_query(
            status, customer, q, created_from, created_to, due_from, due_to,
            limit=CSV_PAGE, starting_after=cursor,
        )  # fmt: skip
        page = invoices.find_invoices(session, context.organization_id, query)
        for invoice in page.rows:
            writer.writerow(_csv_row(invoice, today))
        written += len(page.rows)
        if not page.has_more or not page.rows:
            break
        if written >= CSV_MOST_ROWS:
            raise ValidationFailed(
                f"the export stops at {CSV_MOST_ROWS:,} invoices; narrow the filters "
                "(dates or status) and export in parts",
                param="created_from",
                code="export_too_large",
            )
        cursor = page.rows[-1].public_id
    return Response(
        out.getvalue().encode("utf-8-sig"),  # the BOM lets spreadsheets read it as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="invoices.csv"',
            "Cache-Control": "no-store",
        },
    )


def _csv_row(invoice: Invoice | InvoiceRecord, today: dt.date) -> list[str]:
    cur = currency(invoice.currency)

    def amount(minor: int) -> str:
        return format(from_minor(minor, cur), "f")

    return [
        invoice.public_id,
        csv_text(invoice.number),
        invoice.status,
        "true" if is_overdue(invoice, today) else "false",
        csv_text(invoice.customer_name),
        csv_text(invoice.customer_email),
        invoice.currency,
        amount(invoice.total_minor),
        amount(invoice.amount_paid_minor),
        amount(invoice.total_minor - invoice.amount_paid_minor),
        invoice.issue_date.isoformat(),
        invoice.due_date.isoformat(),
        invoice.created_at.isoformat(),
        invoice.paid_at.isoformat() if invoice.paid_at else "",
    ]


# ------------------------------------------------------------------ one invoice


def _timeline(
    request: Request, context: DashboardContext, invoice: Invoice
) -> list[dict[str, Any]]:
    """The invoice's events, oldest first, each with its webhook deliveries."""
    session = db(request)
    found = events.list_events(
        session, context.organization_id, limit=100, object_id=invoice.public_id
    )
    entries = []
    for event in reversed(found.data):
        deliveries = webhooks.list_deliveries(
            session, context.organization_id, event_public_id=event.id, limit=10
        )
        entries.append({"event": event, "deliveries": deliveries.data})
    return entries


def _detail(
    request: Request,
    context: DashboardContext,
    public_id: str,
    *,
    error: AppError | None = None,
    done: str | None = None,
) -> HTMLResponse:
    session = db(request)
    view = invoices.get_invoice(session, context.organization_id, public_id)
    invoice = view.invoice
    qr = (
        segno.make(invoice.payment_url, error="m").svg_inline(scale=3, dark="#111", light="#fff")
        if invoice.payment_url
        else None
    )
    return render(
        request,
        "invoice.html",
        context,
        {
            "invoice": invoice,
            "lines": view.lines or [],
            "payments": invoices.list_payments(session, context.organization_id, public_id),
            "timeline": _timeline(request, context, invoice),
            "actions": states.available_actions(
                invoice.status,
                amount_paid_minor=invoice.amount_paid_minor,
                amount_refunded_minor=invoice.amount_refunded_minor,
                has_link=bool(invoice.payment_url),
            ),
            "qr_svg": qr,
            "error": error,
            "done": done or request.query_params.get("done"),
            "amount_due": invoice.total_minor - invoice.amount_paid_minor,
            "refundable": invoice.amount_paid_minor - invoice.amount_refunded_minor,
            "quantum": str(currency(invoice.currency).quantum),
        },
        status=error.status_code if error else 200,
        section="invoices",
    )


@router.get("/invoices/new", response_class=HTMLResponse, name="dashboard_new_invoice")
def new_invoice_form(request: Request, context: Ctx) -> HTMLResponse:
    return _form_page(request, context, invoice_form())


@router.get("/invoices/{public_id}", response_class=HTMLResponse)
def invoice_page(request: Request, context: Ctx, public_id: str) -> HTMLResponse:
    return _detail(request, context, public_id)


@router.get("/invoices/{public_id}/invoice.pdf")
def invoice_pdf_file(request: Request, context: Ctx, public_id: str) -> Response:
    view = invoices.get_invoice(db(request), context.organization_id, public_id)
    body = invoice_pdf(view, context.organization_name, translator(request, context))
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{view.invoice.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


def _act(
    request: Request,
    context: DashboardContext,
    public_id: str,
    done: str,
    action: Callable[[], str | None],
) -> Response:
    """Runs one service call; success goes back to the invoice (or the one it names), a
    refusal shows the invoice again with the reason and the refusal's status."""
    try:
        target = action() or public_id
    except AppError as error:
        if error.status_code == 404:
            return error_page(request, error)
        return _detail(request, context, public_id, error=error)
    return see_other(f"/invoices/{target}", done=done)


def _amount(value: str, param: str) -> Decimal | None:
    value = value.strip()
    if not value:
        return None
    try:
        return Decimal(value.replace(" ", "").replace(",", "."))
    except ArithmeticError:
        raise ValidationFailed(f"{param} must be a number, like 100.50", param=param) from None


@router.post("/invoices/{public_id}/finalize", response_model=None)
def finalize(request: Request, context: FormCtx, public_id: str) -> Response:
    def run() -> None:
        invoices.finalize_invoice(db(request), context.organization_id, public_id)

    return _act(request, context, public_id, "finalized", run)


@router.post("/invoices/{public_id}/cancel", response_model=None)
def cancel(request: Request, context: FormCtx, public_id: str) -> Response:
    def run() -> None:
        invoices.cancel_invoice(db(request), context.organization_id, public_id)

    return _act(request, context, public_id, "cancelled", run)


@router.post("/invoices/{public_id}/duplicate", response_model=None)
def duplicate(request: Request, context: FormCtx, public_id: str) -> Response:
    def run() -> str:
        copy = invoices.duplicate_invoice(db(request), context.organization_id, public_id)
        return copy.invoice.public_id

    return _act(request, context, public_id, "duplicated", run)


@router.post("/invoices/{public_id}/payment-link", response_model=None)
def payment_link(request: Request, context: FormCtx, public_id: str) -> Response:
    runtime = runtime_of(request)

    def run() -> None:
        payments.create_payment_link(
            db(request),
            context.organization_id,
            public_id,
            public_url=runtime.settings.public_url,
            checkout=runtime.checkout_factory(),
        )

    return _act(request, context, public_id, "link_created", run)


@router.post("/invoices/{public_id}/payments", response_model=None)
def record_payment(
    request: Request,
    context: FormCtx,
    public_id: str,
    amount: Annotated[str, Form(max_length=40)] = "",
    reference: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    def run() -> None:
        invoices.record_payment(
            db(request),
            context.organization_id,
            public_id,
            amount=_amount(amount, "amount"),
            reference=reference.strip() or None,
        )

    return _act(request, context, public_id, "payment_recorded", run)


@router.post("/invoices/{public_id}/refunds", response_model=None)
def refund(
    request: Request,
    context: FormCtx,
    public_id: str,
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    runtime = runtime_of(request)

    def run() -> None:
        payments.refund(
            db(request),
            context.organization_id,
            public_id,
            amount=_amount(amount, "amount"),
            reason=reason.strip() or None,
            gateway=runtime.stripe_gateway(),
        )

    return _act(request, context, public_id, "refunded", run)


# ------------------------------------------------------------------ new and edit


Lines = Annotated[list[str], Form(max_length=500)]
Field = Annotated[str, Form(max_length=5000)]


def invoice_form(
    customer_name: Field = "",
    customer_email: Field = "",
    customer_phone: Field = "",
    currency_code: Annotated[str, Form(alias="currency", max_length=3)] = "",
    due_date: Field = "",
    title: Field = "",
    description: Field = "",
    notes: Field = "",
    discount: Field = "",
    shipping: Field = "",
    line_description: Lines = [],  # noqa: B006 - FastAPI copies form defaults
    line_quantity: Lines = [],  # noqa: B006
    line_unit_price: Lines = [],  # noqa: B006
    line_tax_rate: Lines = [],  # noqa: B006
) -> dict[str, Any]:
    """The form as the template re-shows it, and as the API payload is built from it."""
    count = max(len(line_description), len(line_quantity), len(line_unit_price), len(line_tax_rate))

    def at(values: list[str], index: int) -> str:
        return values[index].strip() if index < len(values) else ""

    lines = [
        {
            "description": at(line_description, i),
            "quantity": at(line_quantity, i),
            "unit_price": at(line_unit_price, i),
            "tax_rate": at(line_tax_rate, i),
        }
        for i in range(count)
    ]
    return {
        "customer_name": customer_name.strip(),
        "customer_email": customer_email.strip(),
        "customer_phone": customer_phone.strip(),
        "currency": currency_code.strip().upper(),
        "due_date": due_date.strip(),
        "title": title.strip(),
        "description": description.strip(),
        "notes": notes.strip(),
        "discount": discount.strip(),
        "shipping": shipping.strip(),
        # A line left wholly empty (the form's spare row) is not a line.
        "lines": [line for line in lines if any(line.values())],
    }


InvoiceForm = Annotated[dict[str, Any], Depends(invoice_form)]


def _payload(form: dict[str, Any]) -> dict[str, Any]:
    customer = {
        key: form[f"customer_{key}"]
        for key in ("name", "email", "phone")
        if form[f"customer_{key}"]
    }
    payload: dict[str, Any] = {
        "customer": customer,
        "line_items": [
            {
                "description": line["description"],
                "quantity": line["quantity"] or "1",
                "unit_price": line["unit_price"] or "0",
                "tax_rate": line["tax_rate"] or "0",
            }
            for line in form["lines"]
        ],
        "discount": form["discount"] or "0",
        "shipping": form["shipping"] or "0",
    }
    for key in ("currency", "due_date", "title", "description", "notes"):
        payload[key] = form[key] or None
    return payload


def _form_page(
    request: Request,
    context: DashboardContext,
    form: dict[str, Any],
    *,
    invoice: Invoice | None = None,
    error: AppError | None = None,
) -> HTMLResponse:
    if not form["lines"]:
        form = {**form, "lines": [{"description": "", "quantity": "1", "unit_price": "",
                                   "tax_rate": "0"}]}  # fmt: skip
    organization = get_organization_by_id(db(request), context.organization_id)
    t = translator(request, context)
    return render(
        request,
        "invoice_form.html",
        context,
        {
            "form": form,
            "invoice": invoice,
            "error": error,
            "currencies": CURRENCIES,
            "default_currency": organization.default_currency,
            "minor_units": {code: currency(code).exponent for code in CURRENCIES},
            # One amount per currency as the server formats money, for the live totals.
            "money_samples": {code: t.money(MONEY_SAMPLE, code) for code in CURRENCIES},
        },
        status=error.status_code if error else 200,
        section="invoices",
    )


@router.post("/invoices", response_model=None)
def create_invoice(
    request: Request,
    context: FormCtx,
    form: InvoiceForm,
    status: Annotated[str, Form(max_length=10)] = "draft",
) -> Response:
    settings = runtime_of(request).settings
    try:
        try:
            data = InvoiceCreate.model_validate(
                {**_payload(form), "status": "open" if status == "open" else "draft"}
            )
        except ValidationError as exc:
            raise invalid_input(exc) from None
        view = invoices.create_invoice(
            db(request),
            context.organization_id,
            data,
            phone_region=settings.phone_default_region,
        )
    except AppError as error:
        return _form_page(request, context, form, error=error)
    return see_other(f"/invoices/{view.invoice.public_id}", done="created")


def _form_of(invoice: Invoice, lines: list[Any]) -> dict[str, Any]:
    cur = currency(invoice.currency)

    def amount(minor: int) -> str:
        return format(from_minor(minor, cur), "f") if minor else ""

    return {
        "customer_name": invoice.customer_name or "",
        "customer_email": invoice.customer_email or "",
        "customer_phone": invoice.customer_phone or "",
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat(),
        "title": invoice.title or "",
        "description": invoice.description or "",
        "notes": invoice.notes or "",
        "discount": amount(invoice.discount_minor),
        "shipping": amount(invoice.shipping_minor),
        "lines": [
            {
                "description": line.description,
                "quantity": format(line.quantity.normalize(), "f"),
                "unit_price": format(from_minor(line.unit_price_minor, cur), "f"),
                "tax_rate": format(line.tax_rate.normalize(), "f"),
            }
            for line in lines
        ],
    }


@router.get("/invoices/{public_id}/edit", response_class=HTMLResponse)
def edit_invoice_form(request: Request, context: Ctx, public_id: str) -> HTMLResponse:
    view = invoices.get_invoice(db(request), context.organization_id, public_id)
    if view.invoice.status not in states.EDITABLE_MONEY:
        return _detail(
            request,
            context,
            public_id,
            error=ValidationFailed(
                f"invoice {view.invoice.number} is {view.invoice.status}; only drafts can be edited",
                code="invoice_not_editable",
            ),
        )
    return _form_page(
        request, context, _form_of(view.invoice, view.lines or []), invoice=view.invoice
    )


@router.post("/invoices/{public_id}/edit", response_model=None)
def update_invoice(
    request: Request,
    context: FormCtx,
    public_id: str,
    form: InvoiceForm,
) -> Response:
    session = db(request)
    settings = runtime_of(request).settings
    invoice = invoices.get_invoice(session, context.organization_id, public_id).invoice
    try:
        # An emptied text field clears it; an emptied currency or due date keeps the one set.
        payload = {
            key: value
            for key, value in _payload(form).items()
            if value is not None or key not in ("currency", "due_date")
        }
        try:
            data = InvoiceUpdate.model_validate(payload)
        except ValidationError as exc:
            raise invalid_input(exc) from None
        invoices.update_invoice(
            session,
            context.organization_id,
            public_id,
            data,
            phone_region=settings.phone_default_region,
        )
    except AppError as error:
        return _form_page(request, context, form, invoice=invoice, error=error)
    return see_other(f"/invoices/{public_id}", done="saved")
