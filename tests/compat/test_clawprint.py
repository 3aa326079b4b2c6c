"""Conformance: seed 004 (Clawprint invoices), every example request and every listed error,
through the real server at /compat/clawprint."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from sqlalchemy import text

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from tests.conftest import LiveServer, OrgKeys, create_org, make_settings
from tests.payments import fake_stripe as fs
from tests.payments.fake_stripe import FakeStripe, StripeErrorReply

PREFIX = "/compat/clawprint"
BASE = f"{PREFIX}/api"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MIDNIGHT = re.compile(r"^\d{4}-\d\d-\d\dT00:00:00Z$")
ERROR_KEYS = ["error", "message", "field"]

# "Create Invoice" exactly as the document's request (business_id is the caller's own).
DOCUMENTED_CREATE = {
    "customer_email": "client@example.com",
    "customer_name": "John Smith",
    "invoice_number": "INV-2024-001",
    "issued_date": "2024-02-15",
    "due_date": "2024-03-15",
    "currency": "USD",
    "notes": "Thank you for your business!",
    "payment_terms": "Net 30",
    "line_items": [
        {
            "description": "Website Development",
            "quantity": 1,
            "unit_price": 5000,
            "type": "service",
            "tax_rate": 10,
        },
        {
            "description": "Hosting Setup",
            "quantity": 1,
            "unit_price": 500,
            "type": "fee",
            "tax_rate": 0,
        },
    ],
}
# The "Invoice Workflow Example", step 1.
WORKFLOW_CREATE = {
    "customer_email": "client@example.com",
    "customer_name": "John Smith",
    "line_items": [
        {
            "description": "Consulting Services",
            "quantity": 10,
            "unit_price": 500,
            "type": "service",
            "tax_rate": 10,
        }
    ],
}
INVOICE_KEYS = [
    "invoice_id", "business_id", "invoice_number", "customer_email", "customer_name", "status",
    "amount", "tax_amount", "total_amount", "currency", "issued_date", "due_date", "notes",
    "payment_terms", "line_items", "created_at", "updated_at",
]  # fmt: skip
LINE_KEYS = [
    "line_item_id", "invoice_id", "description", "quantity", "unit_price", "type", "tax_rate",
    "created_at",
]  # fmt: skip
SUMMARY_KEYS = [
    "invoice_id", "business_id", "invoice_number", "customer_email", "status", "amount",
    "tax_amount", "total_amount", "currency", "issued_date", "due_date", "created_at",
    "updated_at",
]  # fmt: skip


def bearer(keys: OrgKeys) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.public_key}:{keys.secret_key}"}


@pytest.fixture
def claw(server: LiveServer, org: OrgKeys) -> Iterator[httpx.Client]:
    with server.client() as client:
        client.headers.update(bearer(org))
        yield client


def create(
    client: httpx.Client, keys: OrgKeys, body: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    payload = {"business_id": keys.org_id, **(body or WORKFLOW_CREATE), **fields}
    response = client.post(f"{BASE}/invoices", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def get(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/invoices/{invoice_id}")
    assert response.status_code == 200, response.text
    return response.json()


def make_link(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    response = client.post(f"{BASE}/invoices/{invoice_id}/payment-link")
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(
    response: httpx.Response, status: int, title: str, field: str | None = ""
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ERROR_KEYS, body
    assert body["error"] == title, body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    if field != "":
        assert body["field"] == field, body
    return body


def in_session(settings: Settings, work: Any) -> Any:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            result = work(session)
            session.commit()
            return result
    finally:
        runtime.database.dispose()


def use_stripe(settings: Settings, keys: OrgKeys) -> None:
    """The organization's provider is Stripe (no API sets it yet; the tests do, as test_stripe)."""
    in_session(
        settings,
        lambda s: s.execute(
            text("UPDATE organizations SET payment_provider = 'stripe' WHERE id = :id"),
            {"id": keys.internal_id},
        ),
    )


# ------------------------------------------------------------------ create


def test_create_invoice_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    response = claw.post(f"{BASE}/invoices", json={"business_id": org.org_id, **DOCUMENTED_CREATE})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == INVOICE_KEYS
    assert body["invoice_id"].startswith("inv_")
    assert body["business_id"] == org.org_id
    assert (body["invoice_number"], body["status"], body["currency"]) == (
        "INV-2024-001",
        "draft",
        "USD",
    )
    assert (body["customer_email"], body["customer_name"]) == ("client@example.com", "John Smith")
    # The "Tax Calculation" rule, per line: 1 x 5000 at 10% + 1 x 500 at 0% -> 500 tax, 6000.
    assert (body["amount"], body["tax_amount"], body["total_amount"]) == (5500, 500, 6000)
    assert '"amount":5500,"tax_amount":500,"total_amount":6000' in response.text  # exact numbers
    assert (body["issued_date"], body["due_date"]) == (
        "2024-02-15T00:00:00Z",
        "2024-03-15T00:00:00Z",
    )
    assert (body["notes"], body["payment_terms"]) == ("Thank you for your business!", "Net 30")
    assert TIMESTAMP.match(body["created_at"])
    assert TIMESTAMP.match(body["updated_at"])
    first, second = body["line_items"]
    assert list(first) == LINE_KEYS
    assert first["line_item_id"].startswith("li_")
    assert first["line_item_id"] != second["line_item_id"]
    assert first["invoice_id"] == second["invoice_id"] == body["invoice_id"]
    assert (first["description"], first["quantity"], first["unit_price"], first["type"], first["tax_rate"]) == (
        "Website Development", 1, 5000, "service", 10,
    )  # fmt: skip
    assert (second["description"], second["unit_price"], second["type"], second["tax_rate"]) == (
        "Hosting Setup", 500, "fee", 0,
    )  # fmt: skip
    assert TIMESTAMP.match(first["created_at"])
    assert '"quantity":1,"unit_price":5000' in response.text


