"""Magento 2 REST JSON -> the core's neutral import records. No database, no HTTP.

Reads what ``GET /rest/V1/orders`` and ``GET /rest/V1/invoices`` return: a search result
``{"items": [...], "search_criteria": {...}, "total_count": N}`` (or one bare entity, as
``GET /rest/V1/invoices/{id}`` returns). Every record is checked and translated before the
core sees any of them, so a bad one is named with its field and nothing is stored.

JSON numbers are read as exact decimals (``parse_float=Decimal``), never binary floats.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from invoicehub.errors import ValidationFailed
from invoicehub.kit.money import Currency, MoneyError, currency, format_amount, to_minor
from invoicehub.orders.schemas import (
    ImportedInvoice,
    ImportedLine,
    ImportedOrder,
    ImportedState,
    ImportedStore,
)

SOURCE = "magento"

# Magento's sales_invoice.state -> the core's imported state.
INVOICE_STATES: dict[int, ImportedState] = {1: "open", 2: "paid", 3: "cancelled"}

MAGENTO_TIME = "%Y-%m-%d %H:%M:%S"

Kind = Literal["order", "invoice"]


class MagentoDataError(ValidationFailed):
    """A record that cannot be imported. The message names the record and the field."""

    def __init__(self, ref: str, field: str | None, message: str) -> None:
        text = f"{ref}: {field}: {message}" if field else f"{ref}: {message}"
        super().__init__(text, param=field, code="invalid_magento_record")


@dataclass(slots=True)
class MagentoRecords:
    """Everything one import or one sync brings, in the core's terms."""

    orders: list[ImportedOrder] = field(default_factory=list)
    invoices: list[ImportedInvoice] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Raw:
    ref: str  # "invoices.json items[3]"
    data: Mapping[str, Any]


# ------------------------------------------------------------------ reading documents


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(text: str | bytes, *, name: str) -> Any:
    """Parses a Magento answer or export; numbers become exact ``Decimal``s."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise MagentoDataError(name, None, f"is not UTF-8 text ({exc.reason})") from exc
    except ValueError as exc:
        raise MagentoDataError(name, None, f"is not valid JSON: {exc}") from exc


def items_of(data: Any, *, name: str) -> list[Any]:
    """The records of a search result, of a bare list, or one bare entity."""
    if isinstance(data, dict):
        if "items" in data and "entity_id" not in data:
            items = data["items"]
            if items is None:  # Magento leaves out or nulls an empty list in some versions
                return []
            if not isinstance(items, list):
                raise MagentoDataError(name, "items", "must be a list of records")
            return items
        if "entity_id" in data:
            return [data]
    if isinstance(data, list):
        return data
    raise MagentoDataError(
        name,
        None,
        'is not a Magento search result: expected {"items": [...], "total_count": N} '
        "as GET /rest/V1/invoices or /rest/V1/orders return",
    )


def _kind(raw: _Raw) -> Kind:
    data = raw.data
    if "order_id" in data:
        return "invoice"
    if any(key in data for key in ("status", "customer_email", "customer_is_guest")):
        return "order"
    raise MagentoDataError(
        _ref(raw, "increment_id"),
        "order_id",
        "missing: cannot tell an invoice (which has order_id) from an order "
        "(which has status and customer_email)",
    )


def records_from(documents: Iterable[tuple[str, Any]]) -> MagentoRecords:
    """Translates parsed documents (name, JSON) into the core's records, all or nothing.

    Orders are read first, so an invoice can take its store's name and, when it lacks
    ``order_currency_code``, its currency from its order in the same import."""
    orders: list[_Raw] = []
    invoices: list[_Raw] = []
    for name, data in documents:
        for index, item in enumerate(items_of(data, name=name)):
            ref = f"{name} items[{index}]"
            if not isinstance(item, dict):
                raise MagentoDataError(ref, None, "is not a JSON object")
            raw = _Raw(ref, item)
            (orders if _kind(raw) == "order" else invoices).append(raw)

    records = MagentoRecords()
    store_names: dict[str, str] = {}
    order_currencies: dict[str, str] = {}
    seen: dict[str, str] = {}
    for raw in orders:
        order = _order(raw)
        _once(seen, f"order {order.external_id}", order.ref)
        records.orders.append(order)
        order_currencies[order.external_id] = order.currency
        if order.store is not None:
            store_names[order.store.external_id] = order.store.name
    for raw in invoices:
        invoice = _invoice(raw, store_names, order_currencies)
        _once(seen, f"invoice {invoice.external_id}", invoice.ref)
        records.invoices.append(invoice)
    return records


def _once(seen: dict[str, str], key: str, ref: str) -> None:
    if key in seen:
        raise MagentoDataError(
            ref, "entity_id", f"{key.split()[1]} appears twice in this import (also {seen[key]})"
        )
    seen[key] = ref


# ------------------------------------------------------------------ field readers


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_timestamp(value: str) -> dt.datetime:
    """Magento's "2024-01-15 14:40:00" (UTC) or any ISO 8601 form; naive means UTC."""
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def magento_time(value: dt.datetime) -> str:
    """The form Magento writes and filters timestamps in (UTC, no zone)."""
    return value.astimezone(dt.UTC).strftime(MAGENTO_TIME)


