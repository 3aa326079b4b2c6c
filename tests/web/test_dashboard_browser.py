"""The merchant dashboard in a real browser: Debian's Chromium driven by Playwright, headless.

A person logs in through the form, writes an invoice with the live totals, sends it, a
customer pays it on the pay page, the person refunds part of it; webhooks are registered and
their deliveries watched; the pages fit a phone; the header's RU button turns the pages
Russian. Every request goes through the pay page tests' guard (nothing may leave 127.0.0.1)
and every console error or warning (a CSP violation is one) fails the test.

Expected texts are written out by hand, except the tricky rounding line's, which is computed
with invoicehub.kit.money: the server's own rounding, which the page's BigInt code copies.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect, sync_playwright

from invoicehub.config import Settings
from invoicehub.kit.money import currency, from_minor, line_amount_minor, line_tax_minor
from tests.conftest import LiveServer, fresh_database, make_settings
from tests.web.dashboard_support import Person, new_person
from tests.web.test_pay_page import NBSP, invoice_of, open_invoice_link
from tests.web.test_pay_page_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    SCREENSHOTS,
    Customer,
    fill_card,
    no_horizontal_scroll,
    screenshot,
)
from tests.webhooks.receiver import Receiver

MERCHANT = "Northwind Studio"
USD = currency("USD")
# The tricky line: 1.005 x $1.00 is 100.5 cents, which rounds half-up to 101 (a float gives
# 100.49999... and 100; banker's rounding gives 100); its tax at 7.5 % is 7.575 cents -> 8.
TRICKY = {
    "description": "Rounding check",
    "quantity": "1.005",
    "unit_price": "1",
    "tax_rate": "7.5",
}


def usd(minor: int) -> str:
    """en-US money, the way the dashboard writes dollars: $5,501.01."""
    return f"${from_minor(minor, USD):,}"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def customer(browser: Browser, server: LiveServer) -> Iterator[Customer]:
    """The person at the dashboard (and, in a context of their own, their customer)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    who = Customer(browser, server)
    try:
        yield who
    finally:
        who.close()


@pytest.fixture
def person(settings: Settings) -> Person:
    return new_person(settings, MERCHANT)


# The webhook test needs the worker inside serve, which claims every due delivery of its
# database: a database and a server of its own, so nothing from other modules is sent.
@pytest.fixture(scope="module")
def worker_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database(str(tmp_path_factory.mktemp("dashboard-webhooks-db"))) as url:
        yield make_settings(url, run_worker_in_serve=True, worker_poll_seconds=0.1)