def test_the_workflow_examples_create_uses_the_documented_defaults(
    claw: httpx.Client, org: OrgKeys
) -> None:
    body = create(claw, org)
    today = dt.datetime.now(dt.UTC).date()
    assert re.fullmatch(rf"INV-{today.year}-\d{{3,}}", body["invoice_number"]), body[
        "invoice_number"
    ]
    assert body["issued_date"] == f"{today.isoformat()}T00:00:00Z"
    assert body["due_date"] == f"{(today + dt.timedelta(days=30)).isoformat()}T00:00:00Z"
    assert (body["currency"], body["status"]) == ("USD", "draft")
    # 10 x 500 at 10%
    assert (body["amount"], body["tax_amount"], body["total_amount"]) == (5000, 500, 5500)
    assert "notes" not in body
    assert "payment_terms" not in body
    assert body["line_items"][0]["quantity"] == 10
    following = create(claw, org)
    number = int(body["invoice_number"].rsplit("-", 1)[1])
    assert following["invoice_number"] == f"INV-{today.year}-{number + 1:03d}"


def test_amounts_are_exact_json_numbers(claw: httpx.Client, org: OrgKeys) -> None:
    line = {
        "description": "Widget",
        "quantity": 3,
        "unit_price": 19.99,
        "tax_rate": 7.5,
        "type": "product",
    }
    response = claw.post(
        f"{BASE}/invoices",
        json={"business_id": org.org_id, "customer_email": "a@example.com", "line_items": [line]},
    )
    assert response.status_code == 201, response.text
    # 59.97 x 7.5% = 4.49775 -> 4.50 (half-up per line)
    assert '"amount":59.97,"tax_amount":4.5,"total_amount":64.47' in response.text
    assert '"quantity":3,"unit_price":19.99,"type":"product","tax_rate":7.5' in response.text
    half = create(
        claw, org, line_items=[{"description": "Half", "quantity": 0.5, "unit_price": "10.50"}]
    )
    assert (
        half["amount"],
        half["line_items"][0]["quantity"],
        half["line_items"][0]["tax_rate"],
    ) == (5.25, 0.5, 0)
    assert half["line_items"][0]["type"] == "service"  # the default type


@pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "CAD", "AUD"])
def test_supported_currencies(claw: httpx.Client, org: OrgKeys, code: str) -> None:
    assert create(claw, org, currency=code)["currency"] == code
    assert create(claw, org, currency=code.lower())["currency"] == code


@pytest.mark.parametrize("code", ["JPY", "KZT", "usdx", ""])
def test_other_currencies_are_refused(claw: httpx.Client, org: OrgKeys, code: str) -> None:
    response = claw.post(
        f"{BASE}/invoices", json={"business_id": org.org_id, **WORKFLOW_CREATE, "currency": code}
    )
    assert_error(response, 400, "Invalid data", "currency")


def test_issue_and_due_dates_take_iso_8601(claw: httpx.Client, org: OrgKeys) -> None:
    body = create(
        claw, org, issued_date="2024-02-15T23:30:00-05:00", due_date="2024-03-15T00:00:00Z"
    )
    assert (body["issued_date"], body["due_date"]) == (
        "2024-02-16T00:00:00Z",
        "2024-03-15T00:00:00Z",
    )
    only_issued = create(claw, org, issued_date="2024-02-15")
    assert only_issued["due_date"] == "2024-03-16T00:00:00Z"  # 30 days from issue
    assert create(claw, org, invoice_number="CUSTOM-7")["invoice_number"] == "CUSTOM-7"
    taken = claw.post(
        f"{BASE}/invoices",
        json={"business_id": org.org_id, **WORKFLOW_CREATE, "invoice_number": "CUSTOM-7"},
    )
    assert_error(taken, 409, "Conflict")


def _line(**changes: Any) -> dict[str, Any]:
    line = {"description": "Consulting Services", "quantity": 10, "unit_price": 500, "tax_rate": 10}
    line.update(changes)
    return {key: value for key, value in line.items() if value is not ...}


