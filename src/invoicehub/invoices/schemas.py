"""The native API's invoice shapes. Amounts go out as decimal strings in the invoice's
currency ("6000.00"; JPY "6000"; KWD "1.500")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator

from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.money import Currency, currency, format_amount
from invoicehub.kit.schemas import AmountIn, EmailAddress, RequestModel, ResponseModel

LineItemType = Literal["service", "product", "fee", "other"]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Metadata = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=40)],
    Annotated[str, StringConstraints(max_length=500)] | int | bool | None,
]


class CustomerIn(RequestModel):
    name: ShortText | None = Field(
        default=None, description="Customer's name.", examples=["Aigerim Bekova"]
    )
    email: EmailAddress | None = Field(
        default=None, description="Customer's email.", examples=["client@example.com"]
    )
    phone: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None,
        description="Phone in any common form; stored as E.164. 8XXXXXXXXXX is read as Kazakh.",
        examples=["87001234567"],
    )
    telegram_user_id: Annotated[int, Field(gt=0, lt=10**15)] | None = Field(
        default=None, description="Telegram user id of the customer.", examples=[123456789]
    )
    locale: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z]{2}([-_][a-zA-Z]{2})?$")] | None = (
        Field(
            default=None,
            description="Customer's language for the pay page (en, ru …).",
            examples=["ru"],
        )
    )


class LineItemIn(RequestModel):
    description: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="What is being charged for.", examples=["Website development"]
    )
    sku: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="Your product code.", examples=["WEB-DEV"]
    )
    type: LineItemType = Field(default="service", description="service, product, fee or other.")
    quantity: Decimal = Field(
        default=Decimal(1),
        gt=0,
        le=Decimal(10**9),
        max_digits=18,
        decimal_places=6,
        allow_inf_nan=False,
        description="How many units; a decimal greater than 0.",
        examples=["1"],
    )
    unit_price: AmountIn = Field(
        description="Price of one unit in major units.", examples=["5000.00"]
    )
    tax_rate: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        decimal_places=4,
        allow_inf_nan=False,
        description="Tax percentage, 0 to 100, applied to this line.",
        examples=["10"],
    )

    @field_validator("quantity", "tax_rate", mode="before")
    @classmethod
    def _floats_as_written(cls, value: Any) -> Any:
        return repr(value) if isinstance(value, float) else value


class InvoiceCreate(RequestModel):
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] | None = Field(
        default=None,
        description="ISO 4217 code; the organization's default when omitted.",
        examples=["USD"],
    )
    customer: CustomerIn | None = Field(default=None, description="Who pays.")
    line_items: list[LineItemIn] = Field(
        min_length=1, max_length=500, description="At least one line."
    )
    discount: AmountIn = Field(
        default=Decimal(0), description="Amount off the invoice.", examples=["0"]
    )
    shipping: AmountIn = Field(default=Decimal(0), description="Shipping charged.", examples=["0"])
    number: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Your own invoice number; generated from the organization's pattern when omitted.",
        examples=["INV-2026-0042"],
    )
    issue_date: dt.date | None = Field(default=None, description="Defaults to today (UTC).")
    due_date: dt.date | None = Field(
        default=None,
        description="Defaults to the issue date plus the organization's due days (30).",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="Payment deadline; an open invoice expires after it."
    )
    title: ShortText | None = Field(default=None, examples=["Premium Plan"])
    description: Annotated[str, StringConstraints(max_length=5000)] | None = Field(
        default=None, examples=["Payment for order #123"]
    )
    notes: Annotated[str, StringConstraints(max_length=5000)] | None = Field(
        default=None, examples=["Thank you for your business!"]
    )
    payment_terms: ShortText | None = Field(default=None, examples=["Net 30"])
    external_order_id: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="Your order id, for matching.", examples=["order_123"]
    )
    metadata: Metadata = Field(
        default_factory=dict, max_length=50, description="Your own key-value data."
    )
    webhook_id: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None,
        description="One of your webhook endpoints (we_…): this invoice's events go to it alone.",
        examples=["we_5f0c2b9e1d7a4c3b8e6f9a01"],
    )
    status: Literal["draft", "open"] = Field(
        default="draft", description="Create as a draft, or finalize at once (open)."
    )


class InvoiceListQuery(BaseModel):
    """The list's query string, read by FastAPI as one model: FastAPI re-inspects each
    separately declared query parameter's annotation on every request (13 here)."""

    status: list[str] | None = Field(default=None, description="Repeatable; also 'overdue'.")
    customer_email: str | None = Field(default=None, max_length=320, description="Partial match.")
    external_order_id: str | None = Field(default=None, max_length=255)
    q: str | None = Field(
        default=None, max_length=100, description="Search number, description, order id."
    )
    created_from: dt.date | None = Field(
        default=None, description="Created on or after (UTC date)."
    )
    created_to: dt.date | None = Field(default=None, description="Created on or before (UTC date).")
    due_from: dt.date | None = None
    due_to: dt.date | None = None
    limit: int = Field(default=10, ge=1, le=100)
    starting_after: str | None = Field(
        default=None, max_length=40, description="Cursor: an invoice id."
    )
    ending_before: str | None = Field(
        default=None, max_length=40, description="Cursor: an invoice id."
    )
    page: int | None = Field(default=None, ge=1, le=100_000)
    per_page: int | None = Field(default=None, ge=1, le=100)
    include: str | None = Field(default=None, description="line_items")