def store_name(raw: str) -> str:
    """Magento's store_name is "Website\\nStore\\nStore View"; the store_id it comes with
    names the store view, so the store view's line (the last) names the store."""
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass(frozen=True, slots=True)
class _Fields:
    """Reads one JSON object's fields; errors name the record and the field's full path
    (``items[2].qty``)."""

    data: Mapping[str, Any]
    ref: str
    prefix: str = ""

    def fail(self, key: str, message: str) -> MagentoDataError:
        return MagentoDataError(self.ref, f"{self.prefix}{key}", message)

    def has(self, key: str) -> bool:
        return not _missing(self.data.get(key))

    def entity_id(self, key: str, *, allow_zero: bool = False) -> str:
        value = self.data.get(key)
        if _missing(value):
            raise self.fail(key, "missing")
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())
        ):
            raise self.fail(key, f"must be a whole number, got {value!r}")
        number = int(value)
        if number < (0 if allow_zero else 1) or number >= 2**63:
            raise self.fail(key, f"must be a positive id, got {value!r}")
        return str(number)

    def text(self, key: str, *, required: bool = False, limit: int = 255) -> str | None:
        value = self.data.get(key)
        if _missing(value):
            if required:
                raise self.fail(key, "missing")
            return None
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            value = str(value)  # an increment id written as a number
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {value!r}")
        text = value.strip()
        if len(text) > limit:
            raise self.fail(key, f"is longer than {limit} characters")
        if "\x00" in text:
            raise self.fail(key, "must not contain a NUL character")
        return text

    def number(self, key: str, *, default: Decimal | None = None) -> Decimal:
        """A JSON number (or a numeric string, as some Magento extensions write them)."""
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, "missing")
            return default
        if isinstance(value, float):  # parsed without load_json: its shortest repr is exact
            value = Decimal(repr(value))
        if isinstance(value, bool):
            raise self.fail(key, f"must be a number, got {value!r}")
        if isinstance(value, int | Decimal):
            number = Decimal(value)
        elif isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise self.fail(key, f"must be a number, got {value!r}") from None
        else:
            raise self.fail(key, f"must be a number, got {value!r}")
        if not number.is_finite():
            raise self.fail(key, f"must be a finite number, got {value!r}")
        return number

    def exact(self, key: str, cur: Currency, *, default: Decimal | None = None) -> Decimal:
        """An amount the currency holds exactly (row totals, taxes), checked here so the
        error names the item by its place in the file."""
        value = self.number(key, default=default)
        try:
            to_minor(value, cur)
        except MoneyError as exc:
            raise self.fail(key, str(exc)) from None
        return value

    def unit_price(self, key: str, cur: Currency) -> Decimal:
        """Magento may keep a unit price to 4 decimals; it is shown to the currency's
        minor unit (half up). Row totals, which an invoice adds up, are never rounded."""
        value = self.number(key)
        if value < 0:
            raise self.fail(key, "must not be negative")
        rounded = value.quantize(cur.quantum, rounding=ROUND_HALF_UP)
        try:
            to_minor(rounded, cur)
        except MoneyError as exc:
            raise self.fail(key, str(exc)) from None
        return rounded

    def quantity(self, key: str) -> Decimal:
        qty = self.number(key)
        if qty < 0:
            raise self.fail(key, f"must not be negative, got {qty}")
        if qty >= 10**9 or qty != qty.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP):
            raise self.fail(key, f"is not a quantity Magento keeps, got {qty}")
        return qty

    def timestamp(self, key: str) -> dt.datetime | None:
        value = self.data.get(key)
        if _missing(value):
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a timestamp string, got {value!r}")
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            raise self.fail(
                key, f'must be a timestamp like "2024-01-15 14:40:00", got {value!r}'
            ) from None

    def currency(self, key: str, fallback: str | None = None, why: str = "") -> Currency:
        value = self.data.get(key)
        if _missing(value):
            if fallback is None:
                raise self.fail(key, f"missing{why}")
            value = fallback
        if not isinstance(value, str):
            raise self.fail(key, f"must be an ISO 4217 code, got {value!r}")
        try:
            return currency(value)
        except MoneyError as exc:
            raise self.fail(key, str(exc)) from None

    def objects(self, key: str) -> list[tuple[int, _Fields]]:
        """A list of objects (``items``), each with its own field reader."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        rows = []
        for index, item in enumerate(value):
            where = f"{self.prefix}{key}[{index}]"
            if not isinstance(item, dict):
                raise MagentoDataError(self.ref, where, "is not a JSON object")
            rows.append((index, _Fields(item, self.ref, f"{where}.")))
        return rows


def _customer_name(data: Mapping[str, Any]) -> str | None:
    def joined(source: Mapping[str, Any], *keys: str) -> str:
        parts = [source.get(key) for key in keys]
        return " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())

    name = joined(data, "customer_firstname", "customer_middlename", "customer_lastname")
    billing = data.get("billing_address")
    if not name and isinstance(billing, dict):  # guest orders name the buyer only there
        name = joined(billing, "firstname", "middlename", "lastname")
    return name.replace("\x00", "")[:200] or None


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ------------------------------------------------------------------ records


def _ref(raw: _Raw, kind: str) -> str:
    increment = raw.data.get("increment_id")
    if isinstance(increment, str | int) and not isinstance(increment, bool) and str(increment):
        return f"{raw.ref} ({kind} {increment})"
    return raw.ref


def _order(raw: _Raw) -> ImportedOrder:
    ref = _ref(raw, "order")
    fields = _Fields(raw.data, ref)
    external_id = fields.entity_id("entity_id")
    increment_id = fields.text("increment_id", required=True, limit=64)
    assert increment_id is not None
    cur = fields.currency("order_currency_code")
    store = None
    if fields.has("store_id"):
        store_id = fields.entity_id("store_id", allow_zero=True)
        name = store_name(fields.text("store_name", limit=1000) or "")
        if name:
            store = ImportedStore(external_id=store_id, name=name[:255])
    lines: list[dict[str, object]] = []
    for _index, item in fields.objects("items"):
        if item.has("parent_item_id"):
            continue  # a configurable's or bundle's child row; its parent carries the price
        qty = item.quantity("qty_ordered" if item.has("qty_ordered") else "qty")
        price = item.unit_price("price", cur)
        row_total = item.exact(
            "row_total", cur, default=(price * qty).quantize(cur.quantum, rounding=ROUND_HALF_UP)
        )
        lines.append(
            {
                "magento_item_id": _optional_int(item.data.get("item_id")),
                "sku": item.text("sku", limit=100),
                "name": item.text("name", limit=1000) or "",
                "qty": str(qty.normalize()),
                "price": format_amount(to_minor(price, cur), cur),
                "row_total": format_amount(to_minor(row_total, cur), cur),
            }
        )
    return ImportedOrder(
        ref=ref,
        external_id=external_id,
        increment_id=increment_id,
        currency=cur.code,
        grand_total=fields.number("grand_total"),
        store=store,
        state=fields.text("state", limit=32),
        customer_email=fields.text("customer_email", limit=320),
        customer_name=_customer_name(raw.data),
        items=lines,
        created_at=fields.timestamp("created_at"),
        updated_at=fields.timestamp("updated_at"),
    )


def _invoice_state(fields: _Fields) -> ImportedState:
    value = fields.data.get("state")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None:
        raise fields.fail("state", "missing")
    if isinstance(value, bool) or value not in INVOICE_STATES:
        raise fields.fail("state", f"must be 1 (open), 2 (paid) or 3 (canceled), got {value!r}")
    return INVOICE_STATES[value]


def _invoice(
    raw: _Raw, store_names: Mapping[str, str], order_currencies: Mapping[str, str]
) -> ImportedInvoice:
    ref = _ref(raw, "invoice")
    fields = _Fields(raw.data, ref)
    external_id = fields.entity_id("entity_id")
    increment_id = fields.text("increment_id", required=True, limit=64)
    assert increment_id is not None
    order_id = fields.entity_id("order_id")
    state = _invoice_state(fields)
    cur = fields.currency(
        "order_currency_code",
        fallback=order_currencies.get(order_id),
        why=f", and order {order_id} is not in this import",
    )
    store = None
    if fields.has("store_id"):
        store_id = fields.entity_id("store_id", allow_zero=True)
        if store_id in store_names:
            store = ImportedStore(external_id=store_id, name=store_names[store_id])
    lines = []
    for _index, item in fields.objects("items"):
        qty = item.quantity("qty")
        if qty == 0:
            continue  # Magento writes a row for every order item, invoiced or not
        sku = item.text("sku", limit=100)
        lines.append(
            ImportedLine(
                external_id=str(order_item)
                if (order_item := _optional_int(item.data.get("order_item_id"))) is not None
                else None,
                sku=sku,
                name=item.text("name", limit=1000) or sku or "",
                quantity=qty,
                unit_price=item.unit_price("price", cur),
                row_total=item.exact("row_total", cur),
                tax=item.exact("tax_amount", cur, default=Decimal(0)),
            )
        )
    return ImportedInvoice(
        ref=ref,
        external_id=external_id,
        increment_id=increment_id,
        state=state,
        currency=cur.code,
        subtotal=fields.number("subtotal"),
        tax=fields.number("tax_amount", default=Decimal(0)),
        shipping=fields.number("shipping_amount", default=Decimal(0)),
        discount=fields.number("discount_amount", default=Decimal(0)),
        grand_total=fields.number("grand_total"),
        lines=lines,
        order_external_id=order_id,
        store=store,
        created_at=fields.timestamp("created_at"),
        updated_at=fields.timestamp("updated_at"),
    )