@pytest.mark.parametrize(
    ("changes", "title", "field"),
    [
        # 400 Missing required fields
        ({"business_id": ...}, "Missing required fields", "business_id"),
        ({"business_id": ""}, "Missing required fields", "business_id"),
        ({"customer_email": ...}, "Missing required fields", "customer_email"),
        ({"customer_email": None}, "Missing required fields", "customer_email"),
        ({"line_items": ...}, "Missing required fields", "line_items"),
        (
            {"line_items": [_line(description=...)]},
            "Missing required fields",
            "line_items[0].description",
        ),
        (
            {"line_items": [_line(quantity=...)]},
            "Missing required fields",
            "line_items[0].quantity",
        ),
        (
            {"line_items": [_line(unit_price=...)]},
            "Missing required fields",
            "line_items[0].unit_price",
        ),
        # 400 Invalid email format
        ({"customer_email": "not-an-email"}, "Invalid email format", "customer_email"),
        ({"customer_email": "client@"}, "Invalid email format", "customer_email"),
        # 400 Line items required
        ({"line_items": []}, "Line items required", "line_items"),
        ({"line_items": "none"}, "Line items required", "line_items"),
        # 400 Invalid quantity
        ({"line_items": [_line(quantity=0)]}, "Invalid quantity", "line_items[0].quantity"),
        ({"line_items": [_line(quantity=-1)]}, "Invalid quantity", "line_items[0].quantity"),
        (
            {"line_items": [_line(), _line(quantity="ten")]},
            "Invalid quantity",
            "line_items[1].quantity",
        ),
        ({"line_items": [_line(quantity=0.0000001)]}, "Invalid quantity", "line_items[0].quantity"),
        # 400 invalid data
        ({"line_items": [_line(tax_rate=101)]}, "Invalid data", "line_items[0].tax_rate"),
        ({"line_items": [_line(tax_rate=-1)]}, "Invalid data", "line_items[0].tax_rate"),
        ({"line_items": [_line(type="subscription")]}, "Invalid data", "line_items[0].type"),
        ({"line_items": [_line(unit_price=-5)]}, "Invalid data", "line_items[0].unit_price"),
        ({"line_items": [_line(unit_price=10.999)]}, "Invalid data", "line_items[0].unit_price"),
        (
            {"line_items": [_line(description="x" * 1001)]},
            "Invalid data",
            "line_items[0].description",
        ),
        ({"line_items": ["not an object"]}, "Invalid data", "line_items[0]"),
        ({"issued_date": "15/02/2024"}, "Invalid data", "issued_date"),
        ({"issued_date": "2024-03-15", "due_date": "2024-02-15"}, "Invalid data", "due_date"),
        ({"customer_name": "x" * 201}, "Invalid data", "customer_name"),
        ({"notes": "a\u0000b"}, "Invalid data", "notes"),
        ({"invoice_number": "\u0000"}, "Invalid data", "invoice_number"),
        (
            {"line_items": [_line(description="\u0000")]},
            "Invalid data",
            "line_items[0].description",
        ),
    ],
)
def test_create_errors_as_documented(
    claw: httpx.Client, org: OrgKeys, changes: dict[str, Any], title: str, field: str
) -> None:
    body = {"business_id": org.org_id, **WORKFLOW_CREATE, **changes}
    body = {key: value for key, value in body.items() if value is not ...}
    assert_error(claw.post(f"{BASE}/invoices", json=body), 400, title, field)


def test_the_first_kind_of_error_is_reported_with_all_its_fields(claw: httpx.Client) -> None:
    body = assert_error(
        claw.post(
            f"{BASE}/invoices", json={"customer_email": "bad", "line_items": [{"quantity": 0}]}
        ),
        400,
        "Missing required fields",
        "business_id",
    )
    assert "business_id" in body["message"]
    assert "line_items[0].unit_price" in body["message"]
    assert_error(claw.post(f"{BASE}/invoices", json={}), 400, "Missing required fields")
    assert_error(claw.post(f"{BASE}/invoices"), 400, "Missing required fields", None)
    assert_error(
        claw.post(
            f"{BASE}/invoices", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        400,
        "Invalid data",
        None,
    )
    assert_error(claw.post(f"{BASE}/invoices", json=[1, 2]), 400, "Invalid data", None)


def test_unknown_fields_are_ignored(claw: httpx.Client, org: OrgKeys) -> None:
    body = create(claw, org, discount=100, line_items=[{**_line(), "sku": "X"}])
    assert body["total_amount"] == 5500


def test_unknown_or_foreign_business_is_not_found(
    claw: httpx.Client, org: OrgKeys, settings: Settings
) -> None:
    other = create_org(settings, name="Other business")
    for business_id in ("biz_abc123", other.org_id):
        made = claw.post(f"{BASE}/invoices", json={"business_id": business_id, **WORKFLOW_CREATE})
        assert_error(made, 404, "Not found", "business_id")
        listed = claw.get(f"{BASE}/invoices", params={"business_id": business_id})
        assert_error(listed, 404, "Not found", "business_id")


# ------------------------------------------------------------------ authentication


def test_authentication(server: LiveServer, org: OrgKeys, settings: Settings) -> None:
    other = create_org(settings, name="Other")
    tries = {
        "missing": {},
        "secret only": {"Authorization": f"Bearer {org.secret_key}"},
        "no colon": {"Authorization": f"Bearer {org.public_key}{org.secret_key}"},
        "empty secret": {"Authorization": f"Bearer {org.public_key}:"},
        "wrong pair": {"Authorization": f"Bearer {other.public_key}:{org.secret_key}"},
        "reversed": {"Authorization": f"Bearer {org.secret_key}:{org.public_key}"},
        "unknown secret": {"Authorization": f"Bearer {org.public_key}:sk_nope"},
        "basic scheme": {"Authorization": f"Basic {org.public_key}:{org.secret_key}"},
        "x-api-key": {"X-API-Key": org.secret_key},
    }
    with server.client() as client:
        for name, headers in tries.items():
            for method, path in (
                ("GET", "/invoices/inv_x"),
                ("GET", "/businesses"),
                ("POST", "/invoices"),
            ):
                response = client.request(method, f"{BASE}{path}", headers=headers)
                assert response.status_code == 401, (name, path, response.text)
                assert_error(response, 401, "Invalid authentication", None)
        ok = client.get(
            f"{BASE}/businesses",
            headers={"Authorization": f"bearer {org.public_key}:{org.secret_key}"},
        )
    assert ok.status_code == 200


def test_businesses_lists_the_keys_organization(claw: httpx.Client, org: OrgKeys) -> None:
    response = claw.get(f"{BASE}/businesses")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 1
    (business,) = body["businesses"]
    assert list(business) == ["business_id", "name", "created_at", "updated_at"]
    assert (business["business_id"], business["name"]) == (org.org_id, "Test Org")
    assert TIMESTAMP.match(business["created_at"])


# ------------------------------------------------------------------ list


def test_list_invoices_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    draft = create(claw, org, body=DOCUMENTED_CREATE, invoice_number=None)
    paid = create(claw, org)
    claw.patch(f"{BASE}/invoices/{paid['invoice_id']}", json={"status": "paid"}).raise_for_status()
    response = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": "draft", "limit": 20}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["invoices", "count", "business_id", "filter"]
    assert (body["count"], body["business_id"], body["filter"]) == (
        1,
        org.org_id,
        {"status": "draft", "limit": 20},
    )
    (item,) = body["invoices"]
    assert list(item) == SUMMARY_KEYS
    assert (item["invoice_id"], item["status"]) == (draft["invoice_id"], "draft")
    assert (item["amount"], item["tax_amount"], item["total_amount"]) == (5500, 500, 6000)
    assert (item["issued_date"], item["due_date"]) == (
        "2024-02-15T00:00:00Z",
        "2024-03-15T00:00:00Z",
    )
    everything = claw.get(f"{BASE}/invoices", params={"business_id": org.org_id}).json()
    assert [i["invoice_id"] for i in everything["invoices"]] == [
        paid["invoice_id"],
        draft["invoice_id"],
    ]  # newest first
    assert everything["filter"] == {"limit": 50}  # the default; no status filter
    one = claw.get(f"{BASE}/invoices", params={"business_id": org.org_id, "limit": 1}).json()
    assert (one["count"], one["invoices"][0]["invoice_id"]) == (1, paid["invoice_id"])
    also_empty_status = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": ""}
    ).json()
    assert also_empty_status["count"] == 2