@pytest.fixture(scope="module")
def worker_server(worker_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(worker_settings) as live:
        yield live


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as listening:
        yield listening


# ------------------------------------------------------------------ helpers


def log_in(customer: Customer, person: Person, **context_options: Any) -> Page:
    """Opens the login page and logs in as a person would: types, clicks the button (found
    by id and type, so that it works whatever the browser's language)."""
    page = customer.open("/dashboard/login", **context_options)
    page.locator("#email").press_sequentially(person.email)
    page.locator("#password").press_sequentially(person.password)
    page.locator("form button[type=submit]").click()
    expect(page).to_have_url(f"{customer.server.base_url}/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text(MERCHANT)
    return page


def line(page: Page, index: int) -> Locator:
    return page.locator("#lines tr.line").nth(index)


def fill_line(page: Page, index: int, description: str, qty: str, price: str, tax: str) -> None:
    row = line(page, index)
    row.locator("[name=line_description]").fill(description)
    row.locator("[name=line_quantity]").fill(qty)
    row.locator("[name=line_unit_price]").fill(price)
    row.locator("[name=line_tax_rate]").fill(tax)


def expect_live_totals(page: Page, subtotal: str, tax: str, total: str) -> None:
    expect(page.locator("#total-subtotal")).to_have_text(subtotal)
    expect(page.locator("#total-tax")).to_have_text(tax)
    expect(page.locator("#total-total")).to_have_text(total)
    expect(page.locator("#totals-problem")).to_be_hidden()


def status_of(page: Page) -> Locator:
    return page.locator("h1 .badge[data-status]")


def accept_dialog(expected_message: str, seen: list[str]) -> Any:
    def accept(dialog: Dialog) -> None:
        seen.append(dialog.message)
        assert dialog.message == expected_message
        dialog.accept()

    return accept


def api_client(server: LiveServer, person: Person) -> httpx.Client:
    return server.client(person.org.secret_key)


def pay_invoice_by_api(api: httpx.Client) -> dict[str, Any]:
    """The 004 example, open, then paid in full (a payment recorded by the merchant)."""
    created = api.post(
        "/v1/invoices",
        json={
            "currency": "USD",
            "status": "open",
            "customer": {"name": "John Smith", "email": "client@example.com"},
            "line_items": [
                {"description": "Website Development", "unit_price": "5000", "tax_rate": 10},
                {"description": "Hosting Setup", "unit_price": "500"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    invoice = created.json()
    paid = api.post(f"/v1/invoices/{invoice['id']}/payments")
    assert paid.status_code in (200, 201), paid.text
    assert invoice_of(api, invoice["id"])["status"] == "paid"
    return invoice


# ------------------------------------------------------------------ 1. the whole flow


def test_invoice_from_the_form_to_paid_and_partly_refunded(
    customer: Customer, person: Person
) -> None:
    base = customer.server.base_url
    page = customer.open("/dashboard")
    # Not logged in: the login page, which will bring the person back.
    expect(page).to_have_url(re.compile(r"/dashboard/login"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.get_by_label("Email").press_sequentially(person.email)
    page.get_by_label("Password").press_sequentially(person.password)
    screenshot(page, "dashboard-login.png")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text(MERCHANT)
    expect(page.get_by_text("No invoices yet. Create the first one.")).to_be_visible()

    # ---- the form, with its totals computed in the page as the person types
    page.get_by_role("link", name="New invoice").click()
    expect(page).to_have_url(f"{base}/dashboard/invoices/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("New invoice")
    page.get_by_label("Name", exact=True).fill("John Smith")
    page.get_by_label("Email", exact=True).fill("client@example.com")
    page.get_by_label("Currency").select_option("USD")
    expect(page.locator("#lines tr.line")).to_have_count(1)
    fill_line(page, 0, "Website Development", "1", "5000", "10")
    expect(line(page, 0).locator("[data-line-amount]")).to_have_text("$5,000.00")
    expect_live_totals(page, "$5,000.00", "$500.00", "$5,500.00")

    page.get_by_role("button", name="Add a line").click()
    expect(page.locator("#lines tr.line")).to_have_count(2)
    # a new line starts empty, with quantity 1 and no tax, and takes the focus
    expect(line(page, 1).locator("[name=line_description]")).to_be_focused()
    expect(line(page, 1).locator("[name=line_quantity]")).to_have_value("1")
    expect(line(page, 1).locator("[name=line_tax_rate]")).to_have_value("0")
    fill_line(page, 1, "Hosting Setup", "1", "500", "0")
    expect_live_totals(page, "$5,500.00", "$500.00", "$6,000.00")

    # a third line counts at once; removed again, the totals are back where they were
    page.get_by_role("button", name="Add a line").click()
    fill_line(page, 2, "Support", "2", "100", "20")
    expect(line(page, 2).locator("[data-line-amount]")).to_have_text("$200.00")
    expect_live_totals(page, "$5,700.00", "$540.00", "$6,240.00")
    line(page, 2).get_by_role("button", name="Remove").click()
    expect(page.locator("#lines tr.line")).to_have_count(2)
    expect_live_totals(page, "$5,500.00", "$500.00", "$6,000.00")

    # a number the currency cannot hold is flagged, not silently rounded
    line(page, 1).locator("[name=line_unit_price]").fill("500.001")
    expect(page.locator("#total-total")).to_have_text("?")
    expect(page.locator("#totals-problem")).to_be_visible()
    line(page, 1).locator("[name=line_unit_price]").fill("500")
    expect_live_totals(page, "$5,500.00", "$500.00", "$6,000.00")

    # the tricky line, rounded as the server rounds
    amount = line_amount_minor(Decimal(TRICKY["quantity"]), 100)
    tax = line_tax_minor(amount, Decimal(TRICKY["tax_rate"]))
    assert (amount, tax) == (101, 8)
    subtotal_minor, tax_minor = 550_000 + amount, 50_000 + tax
    expected = (usd(subtotal_minor), usd(tax_minor), usd(subtotal_minor + tax_minor))
    assert expected == ("$5,501.01", "$500.08", "$6,001.09")
    page.get_by_role("button", name="Add a line").click()
    fill_line(page, 2, *TRICKY.values())
    expect(line(page, 2).locator("[data-line-amount]")).to_have_text(usd(amount))
    expect_live_totals(page, *expected)
    typed = tuple(
        page.locator(f"#total-{name}").inner_text() for name in ("subtotal", "tax", "total")
    )
    screenshot(page, "dashboard-new-invoice.png")

    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(
        re.compile(rf"^{re.escape(base)}/dashboard/invoices/inv_\w+\?done=created$")
    )
    expect(page.get_by_role("status")).to_have_text("Invoice created.")
    expect(status_of(page)).to_have_attribute("data-status", "draft")
    invoice_url = page.url.split("?")[0]
    # what the server stored is to the cent what the page showed while typing
    for name, shown in zip(("subtotal", "tax", "total"), typed, strict=True):
        expect(page.locator(f'[data-total="{name}"]')).to_have_text(shown)
    expect(page.locator('[data-total="due"]')).to_have_text(typed[2])
    expect(page.get_by_role("cell", name="Website Development")).to_be_visible()
    expect(page.get_by_role("cell", name="Rounding check")).to_be_visible()
    expect(page.locator("table.lines tbody tr")).to_have_count(3)

    # ---- finalize, then a payment link
    page.get_by_role("button", name="Finalize and send").click()
    expect(page.get_by_role("status")).to_have_text("Invoice finalized.")
    expect(status_of(page)).to_have_attribute("data-status", "open")
    expect(page.get_by_role("button", name="Finalize and send")).to_have_count(0)
    page.get_by_role("button", name="Create payment link").click()
    expect(page.get_by_role("status")).to_have_text("Payment link created.")
    link = page.locator("#pay-link").input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/pay/[\w-]+", link), link
    expect(page.locator("#open-pay-link")).to_have_attribute("href", link)
    expect(page.locator("figure.qr svg")).to_be_visible()
    copy = page.locator('[data-copy="pay-link"]')
    expect(copy).to_have_text("Copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    expect(page.get_by_role("button", name="Create payment link")).to_have_count(0)
    screenshot(page, "dashboard-invoice-open.png")

    # ---- the customer pays on the pay page (the link's path, on this test server)
    pay_page = customer.open(urlsplit(link).path)
    expect(pay_page.get_by_test_id("amount-due")).to_have_text(typed[2])
    fill_card(pay_page, "4242 4242 4242 4242")
    pay_page.get_by_role("button", name=f"Pay {typed[2]}").click()
    expect(pay_page.get_by_test_id("status")).to_have_text("Paid")

    page.goto(invoice_url)
    expect(status_of(page)).to_have_attribute("data-status", "paid")
    expect(status_of(page)).to_have_text("Paid")
    expect(page.locator('[data-total="paid"]')).to_have_text(typed[2])
    expect(page.locator('[data-total="due"]')).to_have_text("$0.00")
    timeline = page.locator("ol.timeline li[data-event]")
    # created, finalized, viewed (the customer opened the link), the card payment under
    # way, paid: each with the time and a label in words
    expect(timeline).to_have_count(5)
    assert [li.get_attribute("data-event") for li in timeline.all()] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.viewed",
        "invoice.processing",
        "invoice.paid",
    ]
    expect(timeline.locator("strong")).to_have_text(
        ["Created", "Finalized", "Viewed by the customer", re.compile(r".+"), "Paid"]
    )
    # No entry may show the bare event type instead of words (checked at the very end, so
    # the rest of the flow still runs when it fails).
    bare_types = [
        label
        for label in timeline.locator("strong").all_inner_texts()
        if re.fullmatch(r"[a-z_]+\.[a-z_.]+", label)
    ]
    payments = page.locator("section.card", has=page.get_by_role("heading", name="Payments"))
    expect(payments.locator("tbody tr")).to_have_count(1)
    expect(payments.locator("tbody tr")).to_contain_text(typed[2])
    screenshot(page, "dashboard-invoice-paid.png")

    # ---- the overview: nothing owed, the payment in this month and on the weekly chart
    page.get_by_role("link", name="Overview").click()
    expect(page).to_have_url(f"{base}/dashboard")
    usd_card = page.locator('section[data-currency="USD"]')
    expect(usd_card.locator('[data-figure="paid_this_month"]')).to_have_text(typed[2])
    expect(usd_card.locator('[data-figure="outstanding"]')).to_have_text("$0.00")
    expect(usd_card.locator('[data-figure="overdue"]')).to_have_text("$0.00")
    bars = usd_card.locator("svg.chart rect.bar")
    expect(bars).to_have_count(13)
    # this week's bar is the last one: full height, its tooltip the amount paid
    expect(bars.last.locator("title")).to_have_text(re.compile(rf": {re.escape(typed[2])}$"))
    assert float(bars.last.get_attribute("height") or 0) > 100
    assert all(float(bar.get_attribute("height") or 0) == 0 for bar in bars.all()[:-1])
    screenshot(page, "dashboard-overview.png")

    # ---- refund part of it through the Refund form (it asks for confirmation first)
    page.goto(invoice_url)
    page.get_by_label("Amount to refund (empty: everything paid)").fill("1000")
    page.get_by_label("Reason").fill("Hosting not needed")
    refund = page.get_by_role("button", name="Refund", exact=True)
    # dismissing the question leaves the invoice alone
    dismissed: list[str] = []
    page.once("dialog", lambda dialog: (dismissed.append(dialog.message), dialog.dismiss()))
    refund.click()
    expect(status_of(page)).to_have_attribute("data-status", "paid")
    assert dismissed == ["Refund this invoice?"]
    assert page.url == invoice_url
    expect(page.locator('[data-total="refunded"]')).to_have_count(0)
    seen: list[str] = []
    page.once("dialog", accept_dialog("Refund this invoice?", seen))
    refund.click()
    expect(page.get_by_role("status")).to_have_text("Refund made.")
    assert seen == ["Refund this invoice?"]
    expect(status_of(page)).to_have_attribute("data-status", "partially_refunded")
    expect(page.locator('[data-total="refunded"]')).to_have_text("$1,000.00")
    expect(page.locator('li[data-event="invoice.partially_refunded"] strong')).to_have_text(
        "Partly refunded"
    )
    expect(status_of(page)).to_have_text("Paid, partly refunded")
    expect(payments.locator("tbody tr")).to_have_count(2)

    # ---- the list and the reports
    page.get_by_role("link", name="Invoices", exact=True).click()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator('[data-label="Customer"]')).to_have_text("John Smith")
    expect(rows.first.locator('[data-label="Total"]')).to_have_text(typed[2])
    expect(rows.first.locator('[data-label="Amount due"]')).to_have_text("$0.00")
    expect(rows.first.locator(".badge")).to_have_text("Paid, partly refunded")
    screenshot(page, "dashboard-invoices.png")

    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    # collected is what was paid less what was refunded: 6,001.09 - 1,000.00
    expect(page.locator('[data-figure="collected-USD"]')).to_have_text("$5,001.09")
    expect(page.locator('[data-figure="collection-rate"]')).not_to_have_text("—")
    expect(page.locator("#customers tbody tr")).to_contain_text("John Smith")
    screenshot(page, "dashboard-reports.png")
    customer.assert_clean()
    assert bare_types == [], "timeline entries labelled with the bare event type"


# ------------------------------------------------------------------ 2. webhooks


def test_webhook_endpoint_gets_the_invoice_events_and_a_test_event(
    browser: Browser,
    worker_settings: Settings,
    worker_server: LiveServer,
    receiver: Receiver,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    person = new_person(worker_settings, MERCHANT)
    customer = Customer(browser, worker_server)
    try:
        _webhooks(customer, person, receiver)
    finally:
        customer.close()


def wait_for_row(page: Page, row: Locator, *, within: float = 30) -> None:
    """Clicks the page's Refresh link until ``row`` is there (the log is not live)."""
    deadline = time.monotonic() + within
    while row.count() == 0:
        assert time.monotonic() < deadline, f"no {row} within {within} s"
        page.wait_for_timeout(200)  # pacing the reloads, not an assertion
        page.get_by_role("link", name="Refresh").click()
        page.wait_for_load_state()
    expect(row).to_be_visible()


def _webhooks(customer: Customer, person: Person, receiver: Receiver) -> None:
    base = customer.server.base_url
    page = log_in(customer, person)
    page.get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(f"{base}/dashboard/webhooks")
    expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()
    page.get_by_label("URL", exact=True).fill(receiver.url)
    page.get_by_label("Description").fill("Order system")
    for event in ("invoice.created", "invoice.finalized", "invoice.paid"):
        page.get_by_label(event, exact=True).check()
    page.get_by_role("button", name="Add endpoint").click()

    expect(page.get_by_role("heading", name="Endpoint added")).to_be_visible()
    secret = page.locator("#new-secret").input_value()
    assert re.fullmatch(r"whsec_\S{20,}", secret), secret
    expect(page.get_by_text("Copy the secret now: it is shown only once.")).to_be_visible()
    endpoints = page.locator("table.list tbody tr")
    expect(endpoints).to_have_count(1)
    expect(endpoints.first).to_contain_text(receiver.url)
    expect(endpoints.first).to_contain_text("invoice.created, invoice.finalized, invoice.paid")
    screenshot(page, "dashboard-webhooks.png")
    endpoint_link = page.get_by_role("link", name="See the endpoint and its deliveries")
    endpoint_path = urlsplit(endpoint_link.get_attribute("href") or "").path
    assert re.fullmatch(r"/dashboard/webhooks/we_\w+", endpoint_path), endpoint_path

    # the list opened again (a fresh GET; what a reload does is the next test's subject):
    # the secret is gone for good, and the endpoint was added once
    page.goto(f"{base}/dashboard/webhooks")
    expect(page.locator("#new-secret")).to_have_count(0)
    expect(page.get_by_role("heading", name="Endpoint added")).to_have_count(0)
    expect(endpoints).to_have_count(1)
    assert secret not in page.content()

    page.get_by_role("link", name=receiver.url).click()
    expect(page).to_have_url(f"{base}{endpoint_path}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhook endpoint")
    expect(page.get_by_text("No deliveries yet.")).to_be_visible()
    assert secret not in page.content()

    # ---- an invoice created and paid through the API: three events for this endpoint
    with api_client(customer.server, person) as api:
        invoice = pay_invoice_by_api(api)

    deliveries = page.locator("tr[data-delivery]")
    succeeded = page.locator('tr[data-delivery][data-delivery-status="succeeded"]')
    paid_row = succeeded.filter(has=page.get_by_role("cell", name="invoice.paid", exact=True))
    wait_for_row(page, paid_row)
    expect(paid_row.locator("[data-status-code]")).to_have_text("200")
    expect(paid_row.locator(".badge")).to_have_text("Webhook delivered")
    # the created and finalized events arrive as well, each once and each with a 200
    for event in ("invoice.created", "invoice.finalized"):
        wait_for_row(page, succeeded.filter(has=page.get_by_role("cell", name=event, exact=True)))
    expect(deliveries).to_have_count(3)
    for code in deliveries.locator("[data-status-code]").all():
        expect(code).to_have_text("200")
    received = sorted(json.loads(r.body)["type"] for r in receiver.wait_for(3))
    assert received == ["invoice.created", "invoice.finalized", "invoice.paid"]

    # ---- a test event on request
    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("status")).to_have_text("A test event is on its way.")
    test_row = succeeded.filter(has=page.get_by_role("cell", name="webhook.test", exact=True))
    wait_for_row(page, test_row)
    expect(test_row.locator("[data-status-code]")).to_have_text("200")
    assert "webhook.test" in [json.loads(r.body)["type"] for r in receiver.wait_for(4)]

    # ---- Redeliver sends the paid event again, as a new delivery
    paid_rows = deliveries.filter(has=page.get_by_role("cell", name="invoice.paid", exact=True))
    paid_rows.first.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status")).to_have_text("Queued for delivery again.")
    wait_for_row(page, paid_row.nth(1))
    expect(paid_row).to_have_count(2)
    again = receiver.wait_for(5)
    assert [json.loads(r.body)["type"] for r in again].count("invoice.paid") == 2
    screenshot(page, "dashboard-webhook-deliveries.png")

    # the invoice's timeline shows its webhooks delivered
    page.goto(f"{base}/dashboard/invoices/{invoice['id']}")
    paid_entry = page.locator('ol.timeline li[data-event="invoice.paid"] .delivery')
    expect(paid_entry.first).to_have_attribute("data-delivery-status", "succeeded")
    expect(paid_entry.first).to_contain_text("Webhook delivered · HTTP 200")
    customer.assert_clean()


def test_reloading_the_page_with_the_secret_does_not_add_another_endpoint(
    customer: Customer, person: Person
) -> None:
    """The secret is on the answer to the POST (no redirect), so a reload (F5; Chrome asks to
    confirm the resubmission, a person says yes) must neither show a secret again nor
    register the endpoint a second time. Nothing sends webhooks on this server."""
    page = log_in(customer, person)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/hooks")
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.locator("table.list tbody tr")).to_have_count(1)

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    customer.assert_clean()
    endpoints = page.locator("table.list tbody tr").count()
    shown_again = page.locator("#new-secret").count()
    assert (endpoints, shown_again) == (1, 0), (
        f"after a reload: {endpoints} endpoints, a secret shown {shown_again} time(s)"
    )


# ------------------------------------------------------------------ 3. a phone


def test_invoice_list_and_detail_fit_a_phone(
    customer: Customer, person: Person, server: LiveServer
) -> None:
    with api_client(server, person) as api:
        # long Russian words and tenge amounts: the widest the pages show
        invoice, _ = open_invoice_link(
            api,
            currency="KZT",
            customer={"name": "Айгерим Бекова", "email": "aigerim.bekova@example.com"},
            line_items=[
                {
                    "description": "Разработка и сопровождение корпоративного сайта",
                    "quantity": 12,
                    "unit_price": "1250000",
                    "tax_rate": 12,
                },
                {"description": "Хостинг", "unit_price": "35000"},
            ],
            discount="10000",
            shipping="2500",
        )
    page = log_in(
        customer, person, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    no_horizontal_scroll(page, PHONE["width"])

    page.get_by_role("link", name="Invoices", exact=True).tap()
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    no_horizontal_scroll(page, PHONE["width"])

    page.get_by_role("link", name=invoice["number"]).tap()
    expect(page).to_have_url(f"{customer.server.base_url}/dashboard/invoices/{invoice['id']}")
    expect(status_of(page)).to_have_attribute("data-status", "open")
    expect(page.locator("#pay-link")).to_be_visible()
    no_horizontal_scroll(page, PHONE["width"])
    screenshot(page, "dashboard-phone-invoice.png")
    # the actions can be reached: each button within the view's width
    for button in page.locator(".actions-card button").all():
        box = button.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= PHONE["width"], box

    # and the form, whose editable lines turn into cards on a phone
    page.go_back()
    page.get_by_role("link", name="New invoice").tap()
    expect(page.locator("#lines tr.line")).to_have_count(1)
    no_horizontal_scroll(page, PHONE["width"])
    customer.assert_clean()


# ------------------------------------------------------------------ 4. Russian


def test_russian_from_the_header_button(
    customer: Customer, person: Person, server: LiveServer
) -> None:
    with api_client(server, person) as api:
        pay_invoice_by_api(api)
    page = log_in(customer, person)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="RU", exact=True).click()

    expect(page).to_have_url(f"{customer.server.base_url}/dashboard")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    nav = page.get_by_role("navigation", name="Разделы")
    expect(nav.get_by_role("link", name="Обзор")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Счета")).to_be_visible()
    expect(nav.get_by_role("link", name="Отчёты")).to_be_visible()
    expect(page.get_by_role("link", name="Новый счёт")).to_be_visible()
    expect(page.get_by_role("button", name="RU", exact=True)).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_text("Организация ещё не проверена.")).to_be_visible()
    card = page.locator('section[data-currency="USD"]')
    expect(card.locator(".tile span")).to_have_text(
        ["Ожидает оплаты", "Просрочено", "Оплачено в этом месяце"]
    )
    # Russian money: a no-break space between thousands, a decimal comma, the sign after
    expect(card.locator('[data-figure="paid_this_month"]')).to_have_text(f"6{NBSP}000,00{NBSP}$")
    expect(card.locator('[data-figure="outstanding"]')).to_have_text(f"0,00{NBSP}$")
    expect(card.locator("figcaption")).to_have_text("Оплаты по неделям за 13 недель (USD)")
    screenshot(page, "dashboard-overview-ru.png")

    # the choice stays with the person from page to page
    nav.get_by_role("link", name="Счета").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Счета")
    row = page.locator("table.list tbody tr")
    expect(row.locator(".badge")).to_have_text("Оплачен")
    expect(row.locator('[data-label="Итого"]')).to_have_text(f"6{NBSP}000,00{NBSP}$")

    # the form's live totals speak Russian as well, the same way as the server's pages
    page.get_by_role("link", name="Новый счёт").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Новый счёт")
    page.get_by_label("Валюта").select_option("USD")
    fill_line(page, 0, "Разработка сайта", "1", "5000", "10")
    page.get_by_role("button", name="Добавить позицию").click()
    fill_line(page, 1, "Хостинг", "1", "500", "0")
    expect_live_totals(page, f"5{NBSP}500,00{NBSP}$", f"500,00{NBSP}$", f"6{NBSP}000,00{NBSP}$")
    expect(page.get_by_role("button", name="Сохранить черновик")).to_be_visible()

    # and back to English with the EN button
    page.get_by_role("button", name="EN", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("New invoice")
    customer.assert_clean()


# ------------------------------------------------------------------ the form's money text


@pytest.mark.parametrize(
    ("locale", "code", "lines", "expected"),
    [
        # Russian tenge: the server writes the tenge sign (ru_KZ), as the pay page does
        (
            "ru-RU",
            "KZT",
            [("Разработка сайта", "12", "1250000", "12"), ("Хостинг", "1", "35000", "0")],
            (
                f"15{NBSP}035{NBSP}000,00{NBSP}₸",
                f"1{NBSP}800{NBSP}000,00{NBSP}₸",
                f"16{NBSP}835{NBSP}000,00{NBSP}₸",
            ),
        ),
        # English tenge: a currency without a symbol in en_US
        (
            "en-US",
            "KZT",
            [("Website", "2", "150000.50", "12")],
            ("KZT300,001.00", "KZT36,000.12", "KZT336,001.12"),
        ),
        # three decimals: 3 x 0.335 = 1.005 dinars, tax 7.5 % of it 0.075375 -> 0.075
        (
            "en-US",
            "KWD",
            [("Rounding check", "3", "0.335", "7.5")],
            ("KWD1.005", "KWD0.075", "KWD1.080"),
        ),
    ],
    ids=["ru-KZT", "en-KZT", "en-KWD"],
)
def test_form_totals_read_as_the_saved_invoice(
    customer: Customer,
    person: Person,
    locale: str,
    code: str,
    lines: list[tuple[str, str, str, str]],
    expected: tuple[str, str, str],
) -> None:
    """The live totals are the server's to the minor unit and must also be written as the
    server writes them: the person compares the two."""
    # the person has chosen no language: the browser's (Accept-Language) decides
    page = log_in(customer, person, locale=locale)
    expect(page.locator("html")).to_have_attribute("lang", locale[:2])
    page.goto(f"{customer.server.base_url}/dashboard/invoices/new")
    page.locator("#customer_name").fill("Айгерим Бекова")
    page.locator("#currency").select_option(code)
    for index, values in enumerate(lines):
        if index:
            page.locator("#add-line").click()
        fill_line(page, index, *values)
    expect(page.locator("#total-total")).not_to_have_text("—")
    expect(page.locator("#totals-problem")).to_be_hidden()
    typed = tuple(
        page.locator(f"#total-{name}").inner_text() for name in ("subtotal", "tax", "total")
    )
    page.locator("button[name=status][value=draft]").click()
    expect(page).to_have_url(re.compile(r"/dashboard/invoices/inv_\w+\?done=created$"))
    saved = tuple(
        page.locator(f'[data-total="{name}"]').inner_text() for name in ("subtotal", "tax", "total")
    )
    assert saved == expected, "the invoice page writes the amounts differently"
    # the same amounts, digit for digit (the arithmetic agrees) ...
    assert [re.sub(r"\D", "", text) for text in typed] == [
        re.sub(r"\D", "", text) for text in saved
    ]
    # ... and the same text (the formatting must agree too)
    assert typed == saved, "the form showed other text while typing than the saved invoice"
    customer.assert_clean()


# ------------------------------------------------------------------ numbers line up


def test_amount_columns_are_right_aligned(
    customer: Customer, person: Person, server: LiveServer
) -> None:
    """Every cell the templates mark ``num`` (quantities, prices, amounts) is right-aligned on
    a desktop screen, so that the digits line up; the stylesheet says so for ``.num``."""
    with api_client(server, person) as api:
        invoice = pay_invoice_by_api(api)
    page = log_in(customer, person)
    misaligned: dict[str, list[str]] = {}
    for path in ("/dashboard/invoices", f"/dashboard/invoices/{invoice['id']}"):
        page.goto(f"{customer.server.base_url}{path}")
        cells = page.locator("table th.num, table td.num")
        expect(cells.first).to_be_visible()
        aligns = cells.evaluate_all(
            "cells => cells.map(c => [c.textContent.trim(), getComputedStyle(c).textAlign])"
        )
        misaligned[path] = [text for text, align in aligns if align not in ("right", "end")]
    customer.assert_clean()
    assert misaligned == {path: [] for path in misaligned}, "number cells not right-aligned"
