"""Invoice records: the get and the list pages read rows labelled with the entity's attribute
names instead of loading entities. Whatever reads an invoice's attributes must read the
same values from a record as from the entity: every column, with its type's conversion
(aware UTC times, decimals, the JSON metadata, the ``metadata_`` attribute)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from invoicehub.api.runtime import Runtime
from invoicehub.invoices import repository, service
from invoicehub.models import Invoice, InvoiceLineItem
from tests.conftest import OrgKeys, invoice_body


def create(api: httpx.Client, **overrides: object) -> str:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def invoices(api: httpx.Client) -> list[str]:
    """Invoices that between them set every kind of column: draft and open, paid in part,
    refunded, cancelled; metadata, a phone, an expiry, an external id, decimal quantities."""
    draft = create(api, status="draft", metadata={"order": "A-1", "n": 2})
    opened = create(
        api,
        status="open",
        customer={"name": "Aigerim", "email": "a@example.kz", "phone": "87011234567"},
        external_order_id="ext-9",
        expires_at="2030-01-02T03:04:05Z",
        line_items=[
            {"description": "Tea", "quantity": "1.5", "unit_price": "2.35", "tax_rate": "12.5"}
        ],
    )
    paid = create(api, status="open")
    assert api.post(f"/v1/invoices/{paid}/payments", json={"amount": "1000"}).status_code == 200
    refunded = create(api, status="open")
    assert api.post(f"/v1/invoices/{refunded}/payments", json={}).status_code == 200
    assert api.post(f"/v1/invoices/{refunded}/refunds", json={"amount": "10"}).status_code == 200
    cancelled = create(api, status="open")
    assert api.post(f"/v1/invoices/{cancelled}/cancel").status_code == 200
    return [draft, opened, paid, refunded, cancelled]


def attributes(thing: Any, entity: type[Any]) -> dict[str, Any]:
    return {attr.key: getattr(thing, attr.key) for attr in inspect(entity).column_attrs}


def test_a_record_reads_what_the_entity_reads(
    runtime: Runtime, org: OrgKeys, invoices: list[str]
) -> None:
    with runtime.database.session(write=False) as session:
        for public_id in invoices:
            entity = repository.get(session, org.internal_id, public_id)
            record = repository.get_record(session, org.internal_id, public_id)
            assert entity is not None
            assert record is not None
            assert attributes(record, Invoice) == attributes(entity, Invoice)
            assert record.metadata_ == entity.metadata_
            assert record.created_at.utcoffset() is not None  # aware, like the entity's
            entity_lines = repository.lines_of(session, [entity.id])[entity.id]
            record_lines = repository.line_records_of(session, [entity.id])[entity.id]
            assert [attributes(r, InvoiceLineItem) for r in record_lines] == [
                attributes(e, InvoiceLineItem) for e in entity_lines
            ]
        assert repository.get_record(session, org.internal_id + 10**6, invoices[0]) is None


def test_get_and_list_answer_what_the_entity_renders(
    runtime: Runtime, org: OrgKeys, invoices: list[str], api: httpx.Client
) -> None:
    with runtime.database.session(write=False) as session:
        rendered = {
            public_id: service.present(service.get_invoice(session, org.internal_id, public_id))
            for public_id in invoices
        }
    for public_id in invoices:
        assert api.get(f"/v1/invoices/{public_id}").json() == rendered[public_id]
    page = api.get("/v1/invoices", params={"limit": 10, "include": "line_items"}).json()
    assert page["data"] == [rendered[i] for i in reversed(invoices)]
    # Filtered pages and numbered pages read records too.
    for params in ({"status": "open", "limit": 10}, {"page": 1, "per_page": 10}):
        shown = api.get("/v1/invoices", params=params).json()["data"]
        assert shown, params
        for invoice in shown:
            assert invoice == rendered[invoice["id"]] | {"line_items": None}