def test_list_filters_by_status_word(claw: httpx.Client, org: OrgKeys) -> None:
    made = {
        word: create(claw, org)["invoice_id"] for word in ("draft", "paid", "refunded", "cancelled")
    }
    made["overdue"] = create(claw, org, issued_date="2024-02-15")["invoice_id"]
    for invoice_id, word in (
        (made["paid"], "paid"),
        (made["refunded"], "paid"),
        (made["refunded"], "refunded"),
        (made["cancelled"], "cancelled"),
    ):
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"status": word}).raise_for_status()
    claw.patch(f"{BASE}/invoices/{made['overdue']}", json={"status": "sent"}).raise_for_status()
    claw.patch(
        f"{BASE}/invoices/{made['overdue']}", json={"due_date": "2024-03-15"}
    ).raise_for_status()
    for word, invoice_id in made.items():
        listed = claw.get(
            f"{BASE}/invoices", params={"business_id": org.org_id, "status": word}
        ).json()
        assert [(i["invoice_id"], i["status"]) for i in listed["invoices"]] == [
            (invoice_id, word)
        ], word


def test_list_as_the_documents_request_sent_viewed_overdue(
    claw: httpx.Client, org: OrgKeys, server: LiveServer, api: httpx.Client
) -> None:
    sent = create(claw, org)["invoice_id"]
    make_link(claw, sent)
    viewed = create(claw, org)["invoice_id"]
    with server.client() as customer:
        customer.get(f"/pay/{make_link(claw, viewed)['stripe_invoice_id']}").raise_for_status()
    overdue = create(claw, org, issued_date="2024-02-15")["invoice_id"]
    make_link(claw, overdue)
    paying = create(claw, org, issued_date="2024-02-15")[
        "invoice_id"
    ]  # overdue, after a declined attempt
    make_link(claw, paying)
    api.post(
        f"/v1/invoices/{paying}/simulate-payment", json={"outcome": "declined"}
    ).raise_for_status()
    create(claw, org)  # a draft
    response = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": "sent", "limit": 20}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["business_id"], body["filter"]) == (
        1, org.org_id, {"status": "sent", "limit": 20},
    )  # fmt: skip
    assert [(i["invoice_id"], i["status"]) for i in body["invoices"]] == [(sent, "sent")]
    for word, expected in (("viewed", [viewed]), ("overdue", [paying, overdue])):
        listed = claw.get(f"{BASE}/invoices", params={"business_id": org.org_id, "status": word})
        got = [(i["invoice_id"], i["status"]) for i in listed.json()["invoices"]]
        assert got == [(invoice_id, word) for invoice_id in expected], word


