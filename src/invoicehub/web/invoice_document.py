"""The invoice as a printable document: the same words and formats as the pay page."""

from __future__ import annotations

import io

import segno

from invoicehub.invoices.pdf import DocumentLine, InvoiceDocument, render_invoice_pdf
from invoicehub.invoices.service import InvoiceView
from invoicehub.web.i18n import Translator


def invoice_pdf(view: InvoiceView, merchant_name: str, t: Translator) -> bytes:
    invoice, code = view.invoice, view.invoice.currency
    totals = [(t("subtotal"), t.money(invoice.subtotal_minor, code))]
    if invoice.discount_minor:
        totals.append((t("discount"), "−" + t.money(invoice.discount_minor, code)))
    if invoice.shipping_minor:
        totals.append((t("shipping"), t.money(invoice.shipping_minor, code)))
    totals.append((t("tax"), t.money(invoice.tax_minor, code)))
    totals.append((t("total"), t.money(invoice.total_minor, code)))
    if invoice.amount_paid_minor:
        totals.append((t("amount_paid"), t.money(invoice.amount_paid_minor, code)))
    totals.append((t("amount_due"), t.money(invoice.total_minor - invoice.amount_paid_minor, code)))
    qr_png = None
    if invoice.payment_url:
        buffer = io.BytesIO()
        segno.make(invoice.payment_url, error="m").save(buffer, kind="png", scale=6, border=2)
        qr_png = buffer.getvalue()
    customer = [
        x for x in (invoice.customer_name, invoice.customer_email, invoice.customer_phone) if x
    ]
    return render_invoice_pdf(
        InvoiceDocument(
            merchant_name=merchant_name,
            number=invoice.number,
            status_label=t(f"status_{invoice.status}"),
            issue_date_label=t.date(invoice.issue_date),
            due_date_label=t.date(invoice.due_date),
            customer_lines=customer,
            lines=[
                DocumentLine(
                    description=line.description,
                    quantity=t.number(line.quantity),
                    unit_price=t.money(line.unit_price_minor, code),
                    tax_rate=f"{t.number(line.tax_rate)} %",
                    amount=t.money(line.amount_minor, code),
                )
                for line in view.lines or []
            ],
            totals=totals,
            notes=invoice.notes,
            payment_url=invoice.payment_url,
            qr_png=qr_png,
            labels={
                "Invoice": t("invoice"),
                "Bill to": t("bill_to"),
                "Description": t("description"),
                "Qty": t("qty"),
                "Unit price": t("unit_price"),
                "Tax": t("tax"),
                "Amount": t("amount"),
                "Pay online": t("pay"),
                "Notes": t("notes"),
                "Issue date": t("issued"),
                "Due date": t("due_date"),
                "Scan to pay": t("scan_to_pay"),
                "Page": t("page"),
            },
            title=invoice.title,
        )
    )
