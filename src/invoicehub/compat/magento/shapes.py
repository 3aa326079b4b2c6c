"""The hub's wire shapes: invoices, items, orders and page meta as the document shows them
(amounts as decimal strings in the currency's decimals, ISO 8601 UTC timestamps)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.responses import JSONResponse

from invoicehub.compat.magento.schemas import STATE_WORDS
from invoicehub.compat.wire import iso_z
from invoicehub.invoices.repository import InvoiceRecord, LineRecord
from invoicehub.kit.money import currency, format_amount
from invoicehub.models import Invoice, InvoiceLineItem, Order, Store


def ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "message": None, "status": 200})


def quantity(value: Decimal) -> int | float:
    """The document's integer qty; a fractional quantity (a product sold by weight) stays
    a plain JSON number rather than being rounded."""
    return int(value) if value == value.to_integral_value() else float(value)


def store_ref(store: Store | None) -> dict[str, Any] | None:
    return None if store is None else {"id": store.id, "name": store.name}


def shown_updated_at(invoice: Invoice | InvoiceRecord) -> dt.datetime:
    # The core keeps Magento's updated_at there, which can precede the hub's own record;
    # a record is never shown as updated before it was created.
    return max(invoice.created_at, invoice.updated_at)


def invoice_object(
    invoice: Invoice | InvoiceRecord,
    orders_by_id: Mapping[int, Order],
    stores_by_id: Mapping[int, Store],
    lines: Sequence[InvoiceLineItem | LineRecord] | None,
) -> dict[str, Any]:
    cur = currency(invoice.currency)
    order = orders_by_id.get(invoice.order_id) if invoice.order_id else None
    store_id = invoice.store_id or (order.store_id if order else None)
    created, updated = iso_z(invoice.created_at), iso_z(shown_updated_at(invoice))
    body: dict[str, Any] = {
        "id": invoice.id,
        "increment_id": invoice.number,
        "magento_invoice_id": int(invoice.external_id or 0),
        "order": {"id": order.id, "increment_id": order.increment_id} if order else None,
        "magento_store": store_ref(stores_by_id.get(store_id) if store_id else None),
        "state": STATE_WORDS[invoice.status],
        "customer_name": invoice.customer_name,
        "customer_email": invoice.customer_email,
        "subtotal": format_amount(invoice.subtotal_minor, cur),
        "tax_amount": format_amount(invoice.tax_minor, cur),
        "shipping_amount": format_amount(invoice.shipping_minor, cur),
        "discount_amount": format_amount(invoice.discount_minor, cur),
        "grand_total": format_amount(invoice.total_minor, cur),
        "invoiced_at": iso_z(invoice.invoiced_at),
        "created_at": created,
        "updated_at": updated,
    }
    if lines is not None:
        # Items are written with their invoice on every sync, so they share its record times.
        body["items"] = [
            {
                "id": line.id,
                "sku": line.sku,
                "name": line.description,
                "qty": quantity(line.quantity),
                "price": format_amount(line.unit_price_minor, cur),
                "row_total": format_amount(line.amount_minor, cur),
                "created_at": created,
                "updated_at": updated,
            }
            for line in lines
        ]
    return body


def order_item(item: Mapping[str, Any]) -> dict[str, Any]:
    try:
        qty: int | float | None = quantity(Decimal(str(item.get("qty"))))
    except InvalidOperation:
        qty = None
    return {
        "magento_item_id": item.get("magento_item_id"),
        "sku": item.get("sku"),
        "name": item.get("name") or "",
        "qty": qty,
        "price": item.get("price"),
        "row_total": item.get("row_total"),
    }


def order_object(order: Order, store: Store | None) -> dict[str, Any]:
    return {
        "id": order.id,
        "increment_id": order.increment_id,
        "magento_order_id": int(order.external_id),
        "magento_store": store_ref(store),
        "state": order.state,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "currency": order.currency,
        "grand_total": format_amount(order.grand_total_minor, currency(order.currency)),
        "items": [order_item(item) for item in order.items or [] if isinstance(item, dict)],
        "ordered_at": iso_z(order.source_created_at),
        "created_at": iso_z(order.created_at),
        "updated_at": iso_z(order.updated_at),
    }


def pagination(page: int, per_page: int, total: int, shown: int) -> dict[str, Any]:
    first = (page - 1) * per_page + 1
    return {
        "current_page": page,
        "per_page": per_page,
        "total": total,
        "last_page": max(1, math.ceil(total / per_page)),
        "from": first if shown else None,
        "to": first + shown - 1 if shown else None,
    }
