from __future__ import annotations

import datetime as dt

import httpx

from tests.conftest import invoice_body


def test_read_and_change_settings(api: httpx.Client) -> None:
    org = api.get("/v1/organization").json()
    assert org["object"] == "organization"
    assert (
        org["default_currency"],
        org["invoice_number_pattern"],
        org["allow_partial_payments"],
    ) == (
        "USD",
        "INV-{YYYY}-{seq:04}",
        True,
    )
    changed = api.patch(
        "/v1/organization",
        json={
            "default_currency": "kzt",
            "invoice_number_pattern": "KZ/{YY}{MM}/{seq:03}",
            "default_due_days": 7,
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["default_currency"] == "KZT"

    invoice = api.post("/v1/invoices", json=invoice_body(currency=None)).json()
    today = dt.datetime.now(dt.UTC).date()
    assert invoice["currency"] == "KZT"
    assert invoice["number"] == f"KZ/{today:%y%m}/001"
    assert dt.date.fromisoformat(invoice["due_date"]) - dt.date.fromisoformat(
        invoice["issue_date"]
    ) == dt.timedelta(days=7)


def test_bad_settings_name_the_field(api: httpx.Client) -> None:
    for body, param in (
        ({"default_currency": "XXQ"}, "default_currency"),
        ({"invoice_number_pattern": "INV-{YYYY}"}, "invoice_number_pattern"),
        ({"invoice_number_pattern": "INV-{seq}-{DD}"}, "invoice_number_pattern"),
        ({"default_due_days": -1}, "default_due_days"),
        ({"allow_partial_payments": None}, "allow_partial_payments"),
        ({"verified": True}, "verified"),
    ):
        response = api.patch("/v1/organization", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["param"] == param


def test_partial_payments_can_be_turned_off(api: httpx.Client) -> None:
    api.patch("/v1/organization", json={"allow_partial_payments": False}).raise_for_status()
    invoice = api.post("/v1/invoices", json=invoice_body(status="open")).json()
    partial = api.post(f"/v1/invoices/{invoice['id']}/payments", json={"amount": "10"})
    assert partial.status_code == 422
    assert partial.json()["error"]["code"] == "partial_payment_not_allowed"
    full = api.post(f"/v1/invoices/{invoice['id']}/payments", json={"amount": "6000"})
    assert full.json()["status"] == "paid"


def test_provider_and_late_payment_policy_are_chosen_per_organization(api: httpx.Client) -> None:
    no_stripe = api.patch("/v1/organization", json={"payment_provider": "stripe"})
    assert (no_stripe.status_code, no_stripe.json()["error"]["param"]) == (422, "payment_provider")
    assert api.patch("/v1/organization", json={"payment_provider": "paypal"}).status_code == 422
    changed = api.patch("/v1/organization", json={"late_payment_policy": "refund"}).json()
    assert (changed["late_payment_policy"], changed["payment_provider"]) == ("refund", "sandbox")
