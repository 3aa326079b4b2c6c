"""The hosted pay page at /pay/<token>: what the customer sees, the QR code, the PDF, and the
sandbox card form. It calls the payment services and holds no rules of its own."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from invoicehub.api.middleware import SessionHolder
from invoicehub.errors import NotFound
from invoicehub.invoices.schemas import is_overdue
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.payments import service as payments
from invoicehub.payments.sandbox import CardForm
from invoicehub.payments.service import CardResult, PayPage
from invoicehub.web.i18n import Translator, choose_language
from invoicehub.web.invoice_document import invoice_pdf

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(tags=["pay page"], include_in_schema=False)

# The token is the secret in the URL: keep it out of caches, referrers and frames.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
FILE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
CARD_FIELDS = {"number": "card_number", "expiry": "expiry", "cvc": "cvc"}


def _holder(request: Request) -> SessionHolder:
    holder: SessionHolder = request.state.db
    return holder


def _translator(request: Request, page: PayPage | None) -> Translator:
    return Translator(
        choose_language(
            page.invoice.customer_locale if page else None,
            request.headers.get("accept-language"),
            requested=request.query_params.get("lang"),
        )
    )


def _status_key(page: PayPage) -> str:
    if is_overdue(page.invoice, clock.today()):
        return "status_overdue"
    return f"status_{page.invoice.status}"


def page_context(page: PayPage, t: Translator, token: str, **extra: Any) -> dict[str, Any]:
    invoice, code = page.invoice, page.invoice.currency

    def money(minor: int) -> str:
        return t.money(minor, code)

    totals = [(t("subtotal"), money(invoice.subtotal_minor))]
    if invoice.discount_minor:
        totals.append((t("discount"), "−" + money(invoice.discount_minor)))
    if invoice.shipping_minor:
        totals.append((t("shipping"), money(invoice.shipping_minor)))
    totals.append((t("tax"), money(invoice.tax_minor)))
    totals.append((t("total"), money(invoice.total_minor)))
    if invoice.amount_paid_minor and invoice.status == InvoiceStatus.OPEN:
        totals.append((t("amount_paid"), money(invoice.amount_paid_minor)))
    qr = segno.make(invoice.payment_url or token, error="m")
    return {
        "t": t,
        "lang": t.language,
        "token": token,
        "page": page,
        "invoice": invoice,
        "merchant": page.organization.name,
        "lines": [
            {
                "description": line.description,
                "quantity": t.number(line.quantity),
                "unit_price": money(line.unit_price_minor),
                "tax_rate": f"{t.number(line.tax_rate)} %",
                "amount": money(line.amount_minor),
            }
            for line in page.view.lines or []
        ],
        "totals": totals,
        "amount_due": money(page.amount_due_minor),
        "status_key": _status_key(page),
        "issue_date": t.date(invoice.issue_date),
        "due_date": t.date(invoice.due_date),
        "paid_at": t.date(invoice.paid_at) if invoice.paid_at else None,
        "qr_svg": qr.svg_inline(scale=4, dark="#111", light="#fff"),
        "stripe_url": invoice.provider_checkout_url
        if invoice.payment_provider == "stripe"
        else None,
        "last_error": t.reason(invoice.last_payment_error) if extra.get("show_error") else None,
        **extra,
    }


def _render(
    request: Request, template: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, template, dict(context), status_code=status, headers=PAGE_HEADERS
    )


def _not_found(request: Request) -> HTMLResponse:
    t = _translator(request, None)
    return _render(request, "not_found.html", {"t": t, "lang": t.language}, status=404)


@router.get("/pay/{token}", response_class=HTMLResponse)
def pay_page(request: Request, token: str) -> HTMLResponse:
    holder = _holder(request)
    holder.require_write()  # the first view is recorded
    try:
        page = payments.open_pay_page(holder.session, token, record_view=True)
    except NotFound:
        return _not_found(request)
    t = _translator(request, page)
    result = request.query_params.get("result")
    return _render(
        request,
        "pay.html",
        page_context(page, t, token, show_error=result == "declined", result=result),
    )


@router.get("/pay/{token}/qr.png")
def qr_png(request: Request, token: str) -> Response:
    try:
        page = payments.open_pay_page(_holder(request).session, token, record_view=False)
    except NotFound:
        return Response(status_code=404)
    buffer = io.BytesIO()
    segno.make(page.invoice.payment_url or token, error="m").save(
        buffer, kind="png", scale=8, border=4
    )
    return Response(
        buffer.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@router.get("/pay/{token}/invoice.pdf")
def pdf(request: Request, token: str) -> Response:
    try:
        page = payments.open_pay_page(_holder(request).session, token, record_view=False)
    except NotFound:
        return Response(status_code=404)
    t = _translator(request, page)
    body = invoice_pdf(page.view, page.organization.name, t)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{page.invoice.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/pay/{token}/card", response_class=HTMLResponse, response_model=None)
def pay_with_card(
    request: Request,
    token: str,
    number: Annotated[str, Form(max_length=40)] = "",
    expiry: Annotated[str, Form(max_length=10)] = "",
    cvc: Annotated[str, Form(max_length=8)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    session = _holder(request).session
    try:
        outcome = payments.pay_with_card(
            session, token, CardForm(number=number, expiry=expiry, cvc=cvc, name=name or None)
        )
    except NotFound:
        return _not_found(request)
    lang = request.query_params.get("lang")
    suffix = f"&lang={lang}" if lang else ""
    if outcome.result == CardResult.PAID:
        return RedirectResponse(f"/pay/{token}?result=paid{suffix}", status_code=303)
    if outcome.result == CardResult.DECLINED:
        return RedirectResponse(f"/pay/{token}?result=declined{suffix}", status_code=303)
    if outcome.result == CardResult.NEEDS_CONFIRMATION:
        return RedirectResponse(
            f"/pay/{token}/confirm/{outcome.payment_id}{'?lang=' + lang if lang else ''}",
            status_code=303,
        )
    page = payments.open_pay_page(session, token, record_view=False)
    t = _translator(request, page)
    if outcome.result == CardResult.INVALID:
        field = t(CARD_FIELDS.get(outcome.field or "", "card_number"))
        error = t("invalid_card", field=field, reason=t(f"card_error_{outcome.message}"))
        context = page_context(
            page, t, token, form_error=error, error_field=outcome.field, name=name, expiry=expiry
        )
        return _render(request, "pay.html", context, status=422)
    return _render(request, "pay.html", page_context(page, t, token), status=409)


@router.get("/pay/{token}/confirm/{payment_id}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str, payment_id: str) -> HTMLResponse:
    try:
        page = payments.open_pay_page(_holder(request).session, token, record_view=False)
    except NotFound:
        return _not_found(request)
    t = _translator(request, page)
    return _render(request, "confirm.html", page_context(page, t, token, payment_id=payment_id))


@router.post("/pay/{token}/confirm/{payment_id}", response_model=None)
def confirm_payment(
    request: Request,
    token: str,
    payment_id: str,
    decision: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        outcome = payments.confirm_card_payment(
            _holder(request).session, token, payment_id, approve=decision == "confirm"
        )
    except NotFound:
        return _not_found(request)
    lang = request.query_params.get("lang")
    suffix = f"&lang={lang}" if lang else ""
    result = "paid" if outcome.result == CardResult.PAID else "declined"
    return RedirectResponse(f"/pay/{token}?result={result}{suffix}", status_code=303)
