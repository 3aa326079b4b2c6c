"""Records a shop sync brings in, in neutral terms: the seed adapters (Magento) translate
their wire format into these, and the orders service stores them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ImportedState = Literal["open", "paid", "cancelled"]


@dataclass(frozen=True, slots=True)
class ImportedStore:
    external_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ImportedLine:
    external_id: str | None
    sku: str | None
    name: str
    quantity: Decimal
    unit_price: Decimal
    row_total: Decimal
    tax: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    ref: str  # how to name it in an error ("orders[3] (increment_id 000000123)")
    external_id: str
    increment_id: str
    currency: str
    grand_total: Decimal
    store: ImportedStore | None = None
    state: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    items: list[dict[str, object]] = field(default_factory=list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportedInvoice:
    ref: str
    external_id: str
    increment_id: str
    state: ImportedState
    currency: str
    subtotal: Decimal
    tax: Decimal
    shipping: Decimal
    discount: Decimal
    grand_total: Decimal
    lines: list[ImportedLine]
    order_external_id: str | None = None
    store: ImportedStore | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportResult:
    orders_created: int = 0
    orders_updated: int = 0
    invoices_created: int = 0
    invoices_updated: int = 0
    latest_update: dt.datetime | None = None