@pytest.mark.parametrize(
    ("params", "title", "field"),
    [
        ({}, "Missing required fields", "business_id"),
        ({"business_id": ""}, "Missing required fields", "business_id"),
        ({"limit": 0}, "Invalid data", "limit"),
        ({"limit": 101}, "Invalid data", "limit"),
        ({"limit": "ten"}, "Invalid data", "limit"),
        ({"status": "open"}, "Invalid data", "status"),
    ],
)
def test_list_errors(
    claw: httpx.Client, org: OrgKeys, params: dict[str, Any], title: str, field: str
) -> None:
    if params.get("business_id") is None and params:
        params = {"business_id": org.org_id, **params}
    assert_error(claw.get(f"{BASE}/invoices", params=params), 400, title, field)


# ------------------------------------------------------------------ get


def test_get_invoice_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(
        claw, org, body=DOCUMENTED_CREATE, invoice_number=None, issued_date=None, due_date=None
    )
    link = make_link(claw, made["invoice_id"])
    response = claw.get(f"{BASE}/invoices/{made['invoice_id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == [
        *INVOICE_KEYS[: INVOICE_KEYS.index("line_items")], "stripe_payment_link", "stripe_invoice_id",
        "line_items", "created_at", "updated_at",
    ]  # fmt: skip
    assert (body["status"], body["amount"], body["tax_amount"], body["total_amount"]) == (
        "sent",
        5500,
        500,
        6000,
    )
    assert body["stripe_payment_link"] == link["payment_link_url"]
    assert body["stripe_invoice_id"] == link["stripe_invoice_id"]
    assert [line["description"] for line in body["line_items"]] == [
        "Website Development",
        "Hosting Setup",
    ]
    assert body["line_items"] == made["line_items"]


def test_unknown_and_foreign_invoices_are_not_found(
    claw: httpx.Client, org: OrgKeys, server: LiveServer, settings: Settings
) -> None:
    made = create(claw, org)
    other = create_org(settings, name="Other")
    with server.client() as stranger:
        stranger.headers.update(bearer(other))
        # A NUL in the URL is refused at the edge for every API (400), before Clawprint's routes.
        assert claw.get(f"{BASE}/invoices/inv_%00").status_code == 400
        for client, invoice_id in (
            (claw, "inv_000000000000000000000000"),
            (claw, "nope"),
            (stranger, made["invoice_id"]),
        ):
            assert_error(client.get(f"{BASE}/invoices/{invoice_id}"), 404, "Not found")
            assert_error(
                client.patch(f"{BASE}/invoices/{invoice_id}", json={"notes": "x"}), 404, "Not found"
            )
            assert_error(client.delete(f"{BASE}/invoices/{invoice_id}"), 404, "Not found")
            assert_error(
                client.post(f"{BASE}/invoices/{invoice_id}/payment-link"), 404, "Not found"
            )
            assert_error(client.get(f"{BASE}/invoices/{invoice_id}/payment-link"), 404, "Not found")
    assert get(claw, made["invoice_id"])["status"] == "draft"  # untouched
    assert_error(claw.get(f"{PREFIX}/api/nothing-here"), 404, "Not found", None)


# ------------------------------------------------------------------ update


def test_update_invoice_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org, body=DOCUMENTED_CREATE, invoice_number=None)
    response = claw.patch(
        f"{BASE}/invoices/{made['invoice_id']}",
        json={
            "customer_email": "newemail@example.com",
            "customer_name": "Jane Smith",
            "due_date": "2024-04-15",
            "notes": "Updated notes",
            "payment_terms": "Net 45",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == INVOICE_KEYS
    assert (body["customer_email"], body["customer_name"]) == ("newemail@example.com", "Jane Smith")
    assert (body["due_date"], body["notes"], body["payment_terms"]) == (
        "2024-04-15T00:00:00Z",
        "Updated notes",
        "Net 45",
    )
    assert (body["status"], body["total_amount"], body["line_items"]) == (
        "draft",
        6000,
        made["line_items"],
    )
    assert get(claw, made["invoice_id"]) == body
    # One field at a time leaves the others; null removes an optional one.
    only_name = claw.patch(
        f"{BASE}/invoices/{made['invoice_id']}", json={"customer_name": "J. Smith", "notes": None}
    ).json()
    assert (only_name["customer_email"], only_name["customer_name"]) == (
        "newemail@example.com",
        "J. Smith",
    )
    assert "notes" not in only_name
    assert (
        claw.patch(f"{BASE}/invoices/{made['invoice_id']}", json={}).json()["customer_name"]
        == "J. Smith"
    )


@pytest.mark.parametrize(
    ("body", "title", "field"),
    [
        ({"customer_email": "nope"}, "Invalid email format", "customer_email"),
        ({"customer_email": None}, "Missing required fields", "customer_email"),
        ({"customer_email": ""}, "Missing required fields", "customer_email"),
        ({"due_date": "soon"}, "Invalid data", "due_date"),
        ({"due_date": None}, "Invalid data", "due_date"),
        ({"due_date": "2000-01-01"}, "Invalid data", "due_date"),
        ({"status": "archived"}, "Invalid data", "status"),
        ({"customer_name": "\u0000"}, "Invalid data", "customer_name"),
        ({"status": "viewed"}, "Invalid data", "status"),
        ({"status": "overdue"}, "Invalid data", "status"),
    ],
)
def test_update_errors(
    claw: httpx.Client, org: OrgKeys, body: dict[str, Any], title: str, field: str
) -> None:
    made = create(claw, org)
    assert_error(claw.patch(f"{BASE}/invoices/{made['invoice_id']}", json=body), 400, title, field)
    assert get(claw, made["invoice_id"]) == made  # nothing changed


def test_details_change_only_before_payment(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org)
    invoice_id = made["invoice_id"]
    sent = claw.patch(
        f"{BASE}/invoices/{invoice_id}", json={"status": "sent", "notes": "Sent with a note"}
    ).json()
    assert (sent["status"], sent["notes"]) == ("sent", "Sent with a note")
    assert (
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"payment_terms": "Net 15"}).status_code
        == 200
    )
    assert (
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"status": "paid"}).json()["status"]
        == "paid"
    )
    for change in (
        {"notes": "too late"},
        {"customer_email": "x@example.com"},
        {"due_date": "2030-01-01"},
    ):
        assert_error(
            claw.patch(f"{BASE}/invoices/{invoice_id}", json=change), 409, "Conflict", None
        )
    assert get(claw, invoice_id)["notes"] == "Sent with a note"


