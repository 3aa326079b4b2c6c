"""A local fake of Magento 2's REST API (GET /rest/V1/orders and /rest/V1/invoices), and
builders for the JSON Magento writes.

The fake answers searchCriteria as Magento does: filter groups ANDed, filters inside a
group ORed, conditions eq/neq/gt/gteq/lt/lteq/in/like, sortOrders, pageSize and
currentPage (which Magento clamps to the last page, so a client that pages until an empty
answer never stops), and {"items", "search_criteria", "total_count"} answers. It checks
the integration token and records every search it answered, so tests can see the pages.
Null fields are left out, as Magento's REST API does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "magento-integration-token"
MAIN_STORE = (1, "Main Website\nMain Website Store\nMain Store")
OUTLET_STORE = (2, "Main Website\nOutlet Store\nOutlet")
TOKYO_STORE = (3, "Japan Website\nJapan Store\nTokyo")


def _number(value: Decimal | int | str) -> float | int:
    """What PHP's json_encode writes for a decimal column: an int or the shortest float."""
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def magento_order(
    entity_id: int,
    increment_id: str,
    *,
    email: str,
    firstname: str | None,
    lastname: str | None,
    items: Iterable[tuple[str, str, Decimal | int | str, Decimal | str]],
    grand_total: Decimal | str,
    created_at: str,
    updated_at: str | None = None,
    store: tuple[int, str] = MAIN_STORE,
    currency: str = "USD",
    state: str = "processing",
) -> dict[str, Any]:
    """An order as GET /rest/V1/orders writes it (the fields the hub reads, and some more)."""
    rows = []
    for index, (sku, name, qty, price) in enumerate(items):
        row_total = Decimal(str(qty)) * Decimal(str(price))
        rows.append(
            {
                "item_id": entity_id * 10 + index,
                "order_id": entity_id,
                "sku": sku,
                "name": name,
                "product_type": "simple",
                "qty_ordered": _number(qty),
                "qty_invoiced": 0,
                "price": _number(price),
                "base_price": _number(price),
                "row_total": _number(row_total.quantize(Decimal("0.01"))),
                "store_id": store[0],
                "created_at": created_at,
                "updated_at": updated_at or created_at,
            }
        )
    order: dict[str, Any] = {
        "entity_id": entity_id,
        "increment_id": increment_id,
        "state": state,
        "status": state,
        "store_id": store[0],
        "store_name": store[1],
        "customer_email": email,
        "customer_is_guest": 0 if firstname else 1,
        "order_currency_code": currency,
        "base_currency_code": currency,
        "global_currency_code": currency,
        "store_currency_code": currency,
        "grand_total": _number(grand_total),
        "base_grand_total": _number(grand_total),
        "created_at": created_at,
        "updated_at": updated_at or created_at,
        "items": rows,
        "billing_address": {
            "address_type": "billing",
            "email": email,
            "firstname": firstname or "Guest",
            "lastname": lastname or "Buyer",
            "city": "Austin",
            "country_id": "US",
        },
    }
    if firstname:
        order["customer_firstname"] = firstname
    if lastname:
        order["customer_lastname"] = lastname
    return order


