"""invoice_json, the native JSON of an invoice, built without the pydantic model: it must be
exactly what the documented ``Invoice`` schema would produce, field by field and in order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicehub.invoices.schemas import Invoice, InvoiceList, LineItem, invoice_json, json_time
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.money import currency, format_amount
from tests.conftest import invoice_body

UTC_TIMES = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
TEXT = st.none() | st.text(max_size=20)
MINOR = st.integers(min_value=0, max_value=10**12)


@st.composite
def lines(draw: st.DrawFn) -> SimpleNamespace:
    return SimpleNamespace(
        public_id=draw(st.from_regex(r"li_[0-9a-f]{8}", fullmatch=True)),
        description=draw(st.text(min_size=1, max_size=20)),
        sku=draw(TEXT),
        type=draw(st.sampled_from(["service", "product", "fee", "other"])),
        quantity=draw(st.decimals(min_value=Decimal("0.001"), max_value=10**6, places=3)),
        unit_price_minor=draw(MINOR),
        tax_rate=draw(st.decimals(min_value=0, max_value=100, places=2)),
        amount_minor=draw(MINOR),
        tax_minor=draw(MINOR),
    )


@st.composite
def invoices(draw: st.DrawFn) -> SimpleNamespace:
    total = draw(MINOR)
    maybe_time = st.none() | UTC_TIMES
    return SimpleNamespace(
        public_id=draw(st.from_regex(r"inv_[0-9a-f]{8}", fullmatch=True)),
        number=draw(st.text(min_size=1, max_size=20)),
        status=draw(st.sampled_from([s.value for s in InvoiceStatus])),
        currency=draw(st.sampled_from(["USD", "KZT", "JPY", "KWD", "EUR"])),
        customer_name=draw(TEXT),
        customer_email=draw(TEXT),
        customer_phone=draw(TEXT),
        customer_telegram_user_id=draw(st.none() | st.integers(1, 10**12)),
        customer_locale=draw(st.none() | st.sampled_from(["ru", "en", "kk"])),
        subtotal_minor=draw(MINOR),
        discount_minor=draw(MINOR),
        shipping_minor=draw(MINOR),
        tax_minor=draw(MINOR),
        total_minor=total,
        amount_paid_minor=draw(st.integers(0, total)),
        amount_refunded_minor=draw(MINOR),
        issue_date=draw(st.dates()),
        due_date=draw(st.dates()),
        overdue_at=draw(maybe_time),
        expires_at=draw(maybe_time),
        title=draw(TEXT),
        description=draw(TEXT),
        notes=draw(TEXT),
        payment_terms=draw(TEXT),
        external_order_id=draw(TEXT),
        metadata_=draw(st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5))),
        webhook_endpoint_id=draw(TEXT),
        payment_url=draw(TEXT),
        payment_link_token=draw(TEXT),
        payment_link_expires_at=draw(maybe_time),
        paid_late_at=draw(maybe_time),
        last_payment_error=draw(TEXT),
        created_at=draw(UTC_TIMES),
        updated_at=draw(UTC_TIMES),
        finalized_at=draw(maybe_time),
        viewed_at=draw(maybe_time),
        paid_at=draw(maybe_time),
        cancelled_at=draw(maybe_time),
        expired_at=draw(maybe_time),
        refunded_at=draw(maybe_time),
    )


@settings(max_examples=200)
@given(invoice=invoices(), items=st.none() | st.lists(lines(), max_size=4), today=st.dates())
def test_it_is_what_the_invoice_schema_dumps(
    invoice: SimpleNamespace, items: list[SimpleNamespace] | None, today: dt.date
) -> None:
    rendered = invoice_json(invoice, items, today=today)
    assert list(rendered) == list(Invoice.model_fields)
    assert Invoice.model_validate(rendered).model_dump(mode="json") == rendered
    if items is not None:
        for line in rendered["line_items"]:
            assert list(line) == list(LineItem.model_fields)


@settings(max_examples=100)
@given(invoice=invoices(), items=st.lists(lines(), min_size=1, max_size=3), today=st.dates())
def test_each_field_comes_from_its_column(
    invoice: SimpleNamespace, items: list[SimpleNamespace], today: dt.date
) -> None:
    rendered = invoice_json(invoice, items, today=today)
    cur = currency(invoice.currency)
    for key, column in [
        ("subtotal", "subtotal_minor"),
        ("discount", "discount_minor"),
        ("shipping", "shipping_minor"),
        ("tax", "tax_minor"),
        ("total", "total_minor"),
        ("amount_paid", "amount_paid_minor"),
        ("amount_refunded", "amount_refunded_minor"),
    ]:
        assert rendered[key] == format_amount(getattr(invoice, column), cur), key
    assert rendered["amount_due"] == format_amount(
        invoice.total_minor - invoice.amount_paid_minor, cur
    )
    for key, column in [
        ("id", "public_id"),
        ("number", "number"),
        ("status", "status"),
        ("currency", "currency"),
        ("title", "title"),
        ("description", "description"),
        ("notes", "notes"),
        ("payment_terms", "payment_terms"),
        ("external_order_id", "external_order_id"),
        ("webhook_id", "webhook_endpoint_id"),
        ("payment_url", "payment_url"),
        ("qr_token", "payment_link_token"),
        ("last_payment_error", "last_payment_error"),
    ]:
        assert rendered[key] == getattr(invoice, column), key
    for key in [
        "expires_at",
        "payment_link_expires_at",
        "created_at",
        "updated_at",
        "finalized_at",
        "viewed_at",
        "paid_at",
        "cancelled_at",
        "expired_at",
        "refunded_at",
    ]:
        value = getattr(invoice, key)
        parsed = None if rendered[key] is None else dt.datetime.fromisoformat(rendered[key])
        assert parsed == value, key
    assert rendered["issue_date"] == invoice.issue_date.isoformat()
    assert rendered["due_date"] == invoice.due_date.isoformat()
    assert rendered["paid_late"] is (invoice.paid_late_at is not None)
    assert rendered["metadata"] == (invoice.metadata_ or {})
    assert rendered["customer"] == {
        "name": invoice.customer_name,
        "email": invoice.customer_email,
        "phone": invoice.customer_phone,
        "telegram_user_id": invoice.customer_telegram_user_id,
        "locale": invoice.customer_locale,
    }
    for line, source in zip(rendered["line_items"], items, strict=True):
        assert line["id"] == source.public_id
        assert line["unit_price"] == format_amount(source.unit_price_minor, cur)
        assert line["amount"] == format_amount(source.amount_minor, cur)
        assert line["tax"] == format_amount(source.tax_minor, cur)
        assert Decimal(line["quantity"]) == source.quantity
        assert Decimal(line["tax_rate"]) == source.tax_rate


def test_a_timestamp_with_another_offset_is_written_in_utc() -> None:
    almaty = dt.timezone(dt.timedelta(hours=5))
    assert json_time(dt.datetime(2026, 5, 1, 17, 30, tzinfo=almaty)) == "2026-05-01T12:30:00Z"
    assert (
        json_time(dt.datetime(2026, 5, 1, 12, 30, 0, 1500, tzinfo=dt.UTC))
        == "2026-05-01T12:30:00.001500Z"
    )
    assert json_time(None) is None


def test_create_and_get_answer_the_same_json(api: httpx.Client) -> None:
    """The create answer is rendered from the values just written, the get from the row read
    back: a deadline sent with an offset reads the same in both."""
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(microsecond=0)
    local = soon.astimezone(dt.timezone(dt.timedelta(hours=5))).isoformat()
    created = api.post("/v1/invoices", json=invoice_body(status="open", expires_at=local))
    assert created.status_code == 201, created.text
    fetched = api.get(f"/v1/invoices/{created.json()['id']}")
    assert fetched.status_code == 200
    assert created.json()["expires_at"] == soon.isoformat().replace("+00:00", "Z")
    assert fetched.json() == created.json()


def test_a_list_page_is_the_list_schema(api: httpx.Client) -> None:
    for _ in range(3):
        assert api.post("/v1/invoices", json=invoice_body()).status_code == 201
    page: dict[str, Any] = api.get("/v1/invoices", params={"limit": 2}).json()
    assert InvoiceList.model_validate(page).model_dump(mode="json") == page
    assert list(page) == list(InvoiceList.model_fields)
    assert page["has_more"] is True
    assert page["next_starting_after"] == page["data"][-1]["id"]
    numbered = api.get("/v1/invoices", params={"page": 1, "per_page": 2}).json()
    assert InvoiceList.model_validate(numbered).model_dump(mode="json") == numbered
    assert numbered["total"] >= 3
