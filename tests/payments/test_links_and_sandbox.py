"""Payment links, sandbox simulation, late payments and overdue marking, through the API."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import text

from invoicehub.api.runtime import Runtime
from invoicehub.invoices.service import (
    decline_stale_attempts,
    mark_overdue_invoices,
    start_payment_attempt,
)
from tests.conftest import invoice_body


def create(api: httpx.Client, **overrides: object) -> dict:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def test_link_finalizes_a_draft_and_is_one_per_invoice(api: httpx.Client) -> None:
    draft = create(api)
    assert api.get(f"/v1/invoices/{draft['id']}/payment-link").status_code == 404
    made = api.post(f"/v1/invoices/{draft['id']}/payment-link")
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["url"] == f"http://127.0.0.1:8000/pay/{link['token']}"
    assert len(link["token"]) >= 32
    assert (link["qr_png_url"], link["provider"]) == (f"{link['url']}/qr.png", "sandbox")
    again = api.post(f"/v1/invoices/{draft['id']}/payment-link")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "payment_link_exists")
    invoice = api.get(f"/v1/invoices/{draft['id']}").json()
    assert (invoice["status"], invoice["payment_url"], invoice["qr_token"]) == (
        "open",
        link["url"],
        link["token"],
    )
    assert api.get(f"/v1/invoices/{draft['id']}/payment-link").json() == link


def test_an_expired_link_can_be_replaced(api: httpx.Client, moved_clock) -> None:
    invoice = create(api, status="open")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    first = api.post(f"/v1/invoices/{invoice['id']}/payment-link", json={"expires_at": soon}).json()
    moved_clock[0] = 600
    second = api.post(f"/v1/invoices/{invoice['id']}/payment-link")
    assert second.status_code == 201
    assert second.json()["token"] != first["token"]
    past = api.post(
        f"/v1/invoices/{create(api)['id']}/payment-link",
        json={"expires_at": "2020-01-01T00:00:00Z"},
    )
    assert (past.status_code, past.json()["error"]["param"]) == (422, "expires_at")


def test_no_link_for_a_closed_invoice(api: httpx.Client) -> None:
    invoice = create(api)
    api.post(f"/v1/invoices/{invoice['id']}/cancel").raise_for_status()
    refused = api.post(f"/v1/invoices/{invoice['id']}/payment-link")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "invoice_not_payable")


def test_simulated_outcomes(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    url = f"/v1/invoices/{invoice['id']}/simulate-payment"
    declined = api.post(url, json={"outcome": "declined"}).json()
    assert (declined["status"], declined["amount_paid"]) == ("open", "0.00")
    assert "declined" in declined["last_payment_error"]
    partial = api.post(url, json={"outcome": "partial", "amount": "1000"}).json()
    assert (partial["status"], partial["amount_paid"], partial["last_payment_error"]) == (
        "open",
        "1000.00",
        None,
    )
    paid = api.post(url, json={"outcome": "succeeded"}).json()
    assert (paid["status"], paid["amount_paid"]) == ("paid", "6000.00")
    statuses = [p["status"] for p in api.get(f"/v1/invoices/{invoice['id']}/payments").json()]
    assert statuses == ["failed", "succeeded", "succeeded"]
    types = [
        e["type"]
        for e in api.get("/v1/events", params={"object_id": invoice["id"], "limit": 20}).json()[
            "data"
        ]
    ]
    assert types.count("invoice.payment_failed") == 1
    assert types.count("invoice.processing") == 3
    again = api.post(url, json={"outcome": "succeeded"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "invoice_not_payable")


def test_simulation_only_on_the_sandbox(api: httpx.Client, settings, org) -> None:
    _set_org(settings, org.internal_id, "payment_provider = 'stripe'")
    invoice = create(api, status="open")
    refused = api.post(
        f"/v1/invoices/{invoice['id']}/simulate-payment", json={"outcome": "succeeded"}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_sandbox")


def test_money_after_cancel_is_kept_and_accepted_by_default(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    api.post(f"/v1/invoices/{invoice['id']}/cancel").raise_for_status()
    late = api.post(f"/v1/invoices/{invoice['id']}/simulate-payment", json={"outcome": "succeeded"})
    assert late.status_code == 200, late.text
    body = late.json()
    assert (body["status"], body["paid_late"], body["amount_paid"]) == ("paid", True, "6000.00")
    types = [
        e["type"] for e in api.get("/v1/events", params={"object_id": invoice["id"]}).json()["data"]
    ]
    assert types[:2] == ["invoice.paid", "invoice.paid_late"]


def test_money_after_expiry_is_refunded_when_the_policy_says_so(
    api: httpx.Client, settings, org, moved_clock
) -> None:
    _set_org(settings, org.internal_id, "late_payment_policy = 'refund'")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    invoice = create(api, status="open", expires_at=soon)
    moved_clock[0] = 60
    _in_session(
        settings,
        lambda s: __import__("invoicehub.invoices.service", fromlist=["x"]).expire_due_invoices(s),
    )
    assert api.get(f"/v1/invoices/{invoice['id']}").json()["status"] == "expired"
    late = api.post(
        f"/v1/invoices/{invoice['id']}/simulate-payment", json={"outcome": "succeeded"}
    ).json()
    assert (late["status"], late["paid_late"], late["amount_paid"], late["amount_refunded"]) == (
        "expired",
        True,
        "6000.00",
        "6000.00",
    )
    kinds = [
        (p["kind"], p["amount"]) for p in api.get(f"/v1/invoices/{invoice['id']}/payments").json()
    ]
    assert kinds == [("payment", "6000.00"), ("refund", "6000.00")]


def test_overdue_is_marked_once_with_an_event(api: httpx.Client, settings) -> None:
    late = create(api, status="open", issue_date="2020-01-01", due_date="2020-01-10")
    create(api, status="open")
    _in_session(settings, mark_overdue_invoices)
    _in_session(settings, mark_overdue_invoices)  # a second pass changes nothing
    events = api.get("/v1/events", params={"type": "invoice.overdue"}).json()["data"]
    assert [e["object_id"] for e in events] == [late["id"]]
    assert api.get(f"/v1/invoices/{late['id']}").json()["overdue"] is True


def test_an_abandoned_attempt_is_declined_so_the_invoice_is_payable_again(
    api: httpx.Client, settings, org, moved_clock
) -> None:
    invoice = create(api, status="open")
    _in_session(
        settings,
        lambda s: start_payment_attempt(s, org.internal_id, invoice["id"], provider="sandbox"),
    )
    assert api.get(f"/v1/invoices/{invoice['id']}").json()["status"] == "processing"
    moved_clock[0] = 31 * 60
    _in_session(settings, lambda s: decline_stale_attempts(s, older_than=dt.timedelta(minutes=30)))
    after = api.get(f"/v1/invoices/{invoice['id']}").json()
    assert after["status"] == "open"
    assert "not completed" in after["last_payment_error"]


def _in_session(settings, work) -> object:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            result = work(session)
            session.commit()
            return result
    finally:
        runtime.database.dispose()


def _set_org(settings, organization_id: int, assignment: str) -> None:
    _in_session(
        settings,
        lambda s: s.execute(
            text(f"UPDATE organizations SET {assignment} WHERE id = :id"), {"id": organization_id}
        ),
    )
