"""Clawprint's wire shapes: requests, the responses as /docs shows them, status words, errors.

Requests ignore fields they do not know (as the original does) and accept exactly what the
document describes; everything else about an invoice is checked by the core, whose refusals
are translated into Clawprint's error shape by the endpoints.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from invoicehub.invoices.schemas import is_overdue
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.schemas import AmountIn, EmailAddress

S = InvoiceStatus

NUMBER_PATTERN = "INV-{YYYY}-{seq:03}"  # INV-2024-001
DEFAULT_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")
DEFAULT_DUE_DAYS = 30  # "defaults to 30 days from issue"
# The document's example link is made 2024-02-15T10:00:00Z and expires 2024-05-15T10:00:00Z.
PAYMENT_LINK_LIFETIME = dt.timedelta(days=90)
DEFAULT_LIMIT, MAX_LIMIT = 50, 100

StatusWord = Literal["draft", "sent", "viewed", "paid", "overdue", "cancelled", "refunded"]
STATUS_WORDS: tuple[str, ...] = get_args(StatusWord)

# Stored core statuses that read as one word whatever else is true of the invoice.
_STORED_WORDS = {
    S.DRAFT: "draft",
    S.PAID: "paid",
    S.PARTIALLY_REFUNDED: "paid",
    S.REFUNDED: "refunded",
    S.CANCELLED: "cancelled",
    S.EXPIRED: "cancelled",
}

# Clawprint's word -> the core list query (ListQuery fields) that selects exactly the
# invoices showing it.
_UNPAID = ("open", "processing")
STATUS_FILTERS: dict[str, dict[str, Any]] = {
    "draft": {"statuses": ("draft",)},
    "sent": {"statuses": _UNPAID, "overdue": False, "viewed": False},
    "viewed": {"statuses": _UNPAID, "overdue": False, "viewed": True},
    "overdue": {"statuses": _UNPAID, "overdue": True},
    "paid": {"statuses": ("paid", "partially_refunded")},
    "refunded": {"statuses": ("refunded",)},
    "cancelled": {"statuses": ("cancelled", "expired")},
}


def status_word(invoice: Any, *, today: dt.date) -> str:
    """Open (or mid-payment) invoices are overdue past due, else viewed once the customer
    opened the pay page, else sent; every other core status has one fixed word."""
    status = InvoiceStatus(invoice.status)
    if status in (S.OPEN, S.PROCESSING):
        if is_overdue(invoice, today):
            return "overdue"
        return "viewed" if invoice.viewed_at is not None else "sent"
    return _STORED_WORDS[status]


# ---------------------------------------------------------------- error titles

MISSING_FIELDS = "Missing required fields"
LINE_ITEMS_REQUIRED = "Line items required"
INVALID_EMAIL = "Invalid email format"
INVALID_QUANTITY = "Invalid quantity"
INVALID_DATA = "Invalid data"
INVALID_AUTHENTICATION = "Invalid authentication"
NOT_FOUND = "Not found"
CONFLICT = "Conflict"
STRIPE_ERROR = "Stripe integration error"
RATE_LIMITED = "Too many requests"

# When one request has several problems, the first kind in this order is reported.
VALIDATION_TITLES = (
    MISSING_FIELDS,
    LINE_ITEMS_REQUIRED,
    INVALID_EMAIL,
    INVALID_QUANTITY,
    INVALID_DATA,
)
_REQUIRED = {
    ("business_id",),
    ("customer_email",),
    ("line_items",),
    ("line_items", "*", "description"),
    ("line_items", "*", "quantity"),
    ("line_items", "*", "unit_price"),
}


def wire_field(loc: tuple[str | int, ...]) -> str | None:
    """("line_items", 0, "quantity") -> "line_items[0].quantity"."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or None


def classify(
    loc: tuple[str | int, ...], kind: str, value: Any, message: str
) -> tuple[str, str, str | None]:
    """(title, message, field) of one validation failure, in the document's own titles."""
    field = wire_field(loc)
    shape = tuple("*" if isinstance(part, int) else part for part in loc)
    empty = kind == "missing" or value is None or (isinstance(value, str) and not value.strip())
    if kind == "json_invalid":
        return INVALID_DATA, "the request body is not valid JSON", None
    if not loc:
        if empty:
            return MISSING_FIELDS, "business_id, customer_email and line_items are required", None
        return INVALID_DATA, "the request body must be a JSON object", None
    if shape == ("line_items",) and not empty:
        return LINE_ITEMS_REQUIRED, "line_items must be an array with at least 1 item", field
    if shape in _REQUIRED and empty:
        return MISSING_FIELDS, f"{field} is required", field
    if shape == ("customer_email",):
        return INVALID_EMAIL, f"{field} must be a valid email address", field
    if shape == ("line_items", "*", "quantity"):
        return INVALID_QUANTITY, f"{field} must be a number greater than 0 ({message})", field
    return INVALID_DATA, f"{field}: {message}", field


