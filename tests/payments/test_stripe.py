"""Stripe end to end: a real invoicehub server talks to a fake Stripe on 127.0.0.1 through the
official ``stripe`` library, and receives Stripe's signed webhooks at POST /webhooks/stripe."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body, make_settings
from tests.payments import fake_stripe as fs
from tests.payments.fake_stripe import FakeStripe, StripeErrorReply

SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_6f1c0e2b9a8d4c7e"
TOTAL_MINOR = 600_000  # invoice_body(): 6000.00 USD


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="module")
def stripe_settings(database_url: str, fake_stripe: FakeStripe) -> Settings:
    return make_settings(
        database_url,
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
    )


@pytest.fixture(scope="module")
def stripe_server(stripe_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(stripe_settings) as live:
        yield live


@pytest.fixture
def fake(fake_stripe: FakeStripe) -> Iterator[FakeStripe]:
    fake_stripe.reset()
    yield fake_stripe
    fake_stripe.reset()


@pytest.fixture
def stripe_org(stripe_settings: Settings) -> OrgKeys:
    keys = create_org(stripe_settings, name="Stripe Org")
    _set_org(stripe_settings, keys.internal_id, "payment_provider = 'stripe'")
    return keys


@pytest.fixture
def api(stripe_server: LiveServer, stripe_org: OrgKeys, fake: FakeStripe) -> Iterator[httpx.Client]:
    with stripe_server.client(stripe_org.secret_key) as client:
        yield client


@pytest.fixture
def stripe(stripe_server: LiveServer) -> Iterator[httpx.Client]:
    """Stripe's side of the webhook: no API key, only the signature."""
    with stripe_server.client() as client:
        yield client


# ------------------------------------------------------------------ helpers


def _in_session(settings: Settings, work: Any) -> Any:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            result = work(session)
            session.commit()
            return result
    finally:
        runtime.database.dispose()


def _set_org(settings: Settings, organization_id: int, assignment: str) -> None:
    _in_session(
        settings,
        lambda s: s.execute(
            text(f"UPDATE organizations SET {assignment} WHERE id = :id"), {"id": organization_id}
        ),
    )


def recorded_event(settings: Settings, event_id: str) -> tuple[str, str | None, str | None] | None:
    """(type, invoice id, outcome) of a Stripe event invoicehub kept, or None."""
    row = _in_session(
        settings,
        lambda s: s.execute(
            text(
                "SELECT type, invoice_public_id, outcome FROM provider_events"
                " WHERE provider = 'stripe' AND event_id = :id"
            ),
            {"id": event_id},
        ).one_or_none(),
    )
    return None if row is None else tuple(row)


