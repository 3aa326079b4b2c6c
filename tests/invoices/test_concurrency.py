"""Real concurrency against the real server: threads, each with its own HTTP client, released
together by a barrier. Every outcome is checked twice: in the HTTP answers and in the tables."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.models import Event, Invoice, InvoiceNumberSequence, Payment
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body

Call = Callable[[httpx.Client], httpx.Response]


def race(server: LiveServer, calls: list[tuple[str, Call]]) -> list[httpx.Response]:
    """Runs every (secret key, call) at once, each on its own connection; answers in order."""
    clients = [server.client(secret) for secret, _ in calls]
    try:
        for client in clients:  # connect first, so the barrier releases requests, not handshakes
            assert client.get("/healthz").status_code == 200
        barrier = threading.Barrier(len(calls))

        def run(index: int) -> httpx.Response:
            barrier.wait(timeout=30)
            return calls[index][1](clients[index])

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(run, i) for i in range(len(calls))]
            return [f.result(timeout=120) for f in futures]
    finally:
        for client in clients:
            client.close()


def create_open(server: LiveServer, org: OrgKeys, **overrides: object) -> dict:
    with server.client(org.secret_key) as api:
        response = api.post("/v1/invoices", json=invoice_body(status="open", **overrides))
        assert response.status_code == 201, response.text
        return response.json()


def post(path: str, body: dict | None = None) -> Call:
    return lambda client: client.post(path, json=body)


def codes(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def error_codes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(r.json()["error"]["code"] for r in responses if r.status_code >= 400)


@dataclass(frozen=True)
class Stored:
    status: str
    total: int
    amount_paid: int
    amount_refunded: int
    payments: list[int]  # succeeded payment amounts
    refunds: list[int]  # succeeded refund amounts
    events: Counter[str]


def stored(runtime: Runtime, public_id: str) -> Stored:
    with runtime.database.session(write=False) as session:
        invoice = session.scalar(select(Invoice).where(Invoice.public_id == public_id))
        assert invoice is not None
        rows = session.execute(
            select(Payment.kind, Payment.status, Payment.amount_minor)
            .where(Payment.invoice_id == invoice.id)
            .order_by(Payment.id)
        ).all()
        assert {status for _, status, _ in rows} <= {"succeeded"}
        events = Counter(session.scalars(select(Event.type).where(Event.object_id == public_id)))
        return Stored(
            status=invoice.status,
            total=invoice.total_minor,
            amount_paid=invoice.amount_paid_minor,
            amount_refunded=invoice.amount_refunded_minor,
            payments=[amount for kind, _, amount in rows if kind == "payment"],
            refunds=[amount for kind, _, amount in rows if kind == "refund"],
            events=events,
        )


def numbers_in_db(runtime: Runtime, org: OrgKeys) -> list[str]:
    with runtime.database.session(write=False) as session:
        return sorted(
            session.scalars(
                select(Invoice.number).where(Invoice.organization_id == org.internal_id)
            )
        )


def sequence_in_db(runtime: Runtime, org: OrgKeys) -> dict[str, int]:
    with runtime.database.session(write=False) as session:
        rows = session.execute(
            select(InvoiceNumberSequence.period, InvoiceNumberSequence.last_value).where(
                InvoiceNumberSequence.organization_id == org.internal_id
            )
        ).all()
        return {period: value for period, value in rows}


def created_events_in_db(runtime: Runtime, org: OrgKeys) -> int:
    with runtime.database.session(write=False) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.organization_id == org.internal_id, Event.type == "invoice.created")
            )
            or 0
        )


def expected_numbers(responses: list[httpx.Response], count: int) -> list[str]:
    years = {dt.date.fromisoformat(r.json()["issue_date"]).year for r in responses}
    assert len(years) == 1, years
    year = years.pop()
    return [f"INV-{year}-{i:04d}" for i in range(1, count + 1)]


# ---------------------------------------------------------------- numbering


def test_concurrent_creation_gets_gapless_distinct_numbers(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    responses = race(server, [(org.secret_key, post("/v1/invoices", invoice_body()))] * 20)
    assert codes(responses) == {201: 20}, [r.text for r in responses if r.status_code != 201]
    numbers = sorted(r.json()["number"] for r in responses)
    assert numbers == expected_numbers(responses, 20)
    assert numbers_in_db(runtime, org) == numbers
    year = numbers[0].split("-")[1]
    assert sequence_in_db(runtime, org) == {year: 20}
    assert created_events_in_db(runtime, org) == 20


def test_two_organizations_number_independently_under_concurrency(
    server: LiveServer, settings: Settings, runtime: Runtime
) -> None:
    first, second = create_org(settings, name="Race A"), create_org(settings, name="Race B")
    calls = [
        (org.secret_key, post("/v1/invoices", invoice_body()))
        for _ in range(10)
        for org in (first, second)
    ]
    responses = race(server, calls)
    assert codes(responses) == {201: 20}, [r.text for r in responses if r.status_code != 201]
    for offset, org in enumerate((first, second)):
        mine = responses[offset::2]
        numbers = sorted(r.json()["number"] for r in mine)
        assert numbers == expected_numbers(mine, 10)
        assert numbers_in_db(runtime, org) == numbers
        assert list(sequence_in_db(runtime, org).values()) == [10]


# ---------------------------------------------------------------- payments


def test_concurrent_full_payments_pay_exactly_once(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    invoice = create_open(server, org)
    responses = race(
        server, [(org.secret_key, post(f"/v1/invoices/{invoice['id']}/payments"))] * 10
    )
    assert codes(responses)[200] == 1, [r.text for r in responses]
    assert set(codes(responses)) <= {200, 409, 422}, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert (winner["status"], winner["amount_paid"], winner["amount_due"]) == (
        "paid",
        "6000.00",
        "0.00",
    )

    db = stored(runtime, invoice["id"])
    assert db.status == "paid"
    assert db.payments == [db.total] == [600_000]
    assert db.amount_paid == db.total
    assert db.events["invoice.paid"] == 1
    assert db.events["invoice.partially_paid"] == 0
    # The losers were refused because the invoice is paid; that is what they must be told.
    assert error_codes(responses) == {"invoice_not_payable": 9}, [r.text for r in responses]


def test_concurrent_partial_payments_never_overpay(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    invoice = create_open(server, org)  # 6000.00 due
    amounts = ["700.00"] * 8 + ["450.00", "1200.00", "333.33", "2500.00"]  # 10 433.33 offered
    calls = [
        (org.secret_key, post(f"/v1/invoices/{invoice['id']}/payments", {"amount": a}))
        for a in amounts
    ]
    responses = race(server, calls)
    assert set(codes(responses)) <= {200, 409, 422}, [r.text for r in responses]
    accepted = [
        int(a.replace(".", ""))
        for a, r in zip(amounts, responses, strict=True)
        if r.status_code == 200
    ]
    assert accepted

    db = stored(runtime, invoice["id"])
    assert db.amount_paid <= db.total
    assert sorted(db.payments) == sorted(accepted)
    assert sum(db.payments) == db.amount_paid
    assert db.status == ("paid" if db.amount_paid == db.total else "open")
    # Each accepted payment saw a different running total, the largest being the final one.
    running = sorted(
        int(r.json()["amount_paid"].replace(".", "")) for r in responses if r.status_code == 200
    )
    assert len(set(running)) == len(running)
    assert running[-1] == db.amount_paid
    # Every refusal was right when it was made: what was refused did not fit what was left.
    refused = [
        int(a.replace(".", ""))
        for a, r in zip(amounts, responses, strict=True)
        if r.status_code != 200
    ]
    assert all(amount > db.total - db.amount_paid or db.status == "paid" for amount in refused)
    assert db.events["invoice.paid"] == (1 if db.status == "paid" else 0)
    assert db.events["invoice.partially_paid"] + db.events["invoice.paid"] == len(accepted)
    # Refused because the invoice was paid or the amount was more than was due; nothing else.
    assert set(error_codes(responses)) <= {"invoice_not_payable", "amount_exceeds_due"}, [
        r.text for r in responses if r.status_code != 200
    ]


def test_concurrent_equal_partial_payments_stop_exactly_at_the_total(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    invoice = create_open(server, org)  # 6000.00 due: exactly 6 of 10 payments of 1000.00 fit
    responses = race(
        server,
        [(org.secret_key, post(f"/v1/invoices/{invoice['id']}/payments", {"amount": "1000.00"}))]
        * 10,
    )
    assert codes(responses)[200] == 6, [r.text for r in responses]
    db = stored(runtime, invoice["id"])
    assert (db.status, db.amount_paid, db.payments) == ("paid", 600_000, [100_000] * 6)
    assert (db.events["invoice.partially_paid"], db.events["invoice.paid"]) == (5, 1)
    # Each 1000.00 fitted until the invoice was paid, so the 4 losers found it paid.
    assert codes(responses) == {200: 6, 409: 4}, [r.text for r in responses]
    assert error_codes(responses) == {"invoice_not_payable": 4}


def test_concurrent_cancel_and_pay_have_one_consistent_winner(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    winners: Counter[str] = Counter()
    for _ in range(6):
        invoice = create_open(server, org)
        url = f"/v1/invoices/{invoice['id']}"
        cancel, pay = race(
            server,
            [(org.secret_key, post(f"{url}/cancel")), (org.secret_key, post(f"{url}/payments"))],
        )
        answers = (cancel.status_code, pay.status_code)
        assert sorted(answers) in ([200, 409], [200, 422]), (cancel.text, pay.text)
        db = stored(runtime, invoice["id"])
        if cancel.status_code == 200:
            winners["cancel"] += 1
            assert cancel.json()["status"] == "cancelled"
            assert (db.status, db.amount_paid, db.payments) == ("cancelled", 0, [])
            assert (db.events["invoice.cancelled"], db.events["invoice.paid"]) == (1, 0)
            # The payment lost because the invoice is cancelled: 409, and it says so.
            assert (pay.status_code, pay.json()["error"]["code"]) == (409, "invoice_not_payable")
        else:
            winners["pay"] += 1
            assert pay.json()["status"] == "paid"
            assert (db.status, db.amount_paid, db.payments) == ("paid", db.total, [db.total])
            assert (db.events["invoice.cancelled"], db.events["invoice.paid"]) == (0, 1)
            assert (cancel.status_code, cancel.json()["error"]["code"]) == (
                409,
                "invoice_not_cancellable",
            )
    assert sum(winners.values()) == 6


# ---------------------------------------------------------------- refunds


def _paid_invoice(server: LiveServer, org: OrgKeys) -> dict:
    invoice = create_open(server, org)
    with server.client(org.secret_key) as api:
        response = api.post(f"/v1/invoices/{invoice['id']}/payments")
        assert response.status_code == 200, response.text
    return invoice


def test_concurrent_partial_refunds_never_exceed_amount_paid(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    invoice = _paid_invoice(server, org)
    # 14 800.00 asked of 6000.00 paid
    amounts = ["1000.00"] * 4 + ["1500.00", "2500.00", "800.00", "1999.99", "0.01", "3000.00"]
    calls = [
        (org.secret_key, post(f"/v1/invoices/{invoice['id']}/refunds", {"amount": a}))
        for a in amounts
    ]
    responses = race(server, calls)
    assert set(codes(responses)) <= {200, 409, 422}, [r.text for r in responses]
    accepted = [
        int(a.replace(".", ""))
        for a, r in zip(amounts, responses, strict=True)
        if r.status_code == 200
    ]
    assert accepted

    db = stored(runtime, invoice["id"])
    assert db.payments == [db.amount_paid] == [600_000]
    assert db.amount_refunded <= db.amount_paid
    assert sorted(db.refunds) == sorted(accepted)
    assert sum(db.refunds) == db.amount_refunded
    assert db.status == (
        "refunded" if db.amount_refunded == db.amount_paid else "partially_refunded"
    )
    assert db.events["invoice.refunded"] == (1 if db.status == "refunded" else 0)
    assert db.events["invoice.partially_refunded"] + db.events["invoice.refunded"] == len(accepted)
    left = db.amount_paid - db.amount_refunded
    refused = [
        int(a.replace(".", ""))
        for a, r in zip(amounts, responses, strict=True)
        if r.status_code != 200
    ]
    assert all(amount > left for amount in refused)  # nothing refused would still have fitted
    assert set(error_codes(responses)) <= {"invoice_not_refundable", "amount_exceeds_refundable"}


def test_concurrent_full_refunds_refund_exactly_once(
    server: LiveServer, org: OrgKeys, runtime: Runtime
) -> None:
    invoice = _paid_invoice(server, org)
    responses = race(server, [(org.secret_key, post(f"/v1/invoices/{invoice['id']}/refunds"))] * 8)
    assert codes(responses)[200] == 1, [r.text for r in responses]
    assert set(codes(responses)) <= {200, 409, 422}, [r.text for r in responses]
    db = stored(runtime, invoice["id"])
    assert (db.status, db.amount_refunded, db.refunds) == ("refunded", 600_000, [600_000])
    assert db.events["invoice.refunded"] == 1
    # The losers were refused because everything is refunded; that is what they must be told.
    assert error_codes(responses) == {"invoice_not_refundable": 7}, [r.text for r in responses]