# Core field paths -> Clawprint's, for the core's own refusals.
_CORE_NAMES = {
    ("customer", "email"): ("customer_email",),
    ("customer", "name"): ("customer_name",),
    ("number",): ("invoice_number",),
    ("issue_date",): ("issued_date",),
}


def wire_loc(core_loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    for core, wire in _CORE_NAMES.items():
        if core_loc[: len(core)] == core:
            return wire + core_loc[len(core) :]
    return core_loc


def loc_of_param(param: str) -> tuple[str | int, ...]:
    """The core's "line_items.0.unit_price" -> ("line_items", 0, "unit_price")."""
    return tuple(int(part) if part.isdigit() else part for part in param.split("."))


# ---------------------------------------------------------------- requests


def _number(value: Any) -> Any:
    # A JSON number as the client wrote it (its repr), never the binary float; no booleans.
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return repr(value) if isinstance(value, float) else value


def _iso_date(value: Any) -> Any:
    """2024-02-15, or a full ISO 8601 timestamp (the form responses use), read as a UTC date."""
    if value is None or isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date such as 2024-02-15")
    text = value.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO 8601 date such as 2024-02-15") from None
    return moment.astimezone(dt.UTC).date() if moment.tzinfo else moment.date()


def _storable(value: str) -> str:
    # JSON may carry "\u0000"; no database column can hold it (PostgreSQL refuses it).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _currency(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Text = Annotated[str, AfterValidator(_storable)]
DateIn = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2024-02-15"]}),
]
CurrencyCode = Annotated[Literal["USD", "EUR", "GBP", "CAD", "AUD"], BeforeValidator(_currency)]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(gt=0, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "examples": [1]}),
]
TaxRate = Annotated[
    Decimal,
    BeforeValidator(_number),
    Field(ge=0, le=100, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100, "examples": [10]}),
]
Money = Annotated[Decimal, WithJsonSchema({"type": "number", "examples": [5500]})]