def create(api: httpx.Client, **overrides: object) -> dict[str, Any]:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def invoice(api: httpx.Client, invoice_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/invoices/{invoice_id}")
    assert response.status_code == 200, response.text
    return response.json()


def payments(api: httpx.Client, invoice_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/invoices/{invoice_id}/payments")
    assert response.status_code == 200, response.text
    return response.json()


def events(api: httpx.Client, invoice_id: str) -> list[dict[str, Any]]:
    response = api.get("/v1/events", params={"object_id": invoice_id, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def event_types(api: httpx.Client, invoice_id: str) -> list[str]:
    return [e["type"] for e in events(api, invoice_id)]


def deliver(
    stripe: httpx.Client,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> httpx.Response:
    body, headers = fs.signed(event, secret, timestamp=timestamp)
    return stripe.post("/webhooks/stripe", content=body, headers=headers)


def delivered(stripe: httpx.Client, event: dict[str, Any]) -> str:
    """Delivers a correctly signed event and returns invoicehub's outcome."""
    response = deliver(stripe, event)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["received"] is True
    assert isinstance(body["outcome"], str)
    assert body["outcome"]
    return body["outcome"]


def link_for(api: httpx.Client, fake: FakeStripe, invoice_id: str) -> tuple[dict, dict]:
    """Makes the invoice's payment link; returns it and the Checkout Session Stripe made."""
    made = api.post(f"/v1/invoices/{invoice_id}/payment-link")
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["provider_checkout_id"] in fake.sessions, "no Checkout Session at the fake"
    return link, fake.sessions[link["provider_checkout_id"]]


def paid_through_checkout(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> tuple[dict, str, dict[str, str]]:
    """An open invoice paid in full through its Checkout Session: (invoice, pi, metadata)."""
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    assert delivered(stripe, completed) == "invoice is paid"
    return created, session["payment_intent"], session["metadata"]


def stripe_pay_href(html: str) -> str | None:
    for tag in re.findall(r"<a\b[^>]*>", html):
        if 'data-testid="stripe-pay"' in tag:
            found = re.search(r'href="([^"]*)"', tag)
            return found.group(1) if found else ""
    return None


# ------------------------------------------------------------------ payment links


def test_a_payment_link_creates_a_checkout_session_for_the_amount_due(
    api: httpx.Client, stripe_server: LiveServer, stripe_org: OrgKeys, fake: FakeStripe
) -> None:
    created = create(api, status="open")
    paid = api.post(f"/v1/invoices/{created['id']}/payments", json={"amount": "1000"})
    assert paid.status_code == 200, paid.text

    made = api.post(f"/v1/invoices/{created['id']}/payment-link")
    assert made.status_code == 201, made.text
    link = made.json()

    calls = fake.requests_to("/v1/checkout/sessions")
    assert [c.method for c in calls] == ["POST"], fake.requests
    call = calls[0]
    assert call.headers["authorization"] == f"Bearer {SECRET_KEY}"
    params = call.params
    assert params["mode"] == "payment"
    assert params["line_items[0][quantity]"] == "1"
    assert params["line_items[0][price_data][unit_amount]"] == "500000"  # 5000.00 still due
    assert params["line_items[0][price_data][currency]"] == "usd"
    assert params["line_items[0][price_data][product_data][name]"] == (
        f"Invoice {created['number']}"
    )
    assert "line_items[1][quantity]" not in params
    metadata = fs.invoice_metadata(created["id"], stripe_org.internal_id)
    assert call.sub("metadata") == metadata
    assert call.sub("payment_intent_data[metadata]") == metadata
    assert params["client_reference_id"] == created["id"]
    assert params["customer_email"] == "client@example.com"
    assert params["cancel_url"] == link["url"]
    assert params["success_url"].startswith(link["url"])

    session = fake.sessions[link["provider_checkout_id"]]
    assert session["amount_total"] == 500_000
    assert session["id"].startswith("cs_test_")
    assert link["provider"] == "stripe"
    assert link["provider_checkout_id"] == session["id"]
    assert link["provider_url"] == session["url"]
    assert link["provider_url"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    assert api.get(f"/v1/invoices/{created['id']}/payment-link").json() == link

    with stripe_server.client() as customer:
        page = customer.get(f"/pay/{link['token']}")
    assert page.status_code == 200
    assert stripe_pay_href(page.text) == session["url"]
    assert 'data-testid="pay-button"' not in page.text  # no sandbox card form for Stripe
    # Only the fake on 127.0.0.1 was ever asked: nothing went to api.stripe.com.
    assert [c.path for c in fake.requests] == ["/v1/checkout/sessions"]


def test_a_draft_link_charges_the_whole_total_in_the_currencys_minor_units(
    api: httpx.Client, fake: FakeStripe
) -> None:
    usd = create(api)  # a draft: the link finalizes it
    _, session = link_for(api, fake, usd["id"])
    assert invoice(api, usd["id"])["status"] == "open"
    assert session["amount_total"] == TOTAL_MINOR
    assert (
        fake.requests_to("/v1/checkout/sessions")[0].params["line_items[0][price_data][currency]"]
        == "usd"
    )

    yen = create(api, currency="JPY")  # JPY has no minor unit: 6000 yen is 6000
    _, session = link_for(api, fake, yen["id"])
    call = fake.requests_to("/v1/checkout/sessions")[-1]
    assert call.params["line_items[0][price_data][unit_amount]"] == "6000"
    assert call.params["line_items[0][price_data][currency]"] == "jpy"
    assert session["amount_total"] == 6000


def test_stripe_refusing_the_checkout_leaves_no_link(api: httpx.Client, fake: FakeStripe) -> None:
    fake.checkout_error = StripeErrorReply(
        status=400, type="invalid_request_error", code="parameter_invalid", message="Nope."
    )
    draft = create(api)
    refused = api.post(f"/v1/invoices/{draft['id']}/payment-link")
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "payment_provider_error"
    assert len(fake.requests_to("/v1/checkout/sessions")) == 1
    assert api.get(f"/v1/invoices/{draft['id']}/payment-link").status_code == 404
    assert invoice(api, draft["id"])["status"] == "draft"  # the finalization was rolled back
    assert "invoice.finalized" not in event_types(api, draft["id"])


# ------------------------------------------------------------------ getting paid


def test_checkout_completed_pays_the_invoice_once(
    api: httpx.Client,
    stripe: httpx.Client,
    stripe_server: LiveServer,
    stripe_settings: Settings,
    fake: FakeStripe,
) -> None:
    created = create(api, status="open")
    link, session = link_for(api, fake, created["id"])
    intent = session["payment_intent"]
    assert intent.startswith("pi_test_")
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))

    assert delivered(stripe, completed) == "invoice is paid"
    after = invoice(api, created["id"])
    assert (after["status"], after["amount_paid"], after["amount_due"]) == (
        "paid",
        "6000.00",
        "0.00",
    )
    [payment] = payments(api, created["id"])
    assert (payment["kind"], payment["status"], payment["amount"], payment["currency"]) == (
        "payment",
        "succeeded",
        "6000.00",
        "USD",
    )
    assert (payment["provider"], payment["reference"]) == ("stripe", intent)
    paid_events = [e for e in events(api, created["id"]) if e["type"] == "invoice.paid"]
    assert len(paid_events) == 1
    assert paid_events[0]["data"]["payment"]["reference"] == intent
    assert recorded_event(stripe_settings, completed["id"]) == (
        "checkout.session.completed",
        created["id"],
        "invoice is paid",
    )

    # Stripe redelivers the very same event (a new signature, the same id): a no-op.
    again = delivered(stripe, completed)
    assert "duplicate" in again
    # Then the PaymentIntent's own event for the same money.
    succeeded = fs.payment_intent_succeeded(
        metadata=session["metadata"], amount=TOTAL_MINOR, currency="usd", payment_intent=intent
    )
    assert "duplicate" in delivered(stripe, succeeded)

    assert [(p["kind"], p["status"]) for p in payments(api, created["id"])] == [
        ("payment", "succeeded")
    ]
    types = event_types(api, created["id"])
    assert types.count("invoice.paid") == 1
    assert "invoice.payment_flagged" not in types
    assert invoice(api, created["id"])["amount_paid"] == "6000.00"

    with stripe_server.client() as customer:
        page = customer.get(f"/pay/{link['token']}")
    assert page.status_code == 200
    assert stripe_pay_href(page.text) is None  # nothing left to pay


def test_payment_intent_succeeded_alone_pays_the_invoice(
    api: httpx.Client, stripe: httpx.Client, stripe_org: OrgKeys, fake: FakeStripe
) -> None:
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    succeeded = fs.payment_intent_succeeded(
        metadata=fs.invoice_metadata(created["id"], stripe_org.internal_id),
        amount=TOTAL_MINOR,
        currency="usd",
        payment_intent=session["payment_intent"],
    )
    assert delivered(stripe, succeeded) == "invoice is paid"
    [payment] = payments(api, created["id"])
    assert (payment["provider"], payment["reference"]) == ("stripe", session["payment_intent"])
    # ... and the checkout's completion afterwards does not pay it twice.
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    assert "duplicate" in delivered(stripe, completed)
    assert len(payments(api, created["id"])) == 1
    assert event_types(api, created["id"]).count("invoice.paid") == 1


@pytest.mark.parametrize(
    ("amount", "currency", "flagged_amount", "flagged_currency"),
    [
        pytest.param(TOTAL_MINOR + 100, "usd", "6001.00", "USD", id="more-than-due"),
        pytest.param(TOTAL_MINOR, "eur", "6000.00", "EUR", id="wrong-currency"),
    ],
)
def test_money_that_does_not_fit_is_flagged_for_review(
    api: httpx.Client,
    stripe: httpx.Client,
    fake: FakeStripe,
    amount: int,
    currency: str,
    flagged_amount: str,
    flagged_currency: str,
) -> None:
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    completed = fs.event(
        "checkout.session.completed",
        fake.completed_session(session["id"], amount_total=amount, currency=currency),
    )
    assert delivered(stripe, completed).startswith("flagged for review")

    after = invoice(api, created["id"])
    assert (after["status"], after["amount_paid"]) == ("open", "0.00")
    [payment] = payments(api, created["id"])
    assert (payment["status"], payment["amount"], payment["currency"]) == (
        "review",
        flagged_amount,
        flagged_currency,
    )
    assert (payment["provider"], payment["reference"]) == ("stripe", session["payment_intent"])
    assert payment["failure_reason"]
    flagged = [e for e in events(api, created["id"]) if e["type"] == "invoice.payment_flagged"]
    assert len(flagged) == 1
    assert flagged[0]["data"]["payment"]["status"] == "review"
    assert "invoice.paid" not in event_types(api, created["id"])


def test_a_second_payment_for_a_paid_invoice_is_flagged(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    """The customer pays again through another PaymentIntent: the money is kept for review."""
    created, intent, metadata = paid_through_checkout(api, stripe, fake)
    twice = fs.payment_intent_succeeded(
        metadata=metadata, amount=TOTAL_MINOR, currency="usd", payment_intent="pi_test_second"
    )
    assert delivered(stripe, twice).startswith("flagged for review")
    after = invoice(api, created["id"])
    assert (after["status"], after["amount_paid"]) == ("paid", "6000.00")
    assert [(p["status"], p["reference"]) for p in payments(api, created["id"])] == [
        ("succeeded", intent),
        ("review", "pi_test_second"),
    ]
    assert event_types(api, created["id"]).count("invoice.payment_flagged") == 1


def test_less_than_due_is_flagged_when_partial_payments_are_off(
    api: httpx.Client,
    stripe: httpx.Client,
    stripe_settings: Settings,
    stripe_org: OrgKeys,
    fake: FakeStripe,
) -> None:
    _set_org(stripe_settings, stripe_org.internal_id, "allow_partial_payments = false")
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    completed = fs.event(
        "checkout.session.completed",
        fake.completed_session(session["id"], amount_total=TOTAL_MINOR - 1),
    )
    assert delivered(stripe, completed).startswith("flagged for review")
    assert invoice(api, created["id"])["status"] == "open"
    assert [(p["status"], p["amount"]) for p in payments(api, created["id"])] == [
        ("review", "5999.99")
    ]
    assert "invoice.payment_flagged" in event_types(api, created["id"])


def test_an_unpaid_checkout_completion_pays_nothing(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    pending = fs.event(
        "checkout.session.completed", fake.completed_session(session["id"], payment_status="unpaid")
    )
    assert delivered(stripe, pending).startswith("ignored")
    assert invoice(api, created["id"])["status"] == "open"
    assert payments(api, created["id"]) == []


def test_money_for_a_cancelled_invoice_is_accepted_as_paid_late(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    cancelled = api.post(f"/v1/invoices/{created['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    assert delivered(stripe, completed) == "invoice is paid"
    after = invoice(api, created["id"])
    assert (after["status"], after["paid_late"], after["amount_paid"]) == ("paid", True, "6000.00")
    [payment] = payments(api, created["id"])
    assert (payment["status"], payment["provider"], payment["reference"]) == (
        "succeeded",
        "stripe",
        session["payment_intent"],
    )
    types = event_types(api, created["id"])
    assert types[:2] == ["invoice.paid", "invoice.paid_late"]
    assert fake.requests_to("/v1/refunds") == []  # accepted: nothing goes back


def test_money_for_a_cancelled_invoice_goes_back_through_stripe_when_the_policy_says_refund(
    api: httpx.Client,
    stripe: httpx.Client,
    stripe_settings: Settings,
    stripe_org: OrgKeys,
    fake: FakeStripe,
) -> None:
    _set_org(stripe_settings, stripe_org.internal_id, "late_payment_policy = 'refund'")
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    api.post(f"/v1/invoices/{created['id']}/cancel").raise_for_status()

    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    delivered(stripe, completed)
    after = invoice(api, created["id"])
    assert (after["status"], after["paid_late"], after["amount_refunded"]) == (
        "cancelled",
        True,
        "6000.00",
    )
    assert [(p["kind"], p["amount"], p["provider"]) for p in payments(api, created["id"])] == [
        ("payment", "6000.00", "stripe"),
        ("refund", "6000.00", "stripe"),
    ]
    # invoicehub now says the customer got the money back: it must have asked Stripe to.
    refunds = fake.requests_to("/v1/refunds")
    assert [(r.params.get("payment_intent"), r.params.get("amount")) for r in refunds] == [
        (session["payment_intent"], str(TOTAL_MINOR))
    ], "a refund recorded as made through Stripe was never sent to Stripe"


def _deliver_at_once(
    stripe_server: LiveServer, batch: list[dict[str, Any]]
) -> list[httpx.Response]:
    """Stripe's deliveries of ``batch`` arriving together (Stripe sends its events for one
    payment in parallel, from several machines)."""
    barrier = threading.Barrier(len(batch))
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def send(event: dict[str, Any]) -> None:
        body, headers = fs.signed(event, WEBHOOK_SECRET)
        with stripe_server.client() as client:
            barrier.wait(timeout=30)
            answer = client.post("/webhooks/stripe", content=body, headers=headers)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send, args=(event,)) for event in batch]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a webhook delivery never finished"
    assert [a.status_code for a in answers] == [200] * len(batch), [a.text for a in answers]
    return answers


def test_one_payment_announced_by_two_events_at_once_is_counted_once(
    api: httpx.Client, stripe_server: LiveServer, stripe_org: OrgKeys, fake: FakeStripe
) -> None:
    """checkout.session.completed and payment_intent.succeeded of one PaymentIntent arrive
    together. Without the invoice's lock both pass the "already recorded?" check and the
    second becomes a second payment row (flagged); it must be recognised as the same one."""
    for _ in range(10):
        created = create(api, status="open")
        metadata = fs.invoice_metadata(created["id"], stripe_org.internal_id)
        intent = f"pi_test_{created['id']}"
        _deliver_at_once(
            stripe_server,
            [
                fs.checkout_session_completed(
                    metadata=metadata, amount_total=600_000, currency="usd", payment_intent=intent
                ),
                fs.payment_intent_succeeded(
                    metadata=metadata, amount=600_000, currency="usd", payment_intent=intent
                ),
            ],
        )
        assert [(p["status"], p["amount"]) for p in payments(api, created["id"])] == [
            ("succeeded", "6000.00")
        ], f"PaymentIntent {intent} was counted more than once"
        assert invoice(api, created["id"])["amount_paid"] == "6000.00"


def test_two_payments_arriving_at_once_are_both_kept(
    api: httpx.Client, stripe_server: LiveServer, stripe_org: OrgKeys, fake: FakeStripe
) -> None:
    """Two PaymentIntents pay the same invoice in full at the same moment: one pays it, the
    other is money that does not fit and must be kept for review, never dropped."""
    for _ in range(10):
        created = create(api, status="open")
        metadata = fs.invoice_metadata(created["id"], stripe_org.internal_id)
        _deliver_at_once(
            stripe_server,
            [
                fs.payment_intent_succeeded(
                    metadata=metadata,
                    amount=TOTAL_MINOR,
                    currency="usd",
                    payment_intent=f"pi_test_{k}_{created['id']}",
                )
                for k in ("a", "b")
            ],
        )
        kept = sorted(p["status"] for p in payments(api, created["id"]))
        assert kept == ["review", "succeeded"], f"the second payment was not kept: {kept}"
        assert invoice(api, created["id"])["amount_paid"] == "6000.00"
        assert event_types(api, created["id"]).count("invoice.payment_flagged") == 1


# ------------------------------------------------------------------ refunds


def test_a_refund_goes_through_stripe_and_stripes_own_news_of_it_is_not_counted_twice(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    created, intent, metadata = paid_through_checkout(api, stripe, fake)

    refunded = api.post(f"/v1/invoices/{created['id']}/refunds", json={"amount": "1000"})
    assert refunded.status_code == 200, refunded.text
    assert (refunded.json()["status"], refunded.json()["amount_refunded"]) == (
        "partially_refunded",
        "1000.00",
    )
    [call] = fake.requests_to("/v1/refunds")
    assert call.method == "POST"
    assert call.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert (call.params["payment_intent"], call.params["amount"]) == (intent, "100000")
    refunds = [p for p in payments(api, created["id"]) if p["kind"] == "refund"]
    assert [(r["amount"], r["provider"], r["reference"], r["status"]) for r in refunds] == [
        ("1000.00", "stripe", intent, "succeeded")
    ]
    assert event_types(api, created["id"]).count("invoice.partially_refunded") == 1

    # Stripe then reports that refund: charge.refunded with the cumulative amount.
    echo = fs.charge_refunded(
        metadata=metadata,
        amount=TOTAL_MINOR,
        amount_refunded=100_000,
        currency="usd",
        payment_intent=intent,
    )
    assert delivered(stripe, echo) == "refund already recorded"
    assert invoice(api, created["id"])["amount_refunded"] == "1000.00"
    assert len([p for p in payments(api, created["id"]) if p["kind"] == "refund"]) == 1

    # Someone refunds 1500 more in Stripe's dashboard: Stripe's total is now 2500.
    dashboard = fs.charge_refunded(
        metadata=metadata,
        amount=TOTAL_MINOR,
        amount_refunded=250_000,
        currency="usd",
        payment_intent=intent,
    )
    assert delivered(stripe, dashboard) == "invoice is partially_refunded"
    after = invoice(api, created["id"])
    assert (after["status"], after["amount_refunded"]) == ("partially_refunded", "2500.00")
    refunds = [p for p in payments(api, created["id"]) if p["kind"] == "refund"]
    assert [(r["amount"], r["provider"], r["reference"]) for r in refunds] == [
        ("1000.00", "stripe", intent),
        ("1500.00", "stripe", intent),
    ]
    assert len(fake.requests_to("/v1/refunds")) == 1  # Stripe's news is not sent back to it

    # The rest, refunded through invoicehub, goes to Stripe for exactly what is left.
    rest = api.post(f"/v1/invoices/{created['id']}/refunds")
    assert rest.status_code == 200, rest.text
    assert (rest.json()["status"], rest.json()["amount_refunded"]) == ("refunded", "6000.00")
    last = fake.requests_to("/v1/refunds")[-1]
    assert (last.params["payment_intent"], last.params["amount"]) == (intent, "350000")
    full = fs.charge_refunded(
        metadata=metadata,
        amount=TOTAL_MINOR,
        amount_refunded=TOTAL_MINOR,
        currency="usd",
        payment_intent=intent,
    )
    assert delivered(stripe, full) == "refund already recorded"
    assert invoice(api, created["id"])["amount_refunded"] == "6000.00"


def test_charge_refunded_finds_the_invoice_by_its_payment_intent(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    """A Charge carries no invoicehub metadata when it was not copied there: the payment
    intent recorded on the payment is enough."""
    created, intent, _ = paid_through_checkout(api, stripe, fake)
    bare = fs.charge_refunded(
        metadata={},
        amount=TOTAL_MINOR,
        amount_refunded=TOTAL_MINOR,
        currency="usd",
        payment_intent=intent,
    )
    assert delivered(stripe, bare) == "invoice is refunded"
    assert invoice(api, created["id"])["status"] == "refunded"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(StripeErrorReply(), id="402-card_error"),
        pytest.param(
            StripeErrorReply(
                status=400,
                type="invalid_request_error",
                code="charge_already_refunded",
                message="Charge ch_x has already been refunded.",
            ),
            id="400-invalid_request",
        ),
    ],
)
def test_stripe_refusing_a_refund_records_nothing(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe, error: StripeErrorReply
) -> None:
    created, intent, _ = paid_through_checkout(api, stripe, fake)
    before_events = event_types(api, created["id"])
    fake.refund_error = error

    refused = api.post(f"/v1/invoices/{created['id']}/refunds", json={"amount": "1000"})
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "payment_provider_error"
    [call] = fake.requests_to("/v1/refunds")  # asked once, not retried
    assert (call.params["payment_intent"], call.params["amount"]) == (intent, "100000")

    after = invoice(api, created["id"])
    assert (after["status"], after["amount_refunded"]) == ("paid", "0.00")
    assert [p["kind"] for p in payments(api, created["id"])] == ["payment"]
    assert event_types(api, created["id"]) == before_events


def test_a_refund_invoicehub_refuses_never_reaches_stripe(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    created, _, _ = paid_through_checkout(api, stripe, fake)
    too_much = api.post(f"/v1/invoices/{created['id']}/refunds", json={"amount": "6000.01"})
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["error"]["code"] == "amount_exceeds_refundable"
    zero = api.post(f"/v1/invoices/{created['id']}/refunds", json={"amount": "0"})
    assert zero.status_code == 422, zero.text
    assert fake.requests_to("/v1/refunds") == []
    assert invoice(api, created["id"])["amount_refunded"] == "0.00"


def test_a_refund_asks_stripe_for_no_more_than_the_stripe_payment_took(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    """1000 paid by bank transfer, the remaining 5000 through Stripe, then a full refund: Stripe
    can give back only its own 5000 (real Stripe refuses more than the charge)."""
    created = create(api, status="open")
    api.post(f"/v1/invoices/{created['id']}/payments", json={"amount": "1000"}).raise_for_status()
    _, session = link_for(api, fake, created["id"])
    assert session["amount_total"] == 500_000
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    assert delivered(stripe, completed) == "invoice is paid"

    full = api.post(f"/v1/invoices/{created['id']}/refunds")
    asked = [int(r.params["amount"]) for r in fake.requests_to("/v1/refunds")]
    assert all(amount <= 500_000 for amount in asked), (
        f"Stripe was asked to refund {asked} on a PaymentIntent of 500000"
    )
    assert full.status_code == 200, full.text
    assert (full.json()["status"], full.json()["amount_refunded"]) == ("refunded", "6000.00")
    assert sum(asked) == 500_000


# ------------------------------------------------------------------ failed payments


def test_invoice_payment_failed_marks_the_invoice_overdue_once(
    api: httpx.Client, stripe: httpx.Client, stripe_org: OrgKeys, fake: FakeStripe
) -> None:
    created = create(api, status="open")
    assert invoice(api, created["id"])["overdue"] is False
    failed = fs.invoice_payment_failed(
        metadata=fs.invoice_metadata(created["id"], stripe_org.internal_id),
        amount_due=TOTAL_MINOR,
        currency="usd",
    )
    assert delivered(stripe, failed) == "invoice marked overdue"
    after = invoice(api, created["id"])
    assert (after["status"], after["overdue"]) == ("open", True)
    assert after["last_payment_error"]
    overdue = [e for e in events(api, created["id"]) if e["type"] == "invoice.overdue"]
    assert len(overdue) == 1

    another = fs.invoice_payment_failed(
        metadata=fs.invoice_metadata(created["id"], stripe_org.internal_id),
        amount_due=TOTAL_MINOR,
        currency="usd",
    )
    assert delivered(stripe, another) == "already overdue or not open"
    assert event_types(api, created["id"]).count("invoice.overdue") == 1


def test_events_for_someone_elses_payments_are_acknowledged_and_ignored(
    stripe: httpx.Client, stripe_settings: Settings, fake: FakeStripe
) -> None:
    foreign = fs.payment_intent_succeeded(
        metadata={}, amount=100, currency="usd", payment_intent="pi_test_not_ours"
    )
    assert delivered(stripe, foreign).startswith("ignored")
    recorded = recorded_event(stripe_settings, foreign["id"])
    assert recorded is not None
    assert recorded[:2] == ("payment_intent.succeeded", None)


# ------------------------------------------------------------------ signatures


def _tampered(body: bytes) -> bytes:
    event = json.loads(body)
    event["data"]["object"]["amount_total"] = 1
    return json.dumps(event, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "attack",
    ["wrong-secret", "tampered-body", "missing-header", "6-minutes-old", "6-minutes-ahead"],
)
def test_a_bad_signature_is_refused_and_nothing_is_recorded(
    api: httpx.Client,
    stripe: httpx.Client,
    stripe_settings: Settings,
    fake: FakeStripe,
    attack: str,
) -> None:
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    now = int(time.time())
    body, headers = fs.signed(completed, WEBHOOK_SECRET, timestamp=now)
    if attack == "wrong-secret":
        body, headers = fs.signed(completed, "whsec_someone_else", timestamp=now)
    elif attack == "tampered-body":
        body = _tampered(body)
    elif attack == "missing-header":
        del headers["Stripe-Signature"]
    elif attack == "6-minutes-old":
        body, headers = fs.signed(completed, WEBHOOK_SECRET, timestamp=now - 360)
    elif attack == "6-minutes-ahead":
        body, headers = fs.signed(completed, WEBHOOK_SECRET, timestamp=now + 360)

    refused = stripe.post("/webhooks/stripe", content=body, headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert recorded_event(stripe_settings, completed["id"]) is None
    assert invoice(api, created["id"])["status"] == "open"
    assert payments(api, created["id"]) == []
    assert "invoice.paid" not in event_types(api, created["id"])

    # The refusal did not use up the event id: Stripe's genuine retry is applied.
    assert delivered(stripe, completed) == "invoice is paid"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("t=abc,v1=deadbeef", id="no-timestamp"),
        pytest.param("v1=deadbeef", id="only-v1"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_malformed_signature_headers_are_refused(
    stripe: httpx.Client, stripe_settings: Settings, stripe_org: OrgKeys, header: str
) -> None:
    completed = fs.checkout_session_completed(
        metadata=fs.invoice_metadata("inv_unknown", stripe_org.internal_id),
        amount_total=TOTAL_MINOR,
        currency="usd",
        payment_intent="pi_test_x",
    )
    body, _ = fs.signed(completed, WEBHOOK_SECRET)
    refused = stripe.post(
        "/webhooks/stripe",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert recorded_event(stripe_settings, completed["id"]) is None


def test_a_signed_body_that_is_not_a_stripe_event_is_refused(stripe: httpx.Client) -> None:
    for body in (b"not json", b"[1, 2]", b'{"id": "evt_test_no_type"}'):
        headers = {"Stripe-Signature": fs.sign(body, WEBHOOK_SECRET, int(time.time()))}
        refused = stripe.post("/webhooks/stripe", content=body, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "invalid_signature"


def test_any_matching_v1_signature_is_enough_and_v0_is_not(
    api: httpx.Client, stripe: httpx.Client, stripe_settings: Settings, fake: FakeStripe
) -> None:
    """While a secret is rolled Stripe sends one v1 per secret; a v0 (test) scheme never counts."""
    created = create(api, status="open")
    _, session = link_for(api, fake, created["id"])
    completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
    now = int(time.time())
    body, headers = fs.signed(completed, WEBHOOK_SECRET, timestamp=now)
    good = headers["Stripe-Signature"].split(",v1=")[1]
    old = fs.sign(body, "whsec_the_old_one", now).split(",v1=")[1]

    headers["Stripe-Signature"] = f"t={now},v0={good}"
    refused = stripe.post("/webhooks/stripe", content=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_signature")
    assert recorded_event(stripe_settings, completed["id"]) is None

    headers["Stripe-Signature"] = f"t={now},v1={old},v1={good}"
    accepted = stripe.post("/webhooks/stripe", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert invoice(api, created["id"])["status"] == "paid"


def test_a_signature_within_the_tolerance_is_accepted(
    api: httpx.Client, stripe: httpx.Client, fake: FakeStripe
) -> None:
    """A retry Stripe signed four minutes ago (and a clock four minutes ahead) still count."""
    for skew in (-240, 240):
        created = create(api, status="open")
        _, session = link_for(api, fake, created["id"])
        completed = fs.event("checkout.session.completed", fake.completed_session(session["id"]))
        accepted = deliver(stripe, completed, timestamp=int(time.time()) + skew)
        assert accepted.status_code == 200, accepted.text
        assert invoice(api, created["id"])["status"] == "paid"


def test_without_a_webhook_secret_stripe_webhooks_are_unavailable(
    database_url: str, stripe_settings: Settings, fake_stripe: FakeStripe
) -> None:
    keys = create_org(stripe_settings, name="No webhook secret")
    _set_org(stripe_settings, keys.internal_id, "payment_provider = 'stripe'")
    settings = make_settings(
        database_url,
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=None,
        stripe_api_base=fake_stripe.url,
    )
    with LiveServer(settings) as live, live.client(keys.secret_key) as api, live.client() as stripe:
        created = create(api, status="open")
        completed = fs.checkout_session_completed(
            metadata=fs.invoice_metadata(created["id"], keys.internal_id),
            amount_total=TOTAL_MINOR,
            currency="usd",
            payment_intent="pi_test_unconfigured",
        )
        for secret in (WEBHOOK_SECRET, ""):
            refused = deliver(stripe, completed, secret=secret)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "stripe_not_configured"
        assert recorded_event(stripe_settings, completed["id"]) is None
        assert invoice(api, created["id"])["status"] == "open"
        assert payments(api, created["id"]) == []