def test_status_can_be_set_as_the_core_allows(claw: httpx.Client, org: OrgKeys) -> None:
    def patch(invoice_id: str, status: str) -> httpx.Response:
        return claw.patch(f"{BASE}/invoices/{invoice_id}", json={"status": status})

    draft = create(claw, org)["invoice_id"]
    assert patch(draft, "draft").json()["status"] == "draft"  # what it already is: no change
    paid_at_once = patch(draft, "paid").json()  # paid before it was sent: finalized and paid
    assert paid_at_once["status"] == "paid"
    assert TIMESTAMP.match(paid_at_once["paid_at"])
    assert patch(draft, "paid").json() == get(claw, draft)
    assert_error(patch(draft, "cancelled"), 409, "Conflict", None)  # paid: refund instead
    assert_error(patch(draft, "draft"), 409, "Conflict", None)
    assert_error(patch(draft, "sent"), 409, "Conflict", None)
    refunded = patch(draft, "refunded").json()
    assert refunded["status"] == "refunded"
    assert refunded["paid_at"] == paid_at_once["paid_at"]
    assert_error(patch(draft, "paid"), 409, "Conflict", None)

    sent = create(claw, org)["invoice_id"]
    assert patch(sent, "sent").json()["status"] == "sent"
    assert patch(sent, "sent").json()["status"] == "sent"
    assert_error(patch(sent, "draft"), 409, "Conflict", None)
    assert_error(patch(sent, "refunded"), 409, "Conflict", None)
    assert patch(sent, "cancelled").json()["status"] == "cancelled"
    assert_error(patch(sent, "paid"), 409, "Conflict", None)


# ------------------------------------------------------------------ delete


def test_delete_cancels_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org)
    response = claw.delete(f"{BASE}/invoices/{made['invoice_id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Invoice cancelled successfully",
        "invoice_id": made["invoice_id"],
    }
    assert get(claw, made["invoice_id"])["status"] == "cancelled"  # soft: still there
    again = claw.delete(f"{BASE}/invoices/{made['invoice_id']}")
    assert (again.status_code, again.json()["message"]) == (200, "Invoice cancelled successfully")
    assert_error(
        claw.post(f"{BASE}/invoices/{made['invoice_id']}/payment-link"), 409, "Conflict", None
    )
    paid = create(claw, org)
    claw.patch(f"{BASE}/invoices/{paid['invoice_id']}", json={"status": "paid"}).raise_for_status()
    assert_error(claw.delete(f"{BASE}/invoices/{paid['invoice_id']}"), 409, "Conflict", None)
    assert get(claw, paid["invoice_id"])["status"] == "paid"


# ------------------------------------------------------------------ payment links


def test_payment_link_as_documented(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org)
    invoice_id = made["invoice_id"]
    assert_error(claw.get(f"{BASE}/invoices/{invoice_id}/payment-link"), 404, "Not found")
    response = claw.post(f"{BASE}/invoices/{invoice_id}/payment-link")
    assert response.status_code == 201, response.text
    link = response.json()
    assert list(link) == ["payment_link_url", "stripe_invoice_id", "expires_at"]
    # The sandbox provider: invoicehub's own pay page, and the link's token as its id.
    assert link["payment_link_url"] == f"http://127.0.0.1:8000/pay/{link['stripe_invoice_id']}"
    assert TIMESTAMP.match(link["expires_at"])
    expires = dt.datetime.fromisoformat(link["expires_at"])
    assert abs(expires - (dt.datetime.now(dt.UTC) + dt.timedelta(days=90))) < dt.timedelta(hours=1)
    assert get(claw, invoice_id)["status"] == "sent"  # making the link sends it
    conflict = claw.post(f"{BASE}/invoices/{invoice_id}/payment-link")
    assert_error(conflict, 409, "Conflict", None)
    fetched = claw.get(f"{BASE}/invoices/{invoice_id}/payment-link")
    assert (fetched.status_code, fetched.json()) == (200, link)


# ------------------------------------------------------------------ the status workflow


