"""The Magento hub's wire shapes (seed 003), its state words and its error codes.

The endpoints build plain dicts in exactly the document's field order; these models say
the same in /compat/magento/docs, and the conformance tests hold the two together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from invoicehub.invoices.states import InvoiceStatus

S = InvoiceStatus

# Core status -> the hub's state word. Imported invoices are open, paid or cancelled; the
# others can only come from the native API acting on them afterwards.
STATE_WORDS: dict[str, str] = {
    S.DRAFT: "open",
    S.OPEN: "open",
    S.PROCESSING: "open",
    S.PAID: "paid",
    S.PARTIALLY_REFUNDED: "paid",  # Magento keeps an invoice "paid" after a credit memo
    S.REFUNDED: "paid",
    S.CANCELLED: "canceled",
    S.EXPIRED: "canceled",
}
# The hub's state word -> the core statuses it covers (the ``state`` filter).
STATE_FILTERS: dict[str, tuple[str, ...]] = {
    word: tuple(status for status, shown in STATE_WORDS.items() if shown == word)
    for word in ("paid", "open", "canceled")
}

StateWord = Literal["paid", "open", "canceled"]

UNAUTHORIZED_MESSAGE = "API access requires tenant-scoped token."
RATE_LIMIT_MESSAGE = "Too Many Attempts."

DEFAULT_PER_PAGE = 15
MAX_PER_PAGE = 100
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database

TIMESTAMP_EXAMPLE = "2024-01-15T14:42:00Z"


class OrderRef(BaseModel):
    id: int = Field(description="The hub's internal order id (filter with order_id).", examples=[1])
    increment_id: str = Field(description="Magento's order number.", examples=["000000123"])


class StoreRef(BaseModel):
    id: int = Field(description="The hub's internal store id.", examples=[1])
    name: str = Field(
        description="The Magento store view's name (the last line of Magento's store_name).",
        examples=["Main Store"],
    )


class InvoiceItem(BaseModel):
    id: int = Field(description="Internal database ID.", examples=[1])
    sku: str | None = Field(description="Product SKU.", examples=["WIDGET-001"])
    name: str = Field(description="Product name.", examples=["Premium Widget"])
    qty: int | float = Field(
        description="Quantity invoiced (an integer; a number only for a product sold in "
        "fractions).",
        examples=[2],
    )
    price: str = Field(description="Unit price.", examples=["44.99"])
    row_total: str = Field(description="Line total (qty × price).", examples=["89.98"])
    created_at: str = Field(description="Record creation timestamp.", examples=[TIMESTAMP_EXAMPLE])
    updated_at: str = Field(description="Record update timestamp.", examples=[TIMESTAMP_EXAMPLE])


class Invoice(BaseModel):
    id: int = Field(description="Internal database ID.", examples=[1])
    increment_id: str = Field(
        description='Magento invoice number (e.g., "100000123").', examples=["100000123"]
    )
    magento_invoice_id: int = Field(description="Magento entity ID.", examples=[456])
    order: OrderRef | None = Field(
        description="Related order (id, increment_id); null until its order is synced."
    )
    magento_store: StoreRef | None = Field(description="Store details (id, name).")
    state: StateWord = Field(
        description="Invoice state (`paid`, `open`, `canceled`).", examples=["paid"]
    )
    customer_name: str | None = Field(description="Customer full name.", examples=["John Doe"])
    customer_email: str | None = Field(
        description="Customer email address.", examples=["john@example.com"]
    )
    subtotal: str = Field(description="Subtotal amount.", examples=["89.99"])
    tax_amount: str = Field(description="Tax amount.", examples=["7.20"])
    shipping_amount: str = Field(description="Shipping cost.", examples=["5.00"])
    discount_amount: str = Field(
        description="Discount amount (positive; Magento writes it negative).", examples=["0.00"]
    )
    grand_total: str = Field(description="Final invoice total.", examples=["102.19"])
    invoiced_at: str | None = Field(
        description="Invoice creation timestamp in Magento (ISO 8601).",
        examples=["2024-01-15T14:40:00Z"],
    )
    created_at: str = Field(description="Record creation timestamp.", examples=[TIMESTAMP_EXAMPLE])
    updated_at: str = Field(description="Record update timestamp.", examples=[TIMESTAMP_EXAMPLE])
    items: list[InvoiceItem] | None = Field(
        default=None,
        description="Invoice items: always on GET /invoices/{increment_id}, on lists only "
        "with include=items (the key is absent otherwise).",
    )


class OrderItem(BaseModel):
    magento_item_id: int | None = Field(description="Magento's order item id.", examples=[11])
    sku: str | None = Field(description="Product SKU.", examples=["WIDGET-001"])
    name: str = Field(description="Product name.", examples=["Premium Widget"])
    qty: int | float = Field(description="Quantity ordered.", examples=[2])
    price: str = Field(description="Unit price.", examples=["44.99"])
    row_total: str = Field(description="Line total.", examples=["89.98"])


class Order(BaseModel):
    id: int = Field(description="Internal database ID.", examples=[1])
    increment_id: str = Field(description="Magento order number.", examples=["000000123"])
    magento_order_id: int = Field(description="Magento entity ID.", examples=[123])
    magento_store: StoreRef | None = Field(description="Store details (id, name).")
    state: str | None = Field(
        description="Magento's order state, as Magento names it.", examples=["processing"]
    )
    customer_name: str | None = Field(description="Customer full name.", examples=["John Doe"])
    customer_email: str | None = Field(
        description="Customer email address.", examples=["john@example.com"]
    )
    currency: str = Field(description="The order's currency (ISO 4217).", examples=["USD"])
    grand_total: str = Field(description="Order total.", examples=["102.19"])
    items: list[OrderItem] = Field(description="Ordered items (parent rows only).")
    ordered_at: str | None = Field(
        description="Order creation timestamp in Magento.", examples=["2024-01-15T14:30:00Z"]
    )
    created_at: str = Field(description="Record creation timestamp.", examples=[TIMESTAMP_EXAMPLE])
    updated_at: str = Field(description="Record update timestamp.", examples=[TIMESTAMP_EXAMPLE])
    invoices: list[Invoice] | None = Field(
        default=None, description="The order's invoices, only with include=invoices."
    )


class Pagination(BaseModel):
    current_page: int = Field(examples=[1])
    per_page: int = Field(examples=[25])
    total: int = Field(examples=[89])
    last_page: int = Field(examples=[4])
    from_: int | None = Field(alias="from", examples=[1], description="null on an empty page")
    to: int | None = Field(examples=[25], description="null on an empty page")


class InvoiceListData(BaseModel):
    invoices: list[Invoice]
    pagination: Pagination


class InvoiceData(BaseModel):
    invoice: Invoice


class OrderListData(BaseModel):
    orders: list[Order]
    pagination: Pagination


class OrderData(BaseModel):
    order: Order


class InvoiceListEnvelope(BaseModel):
    success: Literal[True]
    data: InvoiceListData
    message: None
    status: int = Field(examples=[200])


class InvoiceEnvelope(BaseModel):
    success: Literal[True]
    data: InvoiceData
    message: None
    status: int = Field(examples=[200])


class OrderListEnvelope(BaseModel):
    success: Literal[True]
    data: OrderListData
    message: None
    status: int = Field(examples=[200])


class OrderEnvelope(BaseModel):
    success: Literal[True]
    data: OrderData
    message: None
    status: int = Field(examples=[200])


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    error_code: str = Field(
        description="INVOICE_NOT_FOUND, ORDER_NOT_FOUND, UNAUTHORIZED, RATE_LIMIT_EXCEEDED, "
        "VALIDATION_ERROR, NOT_FOUND, METHOD_NOT_ALLOWED",
        examples=["INVOICE_NOT_FOUND"],
    )
    message: str = Field(examples=["No invoice found with increment ID: 100000999"])
    status: int = Field(examples=[404])
    errors: dict[str, list[str]] | None = Field(
        default=None, description="Only on VALIDATION_ERROR: each bad parameter's messages."
    )