class InvoiceUpdate(RequestModel):
    """Money fields (currency, line_items, discount, shipping, number) only while draft."""

    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] | None = None
    customer: CustomerIn | None = None
    line_items: list[LineItemIn] | None = Field(default=None, min_length=1, max_length=500)
    discount: AmountIn | None = None
    shipping: AmountIn | None = None
    number: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    due_date: dt.date | None = None
    expires_at: AwareDatetime | None = None
    title: ShortText | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    notes: Annotated[str, StringConstraints(max_length=5000)] | None = None
    payment_terms: ShortText | None = None
    external_order_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    metadata: Metadata | None = Field(default=None, max_length=50)
    webhook_id: Annotated[str, StringConstraints(max_length=40)] | None = None


MONEY_FIELDS = frozenset({"currency", "line_items", "discount", "shipping", "number"})


class DuplicateRequest(RequestModel):
    status: Literal["draft", "open"] = Field(default="draft", description="Status of the copy.")


class PaymentCreate(RequestModel):
    amount: AmountIn | None = Field(
        default=None,
        description="Amount received; the whole amount due when omitted.",
        examples=["6000.00"],
    )
    reference: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None,
        description="Your reference for the payment (bank transfer id, receipt).",
        examples=["bank-tx-778"],
    )


class RefundCreate(RequestModel):
    amount: AmountIn | None = Field(
        default=None,
        description="Amount to refund; everything refundable when omitted.",
        examples=["100.00"],
    )
    reason: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, examples=["requested_by_customer"]
    )


class Customer(ResponseModel):
    name: str | None = Field(description="Customer's name.", examples=["Aigerim Bekova"])
    email: str | None = Field(description="Customer's email.", examples=["client@example.com"])
    phone: str | None = Field(description="E.164 phone.", examples=["+77001234567"])
    telegram_user_id: int | None = Field(description="Telegram user id.", examples=[123456789])
    locale: str | None = Field(default=None, description="Customer's language.", examples=["ru"])