class _Request(BaseModel):
    """Unknown fields are ignored, as the original API does."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class LineItemCreate(_Request):
    description: Text = Field(
        min_length=1, description="Service/product name.", examples=["Website Development"]
    )
    quantity: Quantity = Field(description="How many units; must be > 0.")
    unit_price: AmountIn = Field(
        description="Price per unit in major units of the currency (5000 = $5,000.00).",
        examples=[5000],
    )
    type: Literal["service", "product", "fee", "other"] | None = Field(
        default=None, description="service (the default), product, fee or other."
    )
    tax_rate: TaxRate | None = Field(
        default=None, description="Tax percentage (0-100) on this line; 0 when omitted."
    )


class CreateInvoice(_Request):
    business_id: Text = Field(
        min_length=1,
        description="Business ID from /api/businesses.",
        examples=["org_5f0c2b9e1d7a4c3b8e6f9a01"],
    )
    customer_email: EmailAddress = Field(
        description="Customer email address.", examples=["client@example.com"]
    )
    customer_name: Text | None = Field(default=None, examples=["John Smith"])
    invoice_number: Text | None = Field(
        default=None,
        description="Custom invoice number; INV-YYYY-NNN is generated when omitted.",
        examples=["INV-2024-001"],
    )
    issued_date: DateIn | None = Field(default=None, description="Defaults to today (UTC).")
    due_date: DateIn | None = Field(default=None, description="Defaults to 30 days from issue.")
    currency: CurrencyCode | None = Field(
        default=None, description="USD (the default), EUR, GBP, CAD or AUD."
    )
    notes: Text | None = Field(default=None, examples=["Thank you for your business!"])
    payment_terms: Text | None = Field(default=None, examples=["Net 30"])
    line_items: list[LineItemCreate] = Field(min_length=1, description="At least 1 line item.")


class UpdateInvoice(_Request):
    status: StatusWord | None = Field(
        default=None,
        description="sent (send it), paid (record full payment), refunded (refund it all), cancelled, or draft while it still is.",
    )
    customer_email: EmailAddress | None = Field(default=None, examples=["newemail@example.com"])
    customer_name: Text | None = Field(default=None, examples=["Jane Smith"])
    due_date: DateIn | None = Field(default=None)
    notes: Text | None = Field(default=None, examples=["Updated notes"])
    payment_terms: Text | None = Field(default=None, examples=["Net 45"])


# ---------------------------------------------------------------- responses (for /docs)
# The endpoints write these as plain JSON: optional fields without a value are left out,
# and amounts are exact JSON numbers.


class LineItemOut(BaseModel):
    line_item_id: str = Field(examples=["li_5f0c2b9e1d7a4c3b8e6f9a01"])
    invoice_id: str = Field(examples=["inv_5f0c2b9e1d7a4c3b8e6f9a01"])
    description: str = Field(examples=["Website Development"])
    quantity: Money
    unit_price: Money
    type: str = Field(examples=["service"])
    tax_rate: Money
    created_at: str = Field(examples=["2024-02-15T10:00:00Z"])


class InvoiceSummaryOut(BaseModel):
    invoice_id: str = Field(examples=["inv_5f0c2b9e1d7a4c3b8e6f9a01"])
    business_id: str = Field(examples=["org_5f0c2b9e1d7a4c3b8e6f9a01"])
    invoice_number: str = Field(examples=["INV-2024-001"])
    customer_email: str | None = Field(examples=["client@example.com"])
    status: StatusWord
    amount: Money = Field(description="Subtotal before tax.")
    tax_amount: Money = Field(description="Sum of each line's tax.")
    total_amount: Money = Field(description="amount + tax_amount.")
    currency: str = Field(examples=["USD"])
    issued_date: str = Field(examples=["2024-02-15T00:00:00Z"])
    due_date: str = Field(examples=["2024-03-15T00:00:00Z"])
    created_at: str = Field(examples=["2024-02-15T10:00:00Z"])
    updated_at: str = Field(examples=["2024-02-15T10:00:00Z"])


class InvoiceOut(InvoiceSummaryOut):
    customer_name: str | None = Field(default=None, description="Left out when not set.")
    notes: str | None = Field(default=None, description="Left out when not set.")
    payment_terms: str | None = Field(default=None, description="Left out when not set.")
    stripe_payment_link: str | None = Field(
        default=None, description="payment_link_url, once a payment link exists."
    )
    stripe_invoice_id: str | None = Field(
        default=None, description="The link's stripe_invoice_id, once a payment link exists."
    )
    paid_at: str | None = Field(default=None, description="Left out until paid.")
    viewed_at: str | None = Field(default=None, description="Left out until viewed.")
    line_items: list[LineItemOut]


class ListFilterOut(BaseModel):
    status: StatusWord | None = Field(default=None, description="Left out when not filtered.")
    limit: int = Field(examples=[20])


class InvoiceListOut(BaseModel):
    invoices: list[InvoiceSummaryOut]
    count: int = Field(description="How many invoices this answer holds.")
    business_id: str
    filter: ListFilterOut


class PaymentLinkOut(BaseModel):
    payment_link_url: str = Field(examples=["https://checkout.stripe.com/c/pay/cs_test_a1"])
    stripe_invoice_id: str = Field(examples=["cs_test_a1"])
    expires_at: str = Field(examples=["2024-05-15T10:00:00Z"])


class CancelledOut(BaseModel):
    message: Literal["Invoice cancelled successfully"]
    invoice_id: str


class BusinessOut(BaseModel):
    business_id: str = Field(examples=["org_5f0c2b9e1d7a4c3b8e6f9a01"])
    name: str = Field(examples=["Acme LLC"])
    created_at: str
    updated_at: str


class BusinessListOut(BaseModel):
    businesses: list[BusinessOut]
    count: int


class ErrorOut(BaseModel):
    error: str = Field(
        description="One of the document's titles: Missing required fields, Invalid email format, Line items required, Invalid quantity, Invalid data, Invalid authentication, Not found, Conflict, Too many requests, Stripe integration error.",
        examples=["Invalid email format"],
    )
    message: str = Field(description="What exactly is wrong, for people.")
    field: str | None = Field(
        description="The request field at fault, or null.", examples=["customer_email"]
    )