def test_status_moves_draft_sent_viewed_paid_refunded(
    claw: httpx.Client, org: OrgKeys, server: LiveServer, api: httpx.Client
) -> None:
    made = create(claw, org)  # Step 1: Status: draft
    invoice_id = made["invoice_id"]
    assert made["status"] == "draft"
    link = make_link(claw, invoice_id)  # Step 2: Status: sent
    assert get(claw, invoice_id)["status"] == "sent"
    with server.client() as customer:  # the customer opens the link
        page = customer.get(f"/pay/{link['stripe_invoice_id']}")
    assert page.status_code == 200
    viewed = get(claw, invoice_id)
    assert viewed["status"] == "viewed"
    assert TIMESTAMP.match(viewed["viewed_at"])
    # Step 3: the customer pays (the sandbox's stand-in for Stripe's checkout).
    api.post(
        f"/v1/invoices/{invoice_id}/simulate-payment", json={"outcome": "succeeded"}
    ).raise_for_status()
    paid = get(claw, invoice_id)  # Step 4: Status: paid, paid_at
    assert paid["status"] == "paid"
    assert TIMESTAMP.match(paid["paid_at"])
    assert list(paid)[-6:] == [
        "stripe_invoice_id",
        "paid_at",
        "viewed_at",
        "line_items",
        "created_at",
        "updated_at",
    ]
    listed = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": "paid"}
    ).json()
    assert [i["invoice_id"] for i in listed["invoices"]] == [invoice_id]
    api.post(f"/v1/invoices/{invoice_id}/refunds", json={"amount": "100"}).raise_for_status()
    assert get(claw, invoice_id)["status"] == "paid"  # partly refunded: still paid
    api.post(f"/v1/invoices/{invoice_id}/refunds", json={}).raise_for_status()
    assert get(claw, invoice_id)["status"] == "refunded"


def test_overdue_past_the_due_date(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org, body=DOCUMENTED_CREATE, invoice_number=None)  # due 2024-03-15
    invoice_id = made["invoice_id"]
    assert made["status"] == "draft"  # a draft is not overdue: it was never sent
    make_link(claw, invoice_id)
    assert get(claw, invoice_id)["status"] == "overdue"
    listed = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": "overdue"}
    ).json()
    assert [i["invoice_id"] for i in listed["invoices"]] == [invoice_id]
    later = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    assert (
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"due_date": later}).json()["status"]
        == "sent"
    )
    assert (
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"due_date": "2024-03-15"}).json()[
            "status"
        ]
        == "overdue"
    )
    assert (
        claw.patch(f"{BASE}/invoices/{invoice_id}", json={"status": "paid"}).json()["status"]
        == "paid"
    )


def test_cancelled_and_expired_read_cancelled(
    claw: httpx.Client,
    org: OrgKeys,
    api: httpx.Client,
    settings: Settings,
    moved_clock: list[float],
) -> None:
    sent = create(claw, org)["invoice_id"]
    make_link(claw, sent)
    assert claw.delete(f"{BASE}/invoices/{sent}").status_code == 200
    assert get(claw, sent)["status"] == "cancelled"
    expiring = create(claw, org)["invoice_id"]
    make_link(claw, expiring)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    api.patch(f"/v1/invoices/{expiring}", json={"expires_at": soon}).raise_for_status()
    moved_clock[0] = 120
    from invoicehub.invoices.service import expire_due_invoices

    in_session(settings, expire_due_invoices)
    assert get(claw, expiring)["status"] == "cancelled"
    listed = claw.get(
        f"{BASE}/invoices", params={"business_id": org.org_id, "status": "cancelled"}
    ).json()
    assert {i["invoice_id"] for i in listed["invoices"]} == {sent, expiring}


# ------------------------------------------------------------------ Stripe


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


STRIPE_WEBHOOK_SECRET = "whsec_clawprint_test"


@pytest.fixture(scope="module")
def stripe_settings(database_url: str, fake_stripe: FakeStripe) -> Settings:
    return make_settings(
        database_url,
        stripe_secret_key="sk_test_fake",
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
    )