class LineItem(ResponseModel):
    id: str = Field(description="Line item id.", examples=["li_5f0c2b9e1d7a4c3b8e6f9a01"])
    description: str = Field(examples=["Website development"])
    sku: str | None = Field(examples=["WEB-DEV"])
    type: str = Field(description="service, product, fee or other.", examples=["service"])
    quantity: str = Field(description="Decimal quantity.", examples=["1"])
    unit_price: str = Field(description="Unit price, decimal string.", examples=["5000.00"])
    tax_rate: str = Field(description="Tax percentage.", examples=["10"])
    amount: str = Field(description="quantity x unit_price, rounded half-up.", examples=["5000.00"])
    tax: str = Field(description="amount x tax_rate / 100, rounded half-up.", examples=["500.00"])


class Invoice(ResponseModel):
    id: str = Field(description="Invoice id.", examples=["inv_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["invoice"] = "invoice"
    number: str = Field(examples=["INV-2026-0001"])
    status: InvoiceStatus = Field(
        description="draft, open, processing, paid, partially_refunded, refunded, cancelled or expired."
    )
    overdue: bool = Field(description="Open and past its due date.")
    currency: str = Field(examples=["USD"])
    customer: Customer
    line_items: list[LineItem] | None = Field(
        default=None, description="Always on a single invoice; on lists with include=line_items."
    )
    subtotal: str = Field(examples=["5500.00"])
    discount: str = Field(examples=["0.00"])
    shipping: str = Field(examples=["0.00"])
    tax: str = Field(examples=["500.00"])
    total: str = Field(examples=["6000.00"])
    amount_paid: str = Field(examples=["0.00"])
    amount_refunded: str = Field(examples=["0.00"])
    amount_due: str = Field(description="total - amount_paid.", examples=["6000.00"])
    issue_date: dt.date
    due_date: dt.date
    expires_at: dt.datetime | None
    title: str | None
    description: str | None
    notes: str | None
    payment_terms: str | None
    external_order_id: str | None
    metadata: dict[str, Any]
    webhook_id: str | None = Field(
        description="The webhook endpoint this invoice's events go to alone."
    )
    payment_url: str | None = Field(
        default=None,
        description="The hosted pay page, once a payment link exists.",
        examples=["https://pay.example/pay/Xb3…"],
    )
    qr_token: str | None = Field(
        default=None,
        description="The payment link's token: encode payment_url (or this) in a QR code.",
    )
    payment_link_expires_at: dt.datetime | None = None
    paid_late: bool = Field(
        default=False, description="Money arrived after it was cancelled or expired."
    )
    last_payment_error: str | None = Field(description="Why the last payment attempt was declined.")
    created_at: dt.datetime
    updated_at: dt.datetime
    finalized_at: dt.datetime | None
    viewed_at: dt.datetime | None
    paid_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    expired_at: dt.datetime | None
    refunded_at: dt.datetime | None


class InvoiceList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[Invoice]
    has_more: bool = Field(description="More invoices follow this page.")
    next_starting_after: str | None = Field(
        description="Pass as starting_after to get the next page; null on the last page."
    )
    page: int | None = Field(default=None, description="Only with page/per_page paging.")
    per_page: int | None = None
    total: int | None = Field(default=None, description="Only with page/per_page paging.")


class Payment(ResponseModel):
    id: str = Field(examples=["pay_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["payment"] = "payment"
    kind: Literal["payment", "refund"]
    status: str = Field(description="processing, succeeded or failed.")
    amount: str = Field(examples=["6000.00"])
    currency: str = Field(examples=["USD"])
    provider: str = Field(description="manual, sandbox, stripe, wallet …", examples=["manual"])
    reference: str | None
    failure_reason: str | None
    created_at: dt.datetime


class InvoiceWithPayment(ResponseModel):
    invoice: Invoice
    payment: Payment


def is_overdue(invoice: Any, today: dt.date) -> bool:
    """Open (or mid-payment) and past due, or marked overdue by a provider."""
    unpaid = invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PROCESSING)
    return unpaid and (invoice.due_date < today or invoice.overdue_at is not None)


def json_time(value: dt.datetime | None) -> str | None:
    """A timestamp as the native JSON writes it: ISO 8601 in UTC with a ``Z``
    (pydantic's form for a UTC datetime)."""
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def line_json(line: Any, cur: Currency) -> dict[str, Any]:
    """One line item in the native JSON: the ``LineItem`` schema's fields, in its order."""
    return {
        "id": line.public_id,
        "description": line.description,
        "sku": line.sku,
        "type": line.type,
        "quantity": format(line.quantity.normalize(), "f"),
        "unit_price": format_amount(line.unit_price_minor, cur),
        "tax_rate": format(line.tax_rate.normalize(), "f"),
        "amount": format_amount(line.amount_minor, cur),
        "tax": format_amount(line.tax_minor, cur),
    }


def invoice_json(invoice: Any, lines: list[Any] | None, *, today: dt.date) -> dict[str, Any]:
    """The native JSON of one invoice (``lines`` None leaves line_items out): the ``Invoice``
    schema's fields in its order, built as plain values.

    Built directly rather than through the pydantic model: a list page renders twenty of
    them per request, and validating each into ``Invoice`` and dumping it again cost more
    than reading the rows. The model stays the documented schema; a test validates this
    output against it for every status and shape (tests/invoices/test_invoice_json.py)."""
    cur = currency(invoice.currency)
    total = invoice.total_minor
    paid = invoice.amount_paid_minor
    telegram = invoice.customer_telegram_user_id
    return {
        "id": invoice.public_id,
        "object": "invoice",
        "number": invoice.number,
        "status": InvoiceStatus(invoice.status).value,
        "overdue": is_overdue(invoice, today),
        "currency": invoice.currency,
        "customer": {
            "name": invoice.customer_name,
            "email": invoice.customer_email,
            "phone": invoice.customer_phone,
            "telegram_user_id": int(telegram) if telegram else None,
            "locale": invoice.customer_locale,
        },
        "line_items": None if lines is None else [line_json(line, cur) for line in lines],
        "subtotal": format_amount(invoice.subtotal_minor, cur),
        "discount": format_amount(invoice.discount_minor, cur),
        "shipping": format_amount(invoice.shipping_minor, cur),
        "tax": format_amount(invoice.tax_minor, cur),
        "total": format_amount(total, cur),
        "amount_paid": format_amount(paid, cur),
        "amount_refunded": format_amount(invoice.amount_refunded_minor, cur),
        "amount_due": format_amount(total - paid, cur),
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "expires_at": json_time(invoice.expires_at),
        "title": invoice.title,
        "description": invoice.description,
        "notes": invoice.notes,
        "payment_terms": invoice.payment_terms,
        "external_order_id": invoice.external_order_id,
        "metadata": dict(invoice.metadata_ or {}),
        "webhook_id": invoice.webhook_endpoint_id,
        "payment_url": invoice.payment_url,
        "qr_token": invoice.payment_link_token,
        "payment_link_expires_at": json_time(invoice.payment_link_expires_at),
        "paid_late": invoice.paid_late_at is not None,
        "last_payment_error": invoice.last_payment_error,
        "created_at": json_time(invoice.created_at),
        "updated_at": json_time(invoice.updated_at),
        "finalized_at": json_time(invoice.finalized_at),
        "viewed_at": json_time(invoice.viewed_at),
        "paid_at": json_time(invoice.paid_at),
        "cancelled_at": json_time(invoice.cancelled_at),
        "expired_at": json_time(invoice.expired_at),
        "refunded_at": json_time(invoice.refunded_at),
    }


def payment_to_schema(payment: Any) -> Payment:
    return Payment(
        id=payment.public_id,
        kind=payment.kind,
        status=payment.status,
        amount=format_amount(payment.amount_minor, currency(payment.currency)),
        currency=payment.currency,
        provider=payment.provider,
        reference=payment.provider_reference,
        failure_reason=payment.failure_reason,
        created_at=payment.created_at,
    )
