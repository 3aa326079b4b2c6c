"""The reports API through real HTTP, with exact figures: invoices are made, paid, refunded
and cancelled through the API while invoicehub's clock is moved to the day each thing
happens, then every report is checked in full, as JSON and as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
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
from invoicehub.invoices import service as invoices
from invoicehub.kit import clock, ids
from invoicehub.models import Payment
from invoicehub.reports import service
from tests.conftest import LiveServer, OrgKeys, create_org


@pytest.fixture(scope="module")
def reports_server(server: LiveServer) -> LiveServer:
    """The app serves the reports under /v1/reports itself."""
    return server


@pytest.fixture
def api(reports_server: LiveServer, org: OrgKeys) -> Iterator[httpx.Client]:
    with reports_server.client(org.secret_key) as client:
        yield client


# Making history ------------------------------------------------------------------------------


def travel(moved_clock: list[float], day: str, hour: int = 12) -> None:
    """invoicehub's clock to ``day`` at ``hour``:00 UTC (noon by default, far from midnight)."""
    target = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=dt.UTC)
    moved_clock[0] = (target - dt.datetime.now(dt.UTC)).total_seconds()


def invoice(
    api: httpx.Client,
    amount: str,
    *,
    currency: str = "USD",
    email: str | None = "client@example.com",
    name: str | None = "Client",
    status: str = "open",
    issue_date: str | None = None,
    due_date: str | None = None,
) -> str:
    customer = {k: v for k, v in (("email", email), ("name", name)) if v is not None}
    body: dict[str, Any] = {
        "currency": currency,
        "line_items": [{"description": "Work", "quantity": 1, "unit_price": amount}],
        "status": status,
    }
    if customer:
        body["customer"] = customer
    if issue_date:
        body["issue_date"] = issue_date
    if due_date:
        body["due_date"] = due_date
    response = api.post("/v1/invoices", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pay(api: httpx.Client, invoice_id: str, amount: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"outcome": "succeeded"}
    if amount is not None:
        body["amount"] = amount
    response = api.post(f"/v1/invoices/{invoice_id}/simulate-payment", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def refund(api: httpx.Client, invoice_id: str, amount: str | None = None) -> None:
    body = {"amount": amount} if amount is not None else {}
    response = api.post(f"/v1/invoices/{invoice_id}/refunds", json=body)
    assert response.status_code == 200, response.text


def cancel(api: httpx.Client, invoice_id: str) -> None:
    response = api.post(f"/v1/invoices/{invoice_id}/cancel")
    assert response.status_code == 200, response.text


def report(api: httpx.Client, name: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/reports/{name}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def period(
    label: str,
    start: str,
    end: str,
    payments: str = "0.00",
    refunds: str = "0.00",
    collected: str = "0.00",
    invoices_paid: int = 0,
) -> dict[str, Any]:
    return {
        "period": label,
        "start": start,
        "end": end,
        "payments": payments,
        "refunds": refunds,
        "collected": collected,
        "invoices_paid": invoices_paid,
    }


def invalid(response: httpx.Response, param: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    return str(error["message"])


# Revenue -------------------------------------------------------------------------------------


def test_revenue_by_month_per_currency_refunds_reduce_and_empty_months_are_zero(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-01-15")
    paid_in_full = invoice(api, "6000.00")
    pay(api, paid_in_full)
    pay(api, invoice(api, "5000", currency="JPY"))
    paid_in_parts = invoice(api, "1000.00")
    pay(api, paid_in_parts, "250.00")
    draft_never_counts = invoice(api, "99.00", status="draft")
    cancel(api, draft_never_counts)

    travel(moved_clock, "2026-03-10")
    refund(api, paid_in_full, "100.00")
    pay(api, paid_in_parts)  # the last 750.00: paid in full in March

    # Another organization's money on the same days is never in this one's report.
    other = create_org(settings, name="Other Org")
    with httpx.Client(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {other.secret_key}"}
    ) as other_api:
        pay(other_api, invoice(other_api, "777.00"))

    body = report(api, "revenue", **{"from": "2026-01-01", "to": "2026-04-30"})
    assert body == {
        "object": "revenue_report",
        "from": "2026-01-01",
        "to": "2026-04-30",
        "interval": "month",
        "currencies": [
            {
                "currency": "JPY",
                "totals": {
                    "payments": "5000",
                    "refunds": "0",
                    "collected": "5000",
                    "invoices_paid": 1,
                },
                "periods": [
                    period("2026-01", "2026-01-01", "2026-01-31", "5000", "0", "5000", 1),
                    period("2026-02", "2026-02-01", "2026-02-28", "0", "0", "0"),
                    period("2026-03", "2026-03-01", "2026-03-31", "0", "0", "0"),
                    period("2026-04", "2026-04-01", "2026-04-30", "0", "0", "0"),
                ],
            },
            {
                "currency": "USD",
                "totals": {
                    "payments": "7000.00",
                    "refunds": "100.00",
                    "collected": "6900.00",
                    "invoices_paid": 2,
                },
                "periods": [
                    period("2026-01", "2026-01-01", "2026-01-31", "6250.00", "0.00", "6250.00", 1),
                    period("2026-02", "2026-02-01", "2026-02-28"),
                    period("2026-03", "2026-03-01", "2026-03-31", "750.00", "100.00", "650.00", 1),
                    period("2026-04", "2026-04-01", "2026-04-30"),
                ],
            },
        ],
    }

    # A range starting or ending inside a month counts only its own days, and says so.
    clipped = report(api, "revenue", **{"from": "2026-01-10", "to": "2026-03-09"})
    usd = next(c for c in clipped["currencies"] if c["currency"] == "USD")
    assert usd["periods"] == [
        period("2026-01", "2026-01-10", "2026-01-31", "6250.00", "0.00", "6250.00", 1),
        period("2026-02", "2026-02-01", "2026-02-28"),
        period("2026-03", "2026-03-01", "2026-03-09"),
    ]
    assert usd["totals"]["collected"] == "6250.00"

    # A range where nothing happened lists no currency (there is nothing to chart).
    assert report(api, "revenue", **{"from": "2026-01-16", "to": "2026-03-09"})["currencies"] == []

    # Defaults: month, the twelve months up to today's.
    default = report(api, "revenue")
    assert (default["from"], default["to"], default["interval"]) == (
        "2025-04-01",
        "2026-03-10",
        "month",
    )
    assert [p["period"] for p in default["currencies"][1]["periods"]][::11] == [
        "2025-04",
        "2026-03",
    ]


def test_revenue_by_iso_week_starts_on_monday_across_the_new_year(
    api: httpx.Client, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-12-27")  # a Sunday: the last day of ISO week 2026-W52
    sunday = invoice(api, "100.00")
    pay(api, sunday)
    travel(moved_clock, "2026-12-28")  # Monday of 2026-W53 (2026 has 53 ISO weeks)
    monday = invoice(api, "40.00")
    pay(api, monday)
    travel(moved_clock, "2027-01-03")  # Sunday: still 2026-W53
    refund(api, sunday, "30.00")
    travel(moved_clock, "2027-01-06")  # Wednesday of 2027-W01: a refund with no payment
    refund(api, monday)

    body = report(api, "revenue", **{"from": "2026-12-23", "to": "2027-01-06", "interval": "week"})
    assert body["interval"] == "week"
    assert body["currencies"] == [
        {
            "currency": "USD",
            "totals": {
                "payments": "140.00",
                "refunds": "70.00",
                "collected": "70.00",
                "invoices_paid": 2,
            },
            "periods": [
                period("2026-W52", "2026-12-23", "2026-12-27", "100.00", "0.00", "100.00", 1),
                period("2026-W53", "2026-12-28", "2027-01-03", "40.00", "30.00", "10.00", 1),
                period("2027-W01", "2027-01-04", "2027-01-06", "0.00", "40.00", "-40.00", 0),
            ],
        }
    ]


def test_revenue_by_day_lists_every_day_and_caps_the_range(
    api: httpx.Client, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-02-27")
    pay(api, invoice(api, "10.00"))
    travel(moved_clock, "2026-03-01")
    pay(api, invoice(api, "0.50"))

    body = report(api, "revenue", **{"from": "2026-02-26", "to": "2026-03-02", "interval": "day"})
    assert body["currencies"][0]["periods"] == [
        period("2026-02-26", "2026-02-26", "2026-02-26"),
        period("2026-02-27", "2026-02-27", "2026-02-27", "10.00", "0.00", "10.00", 1),
        period("2026-02-28", "2026-02-28", "2026-02-28"),
        period("2026-03-01", "2026-03-01", "2026-03-01", "0.50", "0.00", "0.50", 1),
        period("2026-03-02", "2026-03-02", "2026-03-02"),
    ]
    default = report(api, "revenue", interval="day")  # the last 30 days, today included
    assert (default["from"], default["to"]) == ("2026-01-31", "2026-03-01")
    assert len(default["currencies"][0]["periods"]) == 30

    def get(start: str, end: str, interval: str) -> httpx.Response:
        return api.get(
            "/v1/reports/revenue", params={"from": start, "to": end, "interval": interval}
        )

    assert get("2025-01-01", "2026-01-01", "day").status_code == 200  # 366 days
    message = invalid(get("2025-01-01", "2026-01-02", "day"), "to")
    assert "at most 366 days" in message
    assert "spans 367" in message
    assert get("2021-01-04", "2025-12-28", "week").status_code == 200  # 260 ISO weeks
    assert "at most 260 weeks" in invalid(get("2021-01-04", "2025-12-29", "week"), "to")
    assert get("2016-01-01", "2025-12-31", "month").status_code == 200  # 120 months
    assert "at most 120 months" in invalid(get("2016-01-01", "2026-01-01", "month"), "to")


def test_revenue_days_are_utc_days_whatever_the_database_session_time_zone(
    api: httpx.Client, runtime: Runtime, org: OrgKeys
) -> None:
    """Payments a moment either side of midnight UTC land on their own UTC day, even when the
    PostgreSQL session runs in Tokyo time (where both would be the same, later, day)."""
    invoice_id = invoice(api, "10.00")
    with runtime.database.session(write=True) as session:
        internal_id = invoices.get_invoice(session, org.internal_id, invoice_id).invoice.id
        for amount, at in (
            (100, dt.datetime(2026, 4, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)),
            (200, dt.datetime(2026, 4, 2, 0, 0, 0, tzinfo=dt.UTC)),
        ):
            session.add(
                Payment(
                    public_id=ids.new_public_id("pay"),
                    organization_id=org.internal_id,
                    invoice_id=internal_id,
                    kind="payment",
                    status="succeeded",
                    amount_minor=amount,
                    currency="USD",
                    provider="manual",
                    created_at=at,
                )
            )
        session.commit()
    with runtime.database.session(write=False) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        found = service.revenue_report(
            session,
            org.internal_id,
            date_from=dt.date(2026, 4, 1),
            date_to=dt.date(2026, 4, 2),
            interval="day",
        )
    assert [(p.period, p.payments) for p in found.currencies[0].periods] == [
        ("2026-04-01", "1.00"),
        ("2026-04-02", "2.00"),
    ]


# Aging ---------------------------------------------------------------------------------------


def test_aging_buckets_at_their_boundaries(
    api: httpx.Client, runtime: Runtime, org: OrgKeys, moved_clock: list[float]
) -> None:
    as_of = dt.date(2026, 6, 30)
    made: dict[int, str] = {}
    # Days past due on as_of -> amount: powers of two, so every sum names its invoices.
    for power, days in enumerate((-5, 0, 1, 30, 31, 60, 61, 90, 91, 400)):
        due = as_of - dt.timedelta(days=days)
        made[days] = invoice(
            api,
            f"{2**power}.00",
            issue_date=(due - dt.timedelta(days=10)).isoformat(),
            due_date=due.isoformat(),
        )
    pay(api, made[91], "56.00")  # partly paid: 256.00 - 56.00 = 200.00 still due
    # A payment in flight (processing) is still owed until it succeeds.
    with runtime.database.session(write=True) as session:
        invoices.start_payment_attempt(session, org.internal_id, made[31], provider="sandbox")
        session.commit()
    invoice(
        api,
        "100.00",
        currency="EUR",
        due_date=(as_of - dt.timedelta(days=10)).isoformat(),
        issue_date="2026-01-01",
    )
    # Not receivables: a draft, a paid invoice, a cancelled one.
    old = (as_of - dt.timedelta(days=200)).isoformat()
    invoice(api, "1000.00", status="draft", issue_date=old, due_date=old)
    pay(api, invoice(api, "1000.00", issue_date=old, due_date=old))
    cancel(api, invoice(api, "1000.00", issue_date=old, due_date=old))

    def bucket(
        name: str, low: int | None, high: int | None, amount: str, count: int
    ) -> dict[str, Any]:
        return {
            "bucket": name,
            "days_past_due_from": low,
            "days_past_due_to": high,
            "amount_due": amount,
            "invoice_count": count,
        }

    expected_usd = {
        "currency": "USD",
        "totals": {"amount_due": "967.00", "invoice_count": 10},
        "buckets": [
            bucket("current", None, 0, "3.00", 2),  # due in 5 days, due today
            bucket("1_30", 1, 30, "12.00", 2),
            bucket("31_60", 31, 60, "48.00", 2),
            bucket("61_90", 61, 90, "192.00", 2),
            bucket("over_90", 91, None, "712.00", 2),
        ],
    }
    expected_eur = {
        "currency": "EUR",
        "totals": {"amount_due": "100.00", "invoice_count": 1},
        "buckets": [
            bucket("current", None, 0, "0.00", 0),
            bucket("1_30", 1, 30, "100.00", 1),
            bucket("31_60", 31, 60, "0.00", 0),
            bucket("61_90", 61, 90, "0.00", 0),
            bucket("over_90", 91, None, "0.00", 0),
        ],
    }
    body = report(api, "aging", as_of="2026-06-30")
    assert body == {
        "object": "aging_report",
        "as_of": "2026-06-30",
        "currencies": [expected_eur, expected_usd],
    }

    # One day later every boundary invoice moves up a bucket.
    later = report(api, "aging", as_of="2026-07-01")["currencies"][1]["buckets"]
    assert [(b["bucket"], b["amount_due"], b["invoice_count"]) for b in later] == [
        ("current", "1.00", 1),
        ("1_30", "6.00", 2),  # 1 and 31 days (were 0 and 30)
        ("31_60", "24.00", 2),  # 32 and 61 (were 31 and 60)
        ("61_90", "96.00", 2),
        ("over_90", "840.00", 3),
    ]

    # Without as_of: today, by invoicehub's clock.
    travel(moved_clock, "2026-06-30")
    assert report(api, "aging") == body


# Days to pay and collection rate -------------------------------------------------------------


def test_days_to_pay_average_median_and_collection_rate(
    api: httpx.Client, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-03-01")
    usd = {
        "before_range": invoice(api, "10.00", issue_date="2026-02-20"),  # paid 03-02: 10 days
        "two_days": invoice(api, "10.00", issue_date="2026-03-01"),  # paid 03-03
        "fifteen_days": invoice(api, "10.00", issue_date="2026-03-05"),  # paid 03-20
        "refunded": invoice(api, "10.00", issue_date="2026-03-18"),  # paid 03-20, refunded
        "post_dated": invoice(api, "10.00", issue_date="2026-03-25"),  # paid 03-20: 0 days
        "still_open": invoice(api, "10.00", issue_date="2026-03-10"),
        "paid_after_range": invoice(api, "10.00", issue_date="2026-03-12"),  # paid 04-05
        "cancelled_open": invoice(api, "10.00", issue_date="2026-03-15"),
        "part_paid": invoice(api, "10.00", issue_date="2026-03-02"),
        "cancelled_draft": invoice(api, "10.00", issue_date="2026-03-16", status="draft"),
        "draft": invoice(api, "10.00", issue_date="2026-03-17", status="draft"),
    }
    cancel(api, usd["cancelled_open"])
    cancel(api, usd["cancelled_draft"])
    pay(api, usd["part_paid"], "5.00")
    eur = [invoice(api, "20.00", currency="EUR", issue_date="2026-03-01") for _ in range(4)]
    jpy = [invoice(api, "300", currency="JPY", issue_date="2026-03-01") for _ in range(6)]

    travel(moved_clock, "2026-03-02")
    pay(api, usd["before_range"])
    pay(api, eur[0])  # 1 day
    travel(moved_clock, "2026-03-03")
    pay(api, usd["two_days"])
    pay(api, eur[1])  # 2 days
    travel(moved_clock, "2026-03-04")
    for unpaid_last in jpy[:5]:  # 3 days each; the sixth stays open
        pay(api, unpaid_last)
    travel(moved_clock, "2026-03-05")
    pay(api, eur[2])  # 4 days
    travel(moved_clock, "2026-03-11")
    pay(api, eur[3])  # 10 days
    travel(moved_clock, "2026-03-20")
    for key in ("fifteen_days", "refunded", "post_dated"):
        pay(api, usd[key])
    travel(moved_clock, "2026-03-21")
    refund(api, usd["refunded"])
    travel(moved_clock, "2026-04-05")
    pay(api, usd["paid_after_range"])

    body = report(api, "days-to-pay", **{"from": "2026-03-01", "to": "2026-03-31"})
    assert body == {
        "object": "days_to_pay_report",
        "from": "2026-03-01",
        "to": "2026-03-31",
        "measured_from": "issue_date",
        # Days [0,1,2,2,2,3,3,3,3,3,4,10,10,15]: mean 61/14 = 4.357, median (3+3)/2.
        # Issued 8 USD + 4 EUR + 6 JPY = 18, of which 5 + 4 + 5 = 14 are paid in full.
        "overall": {
            "paid_count": 14,
            "average_days_to_pay": "4.4",
            "median_days_to_pay": "3.0",
            "issued_count": 18,
            "issued_paid_count": 14,
            "collection_rate": "0.7778",
        },
        "currencies": [
            {
                # Days [1,2,4,10]: mean 4.25 rounds half-up to 4.3; median (2+4)/2 = 3.
                "currency": "EUR",
                "paid_count": 4,
                "average_days_to_pay": "4.3",
                "median_days_to_pay": "3.0",
                "issued_count": 4,
                "issued_paid_count": 4,
                "collection_rate": "1.0000",
            },
            {
                "currency": "JPY",
                "paid_count": 5,
                "average_days_to_pay": "3.0",
                "median_days_to_pay": "3.0",
                "issued_count": 6,
                "issued_paid_count": 5,
                "collection_rate": "0.8333",
            },
            {
                # Days [0,2,2,10,15] (odd: the middle one); issued 8 (no drafts), 5 paid in
                # full so far, the refunded one and the one paid after the range included.
                "currency": "USD",
                "paid_count": 5,
                "average_days_to_pay": "5.8",
                "median_days_to_pay": "2.0",
                "issued_count": 8,
                "issued_paid_count": 5,
                "collection_rate": "0.6250",
            },
        ],
    }

    # A range with nothing in it: counts are zero, figures null.
    empty = report(api, "days-to-pay", **{"from": "2025-01-01", "to": "2025-01-31"})
    assert empty["currencies"] == []
    assert empty["overall"] == {
        "paid_count": 0,
        "average_days_to_pay": None,
        "median_days_to_pay": None,
        "issued_count": 0,
        "issued_paid_count": 0,
        "collection_rate": None,
    }
    # Default range: the 30 days up to today.
    default = report(api, "days-to-pay")
    assert (default["from"], default["to"]) == ("2026-03-07", "2026-04-05")


# Top customers -------------------------------------------------------------------------------


def test_top_customers_per_currency_by_net_amount_paid(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-04-20")
    bob_earlier = invoice(api, "1000.00", email="bob@example.com", name="Bob")
    pay(api, bob_earlier)  # before the range
    dave = invoice(api, "500.00", email="dave@example.com", name="Dave")
    pay(api, dave)

    travel(moved_clock, "2026-05-03")
    alice_1 = invoice(api, "300.00", email="alice@example.com", name="Alice")
    alice_2 = invoice(api, "200.00", email="Alice@Example.COM", name="Alice")
    invoice(api, "75.00", email="alice@example.com", name="Alice")  # owed
    pay(api, alice_1)
    pay(api, alice_2)
    bob_now = invoice(api, "500.00", email="bob@example.com", name="Bob")
    pay(api, bob_now, "250.00")  # 250.00 still owed
    carol = invoice(api, "300.00", email=None, name="Carol")
    pay(api, carol)
    invoice(api, "40.00", email=None, name="Carol", status="draft")  # a draft is not owed
    unnamed = invoice(api, "5.00", email=None, name=None)
    pay(api, unnamed)
    alice_eur = invoice(api, "99.00", currency="EUR", email="alice@example.com", name="Alice")
    pay(api, alice_eur)
    invoice(api, "20.00", currency="EUR", email="alice@example.com", name="Alice")
    eve = invoice(api, "10.00", email="eve@example.com", name="Eve")
    eve_late = invoice(api, "1000.00", email="eve@example.com", name="Eve")

    travel(moved_clock, "2026-05-10")
    refund(api, alice_1, "50.00")
    refund(api, dave)  # paid in April, refunded in May: a net loss, not a top customer

    travel(moved_clock, "2026-05-31", hour=23)
    pay(api, eve)  # the last day of the range counts
    travel(moved_clock, "2026-06-01")
    pay(api, eve_late)  # the day after does not

    other = create_org(settings, name="Other Org")
    with httpx.Client(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {other.secret_key}"}
    ) as other_api:
        travel(moved_clock, "2026-05-15")
        pay(other_api, invoice(other_api, "9999.00", email="alice@example.com"))

    def customer(
        rank: int,
        email: str | None,
        name: str | None,
        paid: str,
        invoices_paid: int,
        outstanding: str,
        open_invoices: int,
    ) -> dict[str, Any]:
        return {
            "rank": rank,
            "email": email,
            "name": name,
            "amount_paid": paid,
            "invoices_paid": invoices_paid,
            "outstanding": outstanding,
            "open_invoices": open_invoices,
        }

    body = report(api, "customers", **{"from": "2026-05-01", "to": "2026-05-31"})
    assert body == {
        "object": "customers_report",
        "from": "2026-05-01",
        "to": "2026-05-31",
        "limit": 10,
        "currencies": [
            {
                "currency": "EUR",
                "customers": [customer(1, "alice@example.com", "Alice", "99.00", 1, "20.00", 1)],
            },
            {
                "currency": "USD",
                "customers": [
                    # 300 + 200 - 50; one email in two spellings is one customer.
                    customer(1, "alice@example.com", "Alice", "450.00", 2, "75.00", 1),
                    customer(2, None, "Carol", "300.00", 1, "0.00", 0),
                    customer(3, "bob@example.com", "Bob", "250.00", 1, "250.00", 1),
                    customer(4, "eve@example.com", "Eve", "10.00", 1, "0.00", 0),
                    customer(5, None, None, "5.00", 1, "0.00", 0),
                ],
            },
        ],
    }

    top_two = report(api, "customers", **{"from": "2026-05-01", "to": "2026-05-31", "limit": 2})
    assert [[c["rank"] for c in entry["customers"]] for entry in top_two["currencies"]] == [
        [1],
        [1, 2],
    ]
    # Eve's June payment makes her the top payer of June.
    june = report(api, "customers", **{"from": "2026-06-01", "to": "2026-06-30"})
    assert june["currencies"] == [
        {
            "currency": "USD",
            "customers": [customer(1, "eve@example.com", "Eve", "1000.00", 1, "0.00", 0)],
        }
    ]


# CSV -----------------------------------------------------------------------------------------


def csv_of(response: httpx.Response, filename: str) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def test_every_report_as_csv_matches_its_json(api: httpx.Client, moved_clock: list[float]) -> None:
    travel(moved_clock, "2026-08-03")
    first = invoice(api, "120.50", email="aigerim@example.com", name="Айгерим Бекова, ТОО")
    pay(api, first)
    second = invoice(api, "80.00", currency="EUR", email=None, name='=HYPERLINK("http://x")')
    pay(api, second, "30.00")
    invoice(api, "15.00", due_date="2026-08-03", issue_date="2026-07-01")
    travel(moved_clock, "2026-08-12")
    refund(api, first, "0.50")
    window = {"from": "2026-08-01", "to": "2026-08-31"}

    revenue = report(api, "revenue", **window, interval="week")
    rows = csv_of(
        api.get("/v1/reports/revenue", params={**window, "interval": "week", "format": "csv"}),
        "revenue_2026-08-01_2026-08-31_week.csv",
    )
    assert list(rows[0]) == [
        "currency",
        "period",
        "start",
        "end",
        "payments",
        "refunds",
        "collected",
        "invoices_paid",
    ]
    assert rows == [
        {"currency": entry["currency"], **{key: cell(value) for key, value in p.items()}}
        for entry in revenue["currencies"]
        for p in entry["periods"]
    ]
    assert len(rows) == 2 * 6  # two currencies x six ISO weeks touching August 2026

    aging = report(api, "aging", as_of="2026-08-12")
    rows = csv_of(
        api.get(
            "/v1/reports/aging", params={"as_of": "2026-08-12"}, headers={"Accept": "text/csv"}
        ),
        "aging_2026-08-12.csv",
    )
    assert rows == [
        {"currency": entry["currency"], **{key: cell(value) for key, value in b.items()}}
        for entry in aging["currencies"]
        for b in entry["buckets"]
    ]
    assert rows[6]["amount_due"] == "15.00"  # USD 1_30: 9 days past due

    speed = report(api, "days-to-pay", **window)
    rows = csv_of(
        api.get("/v1/reports/days-to-pay", params={**window, "format": "csv"}),
        "days-to-pay_2026-08-01_2026-08-31.csv",
    )
    expected = [
        {"scope": "overall", "currency": "", **{k: cell(v) for k, v in speed["overall"].items()}}
    ]
    expected += [
        {"scope": "currency", **{k: cell(v) for k, v in entry.items()}}
        for entry in speed["currencies"]
    ]
    assert rows == expected

    customers = report(api, "customers", **window)
    rows = csv_of(
        api.get("/v1/reports/customers", params={**window, "format": "csv"}),
        "customers_2026-08-01_2026-08-31.csv",
    )
    assert rows == [
        {
            "currency": "EUR",
            "rank": "1",
            "email": "",
            "name": '\'=HYPERLINK("http://x")',
            "amount_paid": "30.00",
            "invoices_paid": "1",
            "outstanding": "50.00",
            "open_invoices": "1",
        },
        {
            "currency": "USD",
            "rank": "1",
            "email": "aigerim@example.com",
            "name": "Айгерим Бекова, ТОО",
            "amount_paid": "120.00",
            "invoices_paid": "1",
            "outstanding": "0.00",
            "open_invoices": "0",
        },
    ]
    # The JSON keeps the name as typed; only the spreadsheet cell is defused.
    assert customers["currencies"][0]["customers"][0]["name"] == '=HYPERLINK("http://x")'


def test_format_and_accept_choose_the_representation(api: httpx.Client) -> None:
    def kind(headers: dict[str, str] | None = None, **params: str) -> str:
        response = api.get("/v1/reports/aging", params=params, headers=headers or {})
        assert response.status_code == 200, response.text
        assert response.headers["vary"] == "Accept"
        return response.headers["content-type"].split(";")[0]

    assert kind() == "application/json"
    assert kind({"Accept": "text/csv"}) == "text/csv"
    assert kind({"Accept": "text/csv;q=0.5, application/json"}) == "application/json"
    assert kind({"Accept": "application/json;q=0.1, text/csv"}) == "text/csv"
    assert kind({"Accept": "*/*"}) == "application/json"
    assert kind({"Accept": "text/csv"}, format="json") == "application/json"
    assert kind(format="csv") == "text/csv"
    # An empty report is still a header row.
    assert api.get("/v1/reports/aging", params={"format": "csv"}).text == (
        "currency,bucket,days_past_due_from,days_past_due_to,amount_due,invoice_count\r\n"
    )


# Refusals ------------------------------------------------------------------------------------


def test_bad_parameters_are_422_naming_the_parameter(
    api: httpx.Client, moved_clock: list[float]
) -> None:
    travel(moved_clock, "2026-05-15")

    def get(path: str, **params: Any) -> httpx.Response:
        return api.get(f"/v1/reports/{path}", params=params)

    for path in ("revenue", "days-to-pay", "customers"):
        assert "YYYY-MM-DD" in invalid(get(path, **{"from": "2026-02-30"}), "from")
        invalid(get(path, **{"from": "2026-2-3"}), "from")
        invalid(get(path, **{"from": "20260203"}), "from")
        invalid(get(path, to="yesterday"), "to")
        assert "must not be before" in invalid(
            get(path, **{"from": "2026-03-02", "to": "2026-03-01"}), "to"
        )
        invalid(get(path, **{"from": "2026-06-01"}), "from")  # after today, with no to
        invalid(get(path, **{"from": "1899-12-31"}), "from")
        invalid(get(path, to="3000-01-01"), "to")
        invalid(get(path, format="xlsx"), "format")
    assert "day, week or month" in invalid(get("revenue", interval="year"), "interval")
    invalid(get("aging", as_of="2026-13-01"), "as_of")
    invalid(get("aging", as_of="9999-12-31"), "as_of")
    invalid(get("customers", limit=0), "limit")
    invalid(get("customers", limit=101), "limit")
    invalid(get("customers", limit="ten"), "limit")
    # The boundaries themselves are fine.
    assert get("revenue", **{"from": "2026-05-15", "to": "2026-05-15"}).status_code == 200
    assert get("customers", limit=100).status_code == 200


def test_reports_need_an_api_key(reports_server: LiveServer) -> None:
    with reports_server.client() as anonymous:
        for path in ("revenue", "aging", "days-to-pay", "customers"):
            response = anonymous.get(f"/v1/reports/{path}")
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "authentication_error"


def test_service_refuses_a_limit_out_of_range(runtime: Runtime, org: OrgKeys) -> None:
    with runtime.database.session(write=False) as session:
        with pytest.raises(Exception, match="limit must be between 1 and 100"):
            service.customers_report(session, org.internal_id, limit=0)
        assert clock.today() == service.aging_report(session, org.internal_id).as_of


def test_generated_requests_never_get_a_server_error(
    reports_server: LiveServer, org: OrgKeys
) -> None:
    """schemathesis over the reports' own operations: any query gets an answer below 500,
    and every error is the usual envelope."""
    schema = schemathesis.openapi.from_url(f"{reports_server.base_url}/openapi.json")
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/v1/reports")
    ]
    assert len(operations) == 4
    headers = {"Authorization": f"Bearer {org.secret_key}"}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=40,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=reports_server.base_url, headers=headers)
            assert response.status_code < 500, (
                f"{case.formatted_path} {case.query} -> {response.status_code}: {response.text[:300]}"
            )
            if response.status_code >= 400:
                assert set(response.json()["error"]) >= {"type", "code", "message", "param"}

        check()