@pytest.fixture(scope="module")
def stripe_server(stripe_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(stripe_settings) as live:
        yield live


def test_stripe_payment_links_and_webhooks(
    stripe_server: LiveServer, stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    fake_stripe.reset()
    keys = create_org(stripe_settings, name="Stripe business")
    use_stripe(stripe_settings, keys)
    with stripe_server.client() as client, stripe_server.client() as stripe:
        client.headers.update(bearer(keys))
        made = create(
            client,
            keys,
            body=DOCUMENTED_CREATE,
            invoice_number=None,
            issued_date=None,
            due_date=None,
        )
        invoice_id = made["invoice_id"]
        link = make_link(client, invoice_id)
        session = fake_stripe.sessions[link["stripe_invoice_id"]]
        assert link["stripe_invoice_id"].startswith("cs_test_")
        assert link["payment_link_url"] == session["url"]
        assert session["amount_total"] == 600_000  # 6000.00 USD
        shown = get(client, invoice_id)
        assert (shown["status"], shown["stripe_payment_link"], shown["stripe_invoice_id"]) == (
            "sent", session["url"], session["id"],
        )  # fmt: skip
        assert client.get(f"{BASE}/invoices/{invoice_id}/payment-link").json() == link

        def deliver(event: dict[str, Any]) -> None:
            body, headers = fs.signed(event, STRIPE_WEBHOOK_SECRET)
            response = stripe.post("/webhooks/stripe", content=body, headers=headers)
            assert response.status_code == 200, response.text

        metadata = fs.invoice_metadata(invoice_id, keys.internal_id)
        intent = session["payment_intent"]
        deliver(
            fs.payment_intent_succeeded(
                metadata=metadata, amount=600_000, currency="usd", payment_intent=intent
            )
        )
        paid = get(client, invoice_id)
        assert paid["status"] == "paid"
        assert TIMESTAMP.match(paid["paid_at"])
        deliver(
            fs.charge_refunded(
                metadata=metadata,
                amount=600_000,
                amount_refunded=600_000,
                currency="usd",
                payment_intent=intent,
            )
        )
        assert get(client, invoice_id)["status"] == "refunded"

        failing = create(client, keys)["invoice_id"]
        make_link(client, failing)
        deliver(
            fs.invoice_payment_failed(
                metadata=fs.invoice_metadata(failing, keys.internal_id),
                amount_due=550_000,
                currency="usd",
            )
        )
        assert get(client, failing)["status"] == "overdue"

        # A refund asked through Clawprint goes back through Stripe.
        refunding = create(client, keys)["invoice_id"]
        checkout = fake_stripe.sessions[make_link(client, refunding)["stripe_invoice_id"]]
        deliver(fs.checkout_session_completed(
            metadata=fs.invoice_metadata(refunding, keys.internal_id), amount_total=550_000,
            currency="usd", payment_intent=checkout["payment_intent"], session_id=checkout["id"],
        ))  # fmt: skip
        assert get(client, refunding)["status"] == "paid"
        refunded = client.patch(f"{BASE}/invoices/{refunding}", json={"status": "refunded"})
        assert refunded.status_code == 200, refunded.text
        assert refunded.json()["status"] == "refunded"
        assert (
            fake_stripe.requests_to("/v1/refunds")[-1].params["payment_intent"]
            == checkout["payment_intent"]
        )

        fake_stripe.checkout_error = StripeErrorReply(
            status=400,
            type="invalid_request_error",
            code="parameter_invalid",
            message="Invalid currency",
        )
        broken = create(client, keys)["invoice_id"]
        assert_error(
            client.post(f"{BASE}/invoices/{broken}/payment-link"),
            500,
            "Stripe integration error",
            None,
        )
        assert get(client, broken)["status"] == "draft"  # nothing was kept
    fake_stripe.reset()


def test_stripe_not_configured_is_a_stripe_integration_error(
    claw: httpx.Client, org: OrgKeys, settings: Settings
) -> None:
    use_stripe(settings, org)  # this server has no INVOICEHUB_STRIPE_SECRET_KEY
    made = create(claw, org)
    response = claw.post(f"{BASE}/invoices/{made['invoice_id']}/payment-link")
    assert_error(response, 500, "Stripe integration error", None)


# ------------------------------------------------------------------ rate limits


def test_rate_limit_headers_and_429(database_url: str) -> None:
    limited = make_settings(database_url, rate_limit_per_minute=2)
    keys = create_org(limited)
    with LiveServer(limited) as live, live.client() as client:
        client.headers.update(bearer(keys))
        answers = [client.get(f"{BASE}/businesses") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    first = answers[0].headers
    assert (first["x-ratelimit-limit"], first["x-ratelimit-remaining"]) == ("2", "1")
    assert first["x-ratelimit-reset"].isdigit()
    assert answers[1].headers["x-ratelimit-remaining"] == "0"
    assert_error(answers[2], 429, "Too many requests", None)
    assert answers[2].headers["retry-after"].isdigit()
    assert answers[2].headers["x-ratelimit-limit"] == "2"


def test_every_answer_carries_the_rate_limit_headers(claw: httpx.Client, org: OrgKeys) -> None:
    made = create(claw, org)
    for response in (
        claw.get(f"{BASE}/invoices/{made['invoice_id']}"),
        claw.get(f"{BASE}/invoices", params={"business_id": org.org_id}),
        claw.post(f"{BASE}/invoices", json={"business_id": org.org_id}),
        claw.get(f"{BASE}/invoices/inv_missing"),
    ):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            response.headers
        )


# ------------------------------------------------------------------ the schema


def test_documented_paths_are_served(server: LiveServer) -> None:
    with server.client() as client:
        schema = client.get(f"{PREFIX}/openapi.json").json()
    assert sorted(
        (path, method) for path, methods in schema["paths"].items() for method in methods
    ) == [
        ("/api/businesses", "get"),
        ("/api/invoices", "get"),
        ("/api/invoices", "post"),
        ("/api/invoices/{invoice_id}", "delete"),
        ("/api/invoices/{invoice_id}", "get"),
        ("/api/invoices/{invoice_id}", "patch"),
        ("/api/invoices/{invoice_id}/payment-link", "get"),
        ("/api/invoices/{invoice_id}/payment-link", "post"),
    ]


def test_generated_requests_never_get_a_server_error(
    server: LiveServer, settings: Settings
) -> None:
    keys = create_org(settings, name="Fuzzed business")
    schema = schemathesis.openapi.from_url(f"{server.base_url}{PREFIX}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=f"{server.base_url}{PREFIX}", headers=bearer(keys))
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
            )
            path = httpx.URL(str(response.request.url)).path
            if not path.startswith(PREFIX) or "\n" in path:
                # Left the API ("../.."), or a newline, which Starlette's Mount never matches:
                # the native app answers those, in its own shape.
                return
            if response.status_code >= 400:
                assert list(response.json()) == ERROR_KEYS, response.text

        check()
