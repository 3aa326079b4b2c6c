"""The pay page in a real browser: Debian's Chromium driven by Playwright, headless.

Every request the page makes is routed through a guard that lets through only the test server
on 127.0.0.1 and fails the test on anything else. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from invoicehub.config import Settings
from tests.conftest import LiveServer, OrgKeys, create_org
from tests.web.test_pay_page import MERCHANT, NBSP, invoice_of, open_invoice_link

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PHONE = {"width": 375, "height": 667}


@pytest.fixture
def org(settings: Settings) -> OrgKeys:
    return create_org(settings, name=MERCHANT)


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


@dataclass
class Customer:
    """One browser context per test; remembers what left (or tried to leave) 127.0.0.1."""

    browser: Browser
    server: LiveServer
    foreign_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def open(self, path: str, **context_options: Any) -> Page:
        context_options.setdefault("locale", "en-US")
        context = self.browser.new_context(**context_options)
        self.contexts.append(context)
        context.set_default_timeout(5_000)
        context.route("**/*", self._guard)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(f"page error: {error}"))
        page.goto(f"{self.server.base_url}{path}")
        return page

    def _guard(self, route: Route) -> None:
        url = urlsplit(route.request.url)
        own = urlsplit(self.server.base_url)
        if (url.scheme, url.hostname, url.port) == (own.scheme, "127.0.0.1", own.port):
            route.continue_()
        else:
            self.foreign_requests.append(route.request.url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        # A Content-Security-Policy violation or a failed resource shows up here.
        if message.type in ("error", "warning") and "favicon.ico" not in message.location.get(
            "url", ""
        ):
            self.page_errors.append(f"console {message.type}: {message.text}")

    def assert_clean(self) -> None:
        assert self.foreign_requests == [], "the page reached beyond the test server"
        assert self.page_errors == []

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def customer(browser: Browser, server: LiveServer) -> Iterator[Customer]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    who = Customer(browser, server)
    try:
        yield who
    finally:
        who.close()


def screenshot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / name
    page.wait_for_load_state("load")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


LABELS = {
    "en": ("Card number", "Expiry (MM/YY)", "CVC"),
    "ru": ("Номер карты", "Срок действия (ММ/ГГ)", "CVC"),
}


def fill_card(
    page: Page, number: str, expiry: str = "12/34", cvc: str = "123", lang: str = "en"
) -> None:
    """Types into the fields found by their visible labels, as a person would."""
    number_label, expiry_label, cvc_label = LABELS[lang]
    page.get_by_label(number_label, exact=True).press_sequentially(number)
    page.get_by_label(expiry_label, exact=True).press_sequentially(expiry)
    page.get_by_label(cvc_label, exact=True).press_sequentially(cvc)


def no_horizontal_scroll(page: Page, width: int) -> None:
    # Measure the finished layout: right after a navigation the text can be there before
    # the stylesheet, and an unstyled page is wider than the styled one.
    page.wait_for_load_state("load")
    scroll_width, inner_width = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    # A mobile browser zooms out to fit a page that is too wide, and innerWidth grows with it:
    # so innerWidth must still be the device's width, and the page must fit in it.
    assert inner_width == width, f"the browser zoomed out to {inner_width}px to fit the page"
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide in a {inner_width}px view"


def test_customer_sees_the_invoice_and_pays(api: httpx.Client, customer: Customer) -> None:
    invoice, token = open_invoice_link(api)
    page = customer.open(f"/pay/{token}")

    expect(page).to_have_title(f"Invoice {invoice['number']} · {MERCHANT}")
    expect(page.locator(".merchant")).to_have_text(MERCHANT)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {invoice['number']}")
    expect(page.get_by_test_id("status")).to_have_text("Awaiting payment")
    expect(page.get_by_test_id("amount-due")).to_have_text("$6,000.00")
    expect(page.get_by_role("cell", name="Website Development")).to_be_visible()
    expect(page.get_by_test_id("pdf-link")).to_be_visible()
    # the inline QR code, as drawn by the browser, reads back as the payment link
    qr_png = page.locator("figure.qr svg").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png)))
    assert [code.text for code in decoded] == [f"http://127.0.0.1:8000/pay/{token}"]
    screenshot(page, "pay-page-open.png")

    fill_card(page, "4242 4242 4242 4242")
    page.get_by_label("Name on card").fill("John Smith")
    page.get_by_role("button", name="Pay $6,000.00").click()

    expect(page).to_have_url(f"{customer.server.base_url}/pay/{token}?result=paid")
    expect(page.get_by_test_id("paid-message")).to_contain_text("Thank you! This invoice was paid")
    expect(page.get_by_test_id("status")).to_have_text("Paid")
    expect(page.get_by_test_id("pay-button")).to_have_count(0)
    expect(page.get_by_label("Card number")).to_have_count(0)
    screenshot(page, "pay-page-paid.png")
    assert invoice_of(api, invoice["id"])["status"] == "paid"
    customer.assert_clean()


def test_declined_card_shows_an_error_and_the_invoice_stays_payable(
    api: httpx.Client, customer: Customer
) -> None:
    invoice, token = open_invoice_link(api)
    page = customer.open(f"/pay/{token}")
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_test_id("pay-button").click()

    error = page.get_by_role("alert")
    expect(error).to_have_text(
        "Payment failed: your card was declined. You were not charged; you can try again."
    )
    expect(page.get_by_test_id("payment-error")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("Awaiting payment")
    expect(page.get_by_test_id("pay-button")).to_be_enabled()
    screenshot(page, "pay-page-declined.png")
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["amount_paid"]) == ("open", "0.00")

    fill_card(page, "4242 4242 4242 4242")
    page.get_by_test_id("pay-button").click()
    expect(page.get_by_test_id("status")).to_have_text("Paid")
    expect(page.get_by_test_id("paid-message")).to_be_visible()
    expect(page.get_by_test_id("payment-error")).to_have_count(0)
    assert invoice_of(api, invoice["id"])["status"] == "paid"
    customer.assert_clean()


def test_card_that_needs_confirmation_goes_through_the_confirmation_page(
    api: httpx.Client, customer: Customer
) -> None:
    invoice, token = open_invoice_link(api)
    page = customer.open(f"/pay/{token}")
    fill_card(page, "4000 0025 0000 3155")
    page.get_by_test_id("pay-button").click()

    expect(page).to_have_url(re.compile(rf"/pay/{re.escape(token)}/confirm/pay_\w+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your payment")
    expect(
        page.get_by_text("Your bank asks you to confirm this payment of $6,000.00.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    screenshot(page, "pay-page-confirm.png")
    assert invoice_of(api, invoice["id"])["status"] == "processing"

    page.get_by_test_id("confirm-button").click()
    expect(page).to_have_url(f"{customer.server.base_url}/pay/{token}?result=paid")
    expect(page.get_by_test_id("status")).to_have_text("Paid")
    expect(page.get_by_test_id("paid-message")).to_be_visible()
    assert invoice_of(api, invoice["id"])["status"] == "paid"
    customer.assert_clean()


def test_phone_viewport_has_no_horizontal_scrolling(api: httpx.Client, customer: Customer) -> None:
    # Russian words and tenge amounts are the longest the page shows.
    _, token = open_invoice_link(
        api,
        currency="KZT",
        customer={"name": "Айгерим Бекова", "email": "aigerim@example.com", "locale": "ru"},
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
    page = customer.open(
        f"/pay/{token}", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    expect(page.get_by_test_id("amount-due")).to_have_text(f"16{NBSP}827{NBSP}500,00{NBSP}₸")
    expect(page.get_by_test_id("status")).to_have_text("Ожидает оплаты")
    no_horizontal_scroll(page, PHONE["width"])
    screenshot(page, "pay-page-phone.png")
    # the button to pay fits in the view's width
    box = page.get_by_test_id("pay-button").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]

    fill_card(page, "4000 0000 0000 0069", lang="ru")
    page.get_by_test_id("pay-button").tap()
    expect(page.get_by_test_id("payment-error")).to_contain_text("срок действия карты истёк")
    no_horizontal_scroll(page, PHONE["width"])

    fill_card(page, "4242 4242 4242 4242", lang="ru")
    page.get_by_test_id("pay-button").tap()
    expect(page.get_by_test_id("status")).to_have_text("Оплачен")
    no_horizontal_scroll(page, PHONE["width"])
    customer.assert_clean()


def test_payment_can_be_completed_with_the_keyboard_only(
    api: httpx.Client, customer: Customer
) -> None:
    invoice, token = open_invoice_link(api)
    page = customer.open(f"/pay/{token}")

    def focused() -> str:
        return str(page.evaluate("() => document.activeElement && document.activeElement.id"))

    for _ in range(20):
        page.keyboard.press("Tab")
        if focused() == "number":
            break
    assert focused() == "number", "Tab never reaches the card number"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused field shows no focus ring"
    page.keyboard.type("4242 4242 4242 4242")
    page.keyboard.press("Tab")
    assert focused() == "expiry"
    page.keyboard.type("12/34")
    page.keyboard.press("Tab")
    assert focused() == "cvc"
    page.keyboard.type("123")
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("status")).to_have_text("Paid")
    expect(page.get_by_test_id("paid-message")).to_be_visible()
    assert invoice_of(api, invoice["id"])["status"] == "paid"
    customer.assert_clean()