def magento_invoice(
    entity_id: int,
    increment_id: str,
    order: dict[str, Any],
    *,
    state: int,
    subtotal: Decimal | str,
    tax: Decimal | str = "0",
    shipping: Decimal | str = "0",
    discount: Decimal | str = "0",
    grand_total: Decimal | str | None = None,
    items: Iterable[tuple[str, str, Decimal | int | str, Decimal | str, Decimal | str]] = (),
    created_at: str,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """An invoice as GET /rest/V1/invoices writes it. ``discount`` is Magento's negative
    number; ``items`` are (sku, name, qty, price, row_total)."""
    total = (
        Decimal(str(grand_total))
        if grand_total is not None
        else Decimal(str(subtotal))
        + Decimal(str(tax))
        + Decimal(str(shipping))
        + Decimal(str(discount))
    )
    currency = order["order_currency_code"]
    rows = [
        {
            "entity_id": entity_id * 10 + index,
            "parent_id": entity_id,
            "order_item_id": order["entity_id"] * 10 + index,
            "product_id": 100 + index,
            "sku": sku,
            "name": name,
            "qty": _number(qty),
            "price": _number(price),
            "base_price": _number(price),
            "row_total": _number(row_total),
            "base_row_total": _number(row_total),
            "tax_amount": 0,
        }
        for index, (sku, name, qty, price, row_total) in enumerate(items)
    ]
    return {
        "entity_id": entity_id,
        "increment_id": increment_id,
        "order_id": order["entity_id"],
        "store_id": order["store_id"],
        "state": state,
        "order_currency_code": currency,
        "base_currency_code": currency,
        "global_currency_code": currency,
        "store_currency_code": currency,
        "subtotal": _number(subtotal),
        "base_subtotal": _number(subtotal),
        "tax_amount": _number(tax),
        "base_tax_amount": _number(tax),
        "shipping_amount": _number(shipping),
        "base_shipping_amount": _number(shipping),
        "discount_amount": _number(discount),
        "base_discount_amount": _number(discount),
        "grand_total": _number(total),
        "base_grand_total": _number(total),
        "total_qty": _number(sum((Decimal(str(row["qty"])) for row in rows), Decimal(0))),
        "email_sent": 1,
        "created_at": created_at,
        "updated_at": updated_at or created_at,
        "items": rows,
        "comments": [],
    }


def search_result(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What GET /rest/V1/<entity> answers without searchCriteria filters."""
    return {
        "items": items,
        "search_criteria": {"filter_groups": [], "page_size": len(items), "current_page": 1},
        "total_count": len(items),
    }


# ------------------------------------------------------------------ the server

_KEY = re.compile(r"\[([^\]]*)\]")


def parse_search_criteria(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """searchCriteria[filter_groups][0][filters][0][field]=x -> nested dicts (lists by index)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        if not key.startswith("searchCriteria"):
            continue
        path = _KEY.findall(key[len("searchCriteria") :])
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if path:
            node[path[-1]] = value
    return root


def _ordered(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 0)]


def _comparable(left: Any, right: str) -> tuple[Any, Any]:
    try:
        return Decimal(str(left)), Decimal(right)
    except Exception:
        return str(left), right


def _matches(record: dict[str, Any], field: str, value: str, condition: str) -> bool:
    actual = record.get(field)
    if condition in ("null", "notnull"):
        return (actual is None) == (condition == "null")
    if actual is None:
        return False
    if condition == "in":
        return str(actual) in value.split(",")
    if condition == "like":
        pattern = "^" + re.escape(value).replace("%", ".*") + "$"
        return re.match(pattern, str(actual), re.IGNORECASE) is not None
    left, right = _comparable(actual, value)
    return {
        "eq": left == right,
        "neq": left != right,
        "gt": left > right,
        "gteq": left >= right,
        "lt": left < right,
        "lteq": left <= right,
    }[condition]


def search(
    records: list[dict[str, Any]], criteria: dict[str, Any], *, page_size_cap: int | None = None
) -> dict[str, Any]:
    """Magento's searchCriteria applied to ``records`` (``page_size_cap``: a store that
    serves fewer records per page than asked)."""
    groups = []
    for group in _ordered(criteria.get("filter_groups", {})):
        filters = [
            (f["field"], f.get("value", ""), f.get("condition_type", "eq"))
            for f in _ordered(group.get("filters", {}))
        ]
        groups.append(filters)
    found = [
        r for r in records if all(any(_matches(r, *f) for f in group) for group in groups if group)
    ]
    sort_orders = [
        (s["field"], s.get("direction", "ASC").upper())
        for s in _ordered(criteria.get("sortOrders", {}))
    ]
    for field, direction in reversed(sort_orders):
        found.sort(key=lambda r: _comparable(r.get(field, ""), "0")[0], reverse=direction == "DESC")
    total = len(found)
    page_size = int(criteria.get("pageSize", 0) or 0)
    if page_size_cap is not None:
        page_size = min(page_size or page_size_cap, page_size_cap)
    current = int(criteria.get("currentPage", 1) or 1)
    items = found
    if page_size:
        last_page = max(1, -(-total // page_size))
        current = min(current, last_page)  # Magento's Collection::getCurPage() clamps
        items = found[(current - 1) * page_size : current * page_size]
    echo: dict[str, Any] = {
        "filter_groups": [
            {"filters": [{"field": f, "value": v, "condition_type": c} for f, v, c in g]}
            for g in groups
        ],
    }
    if sort_orders:
        echo["sort_orders"] = [{"field": f, "direction": d} for f, d in sort_orders]
    if page_size:
        echo["page_size"] = page_size
    echo["current_page"] = current
    return {"items": items, "search_criteria": echo, "total_count": total}


class FakeMagento:
    """Serves ``orders`` and ``invoices`` on 127.0.0.1 as a Magento 2 store would."""

    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.orders: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.searches: list[tuple[str, dict[str, Any]]] = []  # (resource, searchCriteria)
        self.page_size_cap: int | None = None
        self.lock = threading.Lock()
        # Called after each answer with (resource, criteria): lets a test change the shop
        # between two pages, as a live store does.
        self.after_answer: Callable[[str, dict[str, Any]], None] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                fake._answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeMagento:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def searches_of(self, resource: str) -> list[dict[str, Any]]:
        return [criteria for name, criteria in self.searches if name == resource]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        match = re.fullmatch(r"/rest(?:/[a-z0-9_]+)?/V1/(orders|invoices)", url.path)
        if match is None:
            self._send(handler, 404, {"message": "Request does not match any route."})
            return
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(
                handler,
                401,
                {
                    "message": "The consumer isn't authorized to access %resources.",
                    "parameters": {"resources": "Magento_Sales::actions_view"},
                },
            )
            return
        resource = match.group(1)
        criteria = parse_search_criteria(parse_qsl(url.query, keep_blank_values=True))
        with self.lock:
            records = list(self.orders if resource == "orders" else self.invoices)
            self.searches.append((resource, criteria))
            answer = json.dumps(search(records, criteria, page_size_cap=self.page_size_cap))
        if self.after_answer is not None:  # before the client can ask for the next page
            self.after_answer(resource, criteria)
        self._send(handler, 200, answer)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def filters_of(criteria: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The (field, value, condition) of every filter of one recorded search."""
    return [
        (f["field"], f.get("value", ""), f.get("condition_type", "eq"))
        for group in _ordered(criteria.get("filter_groups", {}))
        for f in _ordered(group.get("filters", {}))
    ]


# ------------------------------------------------------------------ data sets


def doc_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """The order and the invoice behind seed 003's example responses."""
    order = magento_order(
        123,
        "000000123",
        email="john@example.com",
        firstname="John",
        lastname="Doe",
        items=[("WIDGET-001", "Premium Widget", 2, "44.99")],
        grand_total="102.19",
        created_at="2024-01-15 14:30:00",
        updated_at="2024-01-15 14:40:00",
    )
    invoice = magento_invoice(
        456,
        "100000123",
        order,
        state=2,
        subtotal="89.99",
        tax="7.20",
        shipping="5.00",
        discount="0",
        items=[("WIDGET-001", "Premium Widget", 2, "44.99", "89.98")],
        created_at="2024-01-15 14:40:00",
    )
    return order, invoice


CUSTOMERS = [
    ("John", "Doe", "john@example.com"),
    ("Big", "John", "BigJohn@Example.com"),
    ("Jane", "Smith", "jane.smith@example.org"),
    ("Ana", "Lima", "ana@shop.example"),
    (None, None, "guest@example.net"),
]


def catalogue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A store's worth of orders and invoices around the document's example: 89 paid
    invoices (so ``state=paid&per_page=25`` pages as the example does), 5 open, 2
    canceled; January and February 2024 and one in December 2023; one order invoiced twice;
    a JPY order; a fractional quantity; discounts."""
    doc_order, doc_invoice = doc_example()
    orders, invoices = [doc_order], [doc_invoice]
    plan = (
        [(2, "2024-01", day) for day in range(77)]
        + [(2, "2024-02", day) for day in range(9)]
        + [(1, "2024-01", day) for day in range(3)]
        + [(1, "2024-02", 0)]
        + [(3, "2024-01", 5), (3, "2023-12", 20)]
    )
    for k, (state, month, day) in enumerate(plan):
        first, last, email = CUSTOMERS[k % len(CUSTOMERS)]
        created = f"{month}-{day % 28 + 1:02d} {9 + k % 9:02d}:{(k * 7) % 60:02d}:{k % 59 + 1:02d}"
        subtotal = Decimal("11.25") + Decimal("1.25") * k
        tax = (subtotal * Decimal("0.08")).quantize(Decimal("0.01"))
        shipping = Decimal("5.00") if k % 3 else Decimal(0)
        discount = Decimal("-5.00") if k % 4 == 0 else Decimal(0)
        items = [
            (f"SKU-{k:03d}", f"Product {k}", 1, subtotal - 10, subtotal - 10),
            ("GIFT-WRAP", "Gift wrap", 2, "5.00", "10.00"),
        ]
        order = magento_order(
            1000 + k,
            f"{1000 + k:09d}",
            email=email,
            firstname=first,
            lastname=last,
            items=[(sku, name, qty, price) for sku, name, qty, price, _ in items],
            grand_total=subtotal + tax + shipping + discount,
            created_at=created,
            store=OUTLET_STORE if k % 5 == 4 else MAIN_STORE,
        )
        orders.append(order)
        invoices.append(
            magento_invoice(
                2000 + k,
                f"{200000000 + k}",
                order,
                state=state,
                subtotal=subtotal,
                tax=tax,
                shipping=shipping,
                discount=discount,
                items=items,
                created_at=created,
            )
        )
    # One order invoiced twice (a partial invoice, then the rest).
    split = magento_order(
        777,
        "000000777",
        email="jane.smith@example.org",
        firstname="Jane",
        lastname="Smith",
        items=[("LAMP-01", "Desk lamp", 3, "30.00")],
        grand_total="90.00",
        created_at="2024-01-19 10:00:00",
    )
    orders.append(split)
    invoices.append(
        magento_invoice(
            7771,
            "100000777",
            split,
            state=2,
            subtotal="60.00",
            items=[("LAMP-01", "Desk lamp", 2, "30.00", "60.00")],
            created_at="2024-01-20 09:00:00",
        )
    )
    invoices.append(
        magento_invoice(
            7772,
            "100000778",
            split,
            state=1,
            subtotal="30.00",
            items=[("LAMP-01", "Desk lamp", 1, "30.00", "30.00")],
            created_at="2024-02-03 09:00:00",
        )
    )
    # Coffee by weight, in a paid February invoice.
    coffee = magento_order(
        888,
        "000000888",
        email="ana@shop.example",
        firstname="Ana",
        lastname="Lima",
        items=[("COFFEE-KG", "Coffee beans (kg)", "1.5", "20.00")],
        grand_total="30.00",
        created_at="2024-02-10 08:00:00",
    )
    orders.append(coffee)
    invoices.append(
        magento_invoice(
            8881,
            "100000888",
            coffee,
            state=2,
            subtotal="30.00",
            items=[("COFFEE-KG", "Coffee beans (kg)", "1.5", "20.00", "30.00")],
            created_at="2024-02-10 08:05:00",
        )
    )
    # A yen order: no minor unit.
    yen = magento_order(
        999,
        "000000999",
        email="kenji@example.jp",
        firstname="Kenji",
        lastname="Sato",
        items=[("TEA-JP", "Matcha", 3, "1500")],
        grand_total="4950",
        created_at="2024-02-12 12:00:00",
        store=TOKYO_STORE,
        currency="JPY",
    )
    orders.append(yen)
    invoices.append(
        magento_invoice(
            9991,
            "100000901",
            yen,
            state=1,
            subtotal="4500",
            tax="450",
            items=[("TEA-JP", "Matcha", 3, "1500", "4500")],
            created_at="2024-02-12 12:01:00",
        )
    )
    return orders, invoices
