"""The hosted pay page over HTTP, as a customer's browser sees it (no browser here: httpx
against the live server, the HTML parsed with the standard library).

Expected texts are written out by hand (not computed with babel or the app's catalog), so a
change in formatting or wording shows up as a failure.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.invoices.service import expire_due_invoices
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body

MERCHANT = "Northwind Studio"
NBSP = "\u00a0"
NNBSP = "\u202f"  # CLDR puts a narrow no-break space before "г."
GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123"}


# ------------------------------------------------------------------ a small DOM


VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def text(self) -> str:
        """Text content with ASCII whitespace collapsed; no-break spaces are kept as they are."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return re.sub(r"[ \t\r\n]+", " ", "".join(parts)).strip()

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for node in self.iter():
            if tag is not None and node.tag != tag:
                continue
            wanted_class = attrs.get("class_")
            if wanted_class is not None and wanted_class not in node.classes():
                continue
            if all(
                node.attrs.get(name.rstrip("_").replace("_", "-")) == value
                for name, value in attrs.items()
                if name != "class_"
            ):
                found.append(node)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        """The first match, which must exist."""
        found = self.find(tag, **attrs)
        assert found is not None, f"no <{tag or '*'} {attrs}> in <{self.tag}>"
        return found


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


@dataclass
class Page:
    response: httpx.Response
    dom: Node

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def html(self) -> str:
        return self.response.text

    def testid(self, name: str) -> Node | None:
        return self.dom.find(data_testid=name)

    def text_of(self, testid: str) -> str:
        node = self.testid(testid)
        assert node is not None, f"no data-testid={testid!r} on the page:\n{self.html}"
        return node.text()

    def pairs(self, dl_class: str) -> dict[str, str]:
        dl = self.dom.find("dl", class_=dl_class)
        assert dl is not None, f"no <dl class={dl_class}>"
        result = {}
        for row in dl.children:
            if isinstance(row, Node):
                dt_, dd = row.find("dt"), row.find("dd")
                assert dt_ is not None
                assert dd is not None
                result[dt_.text()] = dd.text()
        return result

    def lines(self) -> list[list[str]]:
        table = self.dom.find("table", class_="lines")
        assert table is not None
        body = table.find("tbody")
        assert body is not None
        return [[td.text() for td in tr.find_all("td")] for tr in body.find_all("tr")]

    def card_form(self) -> Node | None:
        for form in self.dom.find_all("form"):
            if "/card" in form.attrs.get("action", ""):
                return form
        return None

    @property
    def lang(self) -> str:
        html = self.dom.find("html")
        assert html is not None
        return html.attrs.get("lang", "")


def parse(response: httpx.Response) -> Page:
    builder = _Builder()
    builder.feed(response.text)
    builder.close()
    return Page(response, builder.root)


# ------------------------------------------------------------------ helpers


@pytest.fixture
def org(settings: Settings) -> OrgKeys:
    """The merchant whose name the customer sees (overrides conftest's org, so api uses it)."""
    return create_org(settings, name=MERCHANT)


@pytest.fixture
def customer(server: LiveServer) -> Iterator[httpx.Client]:
    """The customer: no API key, only the link."""
    with server.client() as client:
        yield client


def create(api: httpx.Client, **overrides: object) -> dict[str, Any]:
    overrides.setdefault("status", "open")
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def make_link(api: httpx.Client, invoice_id: str, **body: object) -> str:
    response = api.post(f"/v1/invoices/{invoice_id}/payment-link", json=body or None)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def open_invoice_link(api: httpx.Client, **overrides: object) -> tuple[dict[str, Any], str]:
    invoice = create(api, **overrides)
    return invoice, make_link(api, invoice["id"])


def get_page(customer: httpx.Client, token: str, **kwargs: Any) -> Page:
    return parse(customer.get(f"/pay/{token}", **kwargs))


def post_card(
    customer: httpx.Client, token: str, lang: str | None = None, **card: str
) -> httpx.Response:
    data = {**GOOD_CARD, "name": "", **card}
    return customer.post(
        f"/pay/{token}/card",
        data=data,
        params={"lang": lang} if lang else None,
        follow_redirects=False,
    )


def follow(customer: httpx.Client, response: httpx.Response) -> Page:
    assert response.status_code == 303, response.text
    return parse(customer.get(response.headers["location"]))


def invoice_of(api: httpx.Client, invoice_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/invoices/{invoice_id}")
    assert response.status_code == 200, response.text
    return response.json()


def payments_of(api: httpx.Client, invoice_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/invoices/{invoice_id}/payments")
    assert response.status_code == 200, response.text
    return list(response.json())


def event_types(api: httpx.Client, invoice_id: str) -> list[str]:
    response = api.get("/v1/events", params={"object_id": invoice_id, "limit": 100})
    assert response.status_code == 200, response.text
    return [event["type"] for event in response.json()["data"]]


def in_session(settings: Settings, work: Callable[[Any], object]) -> object:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            result = work(session)
            session.commit()
            return result
    finally:
        runtime.database.dispose()


def assert_not_payable(page: Page) -> None:
    assert page.card_form() is None, page.html
    assert page.testid("pay-button") is None
    assert page.dom.find("input", name="number") is None


# ------------------------------------------------------------------ what the customer sees

USD_LINES = [
    {
        "description": "Website Development",
        "quantity": 1,
        "unit_price": "1000",
        "type": "service",
        "tax_rate": 10,
    },
    {"description": "Hosting Setup", "quantity": 2, "unit_price": "100", "type": "fee"},
]


def test_english_usd_page_shows_merchant_lines_and_totals(
    api: httpx.Client, customer: httpx.Client
) -> None:
    # 1000 + 2 x 100 = 1200; tax 100; shipping 34.56; discount 100 -> 1234.56
    invoice, token = open_invoice_link(
        api,
        customer={"name": "John Smith", "email": "client@example.com", "locale": "en"},
        line_items=USD_LINES,
        discount="100",
        shipping="34.56",
        issue_date="2026-03-05",
        due_date="2099-12-31",
        title="Spring redesign",
    )
    page = get_page(customer, token)
    assert page.status == 200
    assert page.response.headers["content-type"].startswith("text/html")
    assert page.lang == "en"
    assert page.dom.one(class_="merchant").text() == MERCHANT
    assert page.dom.one("h1").text() == f"Invoice {invoice['number']}"
    assert invoice["number"] in page.dom.one("title").text()
    assert page.text_of("status") == "Awaiting payment"
    assert page.lines() == [
        ["Website Development", "1", "$1,000.00", "10 %", "$1,000.00"],
        ["Hosting Setup", "2", "$100.00", "0 %", "$200.00"],
    ]
    assert page.pairs("totals") == {
        "Subtotal": "$1,200.00",
        "Discount": "−$100.00",
        "Shipping": "$34.56",
        "Tax": "$100.00",
        "Total": "$1,234.56",
        "Amount due": "$1,234.56",
    }
    assert page.text_of("amount-due") == "$1,234.56"
    assert page.pairs("meta") == {
        "Issued": "March 5, 2026",
        "Due": "December 31, 2099",
        "Bill to": "John Smithclient@example.com",
    }
    assert "Spring redesign" in page.dom.text()
    assert page.text_of("pay-button") == "Pay $1,234.56"
    form = page.card_form()
    assert form is not None
    assert (form.attrs["method"], form.attrs["action"]) == ("post", f"/pay/{token}/card")
    for name in ("number", "expiry", "cvc", "name"):
        field_ = form.find("input", name=name)
        assert field_ is not None
        label = form.find("label", for_=field_.attrs["id"])
        assert label is not None, f"input {name} has no label"
        assert label.text(), f"input {name} has an empty label"


def test_russian_tenge_page_uses_russian_words_and_number_format(
    api: httpx.Client, customer: httpx.Client
) -> None:
    # 2 x 4000 at 12% = 8000 + 960 tax; 1040 at 0% -> total 10 000,00 ₸
    invoice, token = open_invoice_link(
        api,
        currency="KZT",
        customer={"name": "Айгерим Бекова", "locale": "ru"},
        line_items=[
            {
                "description": "Разработка сайта",
                "quantity": 2,
                "unit_price": "4000",
                "tax_rate": 12,
            },
            {"description": "Хостинг на год", "quantity": "1.5", "unit_price": "693.33"},
        ],
        issue_date="2026-03-05",
        due_date="2099-12-31",
    )
    page = get_page(customer, token)
    assert page.status == 200
    assert page.lang == "ru"
    assert page.dom.one("h1").text() == f"Счёт {invoice['number']}"
    assert page.text_of("status") == "Ожидает оплаты"
    lines = page.lines()
    assert [row[0] for row in lines] == ["Разработка сайта", "Хостинг на год"]
    assert lines[0] == [
        "Разработка сайта",
        "2",
        f"4{NBSP}000,00{NBSP}₸",
        "12 %",
        f"8{NBSP}000,00{NBSP}₸",
    ]
    assert lines[1][1] == "1,5"  # a decimal comma for quantities too
    assert page.pairs("totals") == {
        "Подытог": f"9{NBSP}040,00{NBSP}₸",
        "Налог": f"960,00{NBSP}₸",
        "Итого": f"10{NBSP}000,00{NBSP}₸",
        "К оплате": f"10{NBSP}000,00{NBSP}₸",
    }
    assert page.text_of("amount-due") == f"10{NBSP}000,00{NBSP}₸"
    meta = page.pairs("meta")
    assert (meta["Выставлен"], meta["Оплатить до"]) == (
        f"5 марта 2026{NNBSP}г.",
        f"31 декабря 2099{NNBSP}г.",
    )
    assert page.text_of("pay-button") == f"Оплатить 10{NBSP}000,00{NBSP}₸"
    assert page.dom.one("label", for_="number").text() == "Номер карты"


def test_euro_invoice_in_russian_with_discount_and_shipping(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, token = open_invoice_link(
        api,
        currency="EUR",
        customer={"name": "Иван Петров", "locale": "ru-RU"},
        line_items=USD_LINES,
        discount="100",
        shipping="34.56",
    )
    page = get_page(customer, token)
    assert page.lang == "ru"
    assert page.pairs("totals") == {
        "Подытог": f"1{NBSP}200,00{NBSP}€",
        "Скидка": f"−100,00{NBSP}€",
        "Доставка": f"34,56{NBSP}€",
        "Налог": f"100,00{NBSP}€",
        "Итого": f"1{NBSP}234,56{NBSP}€",
        "К оплате": f"1{NBSP}234,56{NBSP}€",
    }
    assert [row[0] for row in page.lines()] == ["Website Development", "Hosting Setup"]


def test_lang_query_overrides_the_customers_language(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, ru_token = open_invoice_link(
        api, currency="EUR", customer={"name": "Иван", "locale": "ru"}, line_items=USD_LINES
    )
    english = get_page(customer, ru_token, params={"lang": "en"})
    assert english.lang == "en"
    assert english.text_of("amount-due") == "€1,300.00"
    assert english.text_of("status") == "Awaiting payment"
    # the form keeps the chosen language for the answer that follows it
    assert english.dom.one("form").attrs["action"] == f"/pay/{ru_token}/card?lang=en"
    assert (
        english.dom.one(data_testid="pdf-link").attrs["href"]
        == f"/pay/{ru_token}/invoice.pdf?lang=en"
    )

    _, en_token = open_invoice_link(api, customer={"name": "John", "locale": "en"})
    russian = get_page(customer, en_token, params={"lang": "ru"})
    assert russian.lang == "ru"
    assert russian.text_of("amount-due") == f"6{NBSP}000,00{NBSP}$"
    assert russian.text_of("status") == "Ожидает оплаты"
    # the language links say which one is chosen
    current = [a.text() for a in russian.dom.find_all("a") if "aria-current" in a.attrs]
    assert current == ["Русский"]


def test_accept_language_is_used_when_the_customer_has_no_language(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, token = open_invoice_link(api, customer={"name": "Someone"})
    ru = get_page(customer, token, headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert (ru.lang, ru.text_of("amount-due")) == ("ru", f"6{NBSP}000,00{NBSP}$")
    first_supported = get_page(customer, token, headers={"Accept-Language": "de-DE,de;q=0.9,ru"})
    assert first_supported.lang == "ru"
    unsupported = get_page(customer, token, headers={"Accept-Language": "de-DE,fr;q=0.8"})
    assert (unsupported.lang, unsupported.text_of("amount-due")) == ("en", "$6,000.00")
    # the customer's own language wins over the browser's
    _, en_token = open_invoice_link(api, customer={"name": "John", "locale": "en"})
    assert get_page(customer, en_token, headers={"Accept-Language": "ru"}).lang == "en"


def test_an_overdue_invoice_says_so_and_can_still_be_paid(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, token = open_invoice_link(api, issue_date="2020-01-01", due_date="2020-01-10")
    page = get_page(customer, token)
    assert page.text_of("status") == "Overdue"
    assert page.card_form() is not None


# ------------------------------------------------------------------ viewing is recorded once


def test_first_view_sets_viewed_at_and_one_event_later_views_none(
    api: httpx.Client, customer: httpx.Client
) -> None:
    invoice, token = open_invoice_link(api)
    # the QR code and the PDF are not the customer opening the page
    assert customer.get(f"/pay/{token}/qr.png").status_code == 200
    assert customer.get(f"/pay/{token}/invoice.pdf").status_code == 200
    assert invoice_of(api, invoice["id"])["viewed_at"] is None
    assert "invoice.viewed" not in event_types(api, invoice["id"])

    assert get_page(customer, token).status == 200
    viewed_at = invoice_of(api, invoice["id"])["viewed_at"]
    assert viewed_at is not None
    assert event_types(api, invoice["id"]).count("invoice.viewed") == 1

    for _ in range(3):
        assert get_page(customer, token).status == 200
    assert invoice_of(api, invoice["id"])["viewed_at"] == viewed_at
    assert event_types(api, invoice["id"]).count("invoice.viewed") == 1


def test_simultaneous_first_views_write_one_event(api: httpx.Client, server: LiveServer) -> None:
    invoice, token = open_invoice_link(api)
    statuses: list[int] = []
    start = threading.Barrier(6)

    def view() -> None:
        with server.client() as client:
            start.wait(timeout=10)
            statuses.append(client.get(f"/pay/{token}").status_code)

    threads = [threading.Thread(target=view) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 6
    assert event_types(api, invoice["id"]).count("invoice.viewed") == 1


# ------------------------------------------------------------------ QR code and PDF


def test_qr_png_decodes_to_the_payment_link(api: httpx.Client, customer: httpx.Client) -> None:
    invoice, token = open_invoice_link(api)
    response = customer.get(f"/pay/{token}/qr.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    assert image.size[0] == image.size[1] >= 150
    decoded = zxingcpp.read_barcodes(image)
    assert [(code.format, code.text) for code in decoded] == [
        (zxingcpp.BarcodeFormat.QRCode, invoice_of(api, invoice["id"])["payment_url"])
    ]
    assert decoded[0].text == f"http://127.0.0.1:8000/pay/{token}"


def test_page_has_an_inline_svg_qr_code(api: httpx.Client, customer: httpx.Client) -> None:
    _, token = open_invoice_link(api)
    page = get_page(customer, token)
    figure = page.dom.find("figure", class_="qr")
    assert figure is not None
    svg = figure.find("svg")
    assert svg is not None
    assert figure.one("figcaption").text() == "Scan to open this page on your phone"
    # the markup is well-formed SVG with the modules drawn as a path
    raw = re.search(r"<svg.*?</svg>", page.html, re.DOTALL)
    assert raw is not None
    element = ET.fromstring(raw.group(0))
    paths = [p for p in element.iter() if p.tag.endswith("path") and len(p.get("d", "")) > 100]
    assert paths, raw.group(0)[:300]


def test_pdf_link_returns_the_invoice_as_pdf(api: httpx.Client, customer: httpx.Client) -> None:
    invoice, token = open_invoice_link(api, customer={"name": "John Smith", "locale": "en"})
    page = get_page(customer, token)
    href = page.dom.one(data_testid="pdf-link").attrs["href"]
    assert page.text_of("pdf-link") == "Download PDF"
    response = customer.get(href)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert invoice["number"] in response.headers["content-disposition"]
    assert response.content.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert invoice["number"] in text
    assert MERCHANT in text


def test_unknown_token_gets_a_404_page(customer: httpx.Client) -> None:
    response = customer.get("/pay/no-such-token-at-all")
    page = parse(response)
    assert page.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.dom.one("h1").text() == "This payment link does not exist."
    assert page.card_form() is None
    russian = parse(customer.get("/pay/no-such-token", headers={"Accept-Language": "ru"}))
    assert russian.dom.one("h1").text() == "Такой ссылки на оплату нет."
    assert customer.get("/pay/no-such-token/qr.png").status_code == 404
    assert customer.get("/pay/no-such-token/invoice.pdf").status_code == 404
    card = post_card(customer, "no-such-token", number="4242424242424242")
    assert card.status_code == 404


# ------------------------------------------------------------------ closed invoices and links


def _refused_card(api: httpx.Client, customer: httpx.Client, invoice_id: str, token: str) -> None:
    before = payments_of(api, invoice_id)
    response = post_card(customer, token, number="4242424242424242")
    assert response.status_code == 409, response.text
    assert_not_payable(parse(response))
    assert payments_of(api, invoice_id) == before


def test_cancelled_invoice_page_says_so_and_takes_no_card(
    api: httpx.Client, customer: httpx.Client
) -> None:
    invoice, token = open_invoice_link(api)
    api.post(f"/v1/invoices/{invoice['id']}/cancel").raise_for_status()
    page = get_page(customer, token)
    assert page.status == 200
    assert page.text_of("status") == "Cancelled"
    assert page.text_of("closed-message") == "This invoice was cancelled. No payment is needed."
    assert_not_payable(page)
    _refused_card(api, customer, invoice["id"], token)
    assert invoice_of(api, invoice["id"])["status"] == "cancelled"


def test_expired_invoice_page_says_so_and_takes_no_card(
    api: httpx.Client, customer: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    invoice, token = open_invoice_link(api, expires_at=soon)
    moved_clock[0] = 60
    in_session(settings, expire_due_invoices)
    assert invoice_of(api, invoice["id"])["status"] == "expired"
    page = get_page(customer, token)
    assert page.text_of("status") == "Expired"
    assert page.text_of("closed-message") == "This invoice has expired and can no longer be paid."
    assert_not_payable(page)
    _refused_card(api, customer, invoice["id"], token)


def test_paid_invoice_page_says_so_and_takes_no_card(
    api: httpx.Client, customer: httpx.Client
) -> None:
    invoice, token = open_invoice_link(api)
    paid = api.post(f"/v1/invoices/{invoice['id']}/simulate-payment", json={"outcome": "succeeded"})
    assert paid.json()["status"] == "paid"
    page = get_page(customer, token)
    assert page.text_of("status") == "Paid"
    assert re.fullmatch(
        r"Thank you! This invoice was paid on [A-Z][a-z]+ \d{1,2}, \d{4}\.",
        page.text_of("paid-message"),
    )
    assert page.text_of("amount-due") == "$0.00"
    assert page.pairs("totals")["Total"] == "$6,000.00"
    assert_not_payable(page)
    _refused_card(api, customer, invoice["id"], token)


def test_expired_link_says_so_and_refuses_a_card(
    api: httpx.Client, customer: httpx.Client, moved_clock: list[float]
) -> None:
    invoice = create(api)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    token = make_link(api, invoice["id"], expires_at=soon)
    assert get_page(customer, token).card_form() is not None
    moved_clock[0] = 600
    page = get_page(customer, token)
    assert page.status == 200
    assert page.text_of("closed-message") == (
        "This payment link has expired. Ask the sender for a new one."
    )
    assert page.text_of("status") == "Awaiting payment"  # the invoice itself is still open
    assert_not_payable(page)
    _refused_card(api, customer, invoice["id"], token)
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["amount_paid"]) == ("open", "0.00")


# ------------------------------------------------------------------ paying by card


def test_good_card_pays_the_invoice(api: httpx.Client, customer: httpx.Client) -> None:
    invoice, token = open_invoice_link(api)
    response = post_card(customer, token, number="4242 4242 4242 4242", name="John Smith")
    assert response.status_code == 303
    assert response.headers["location"] == f"/pay/{token}?result=paid"
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["amount_paid"], after["amount_due"]) == (
        "paid",
        "6000.00",
        "0.00",
    )
    assert after["paid_at"] is not None
    assert after["last_payment_error"] is None
    [payment] = payments_of(api, invoice["id"])
    assert (payment["provider"], payment["status"], payment["kind"], payment["amount"]) == (
        "sandbox",
        "succeeded",
        "payment",
        "6000.00",
    )
    assert payment["reference"] == "card ending 4242"
    assert "invoice.paid" in event_types(api, invoice["id"])
    page = follow(customer, response)
    assert page.text_of("status") == "Paid"
    assert page.text_of("paid-message").startswith("Thank you! This invoice was paid on ")
    assert page.testid("payment-error") is None
    assert_not_payable(page)
    # paying again is refused and records nothing
    again = post_card(customer, token, number="4242424242424242")
    assert again.status_code == 409
    assert len(payments_of(api, invoice["id"])) == 1


def test_good_card_keeps_the_chosen_language(api: httpx.Client, customer: httpx.Client) -> None:
    _, token = open_invoice_link(api, currency="KZT", customer={"name": "Айгерим"})
    response = post_card(customer, token, lang="ru", number="4242424242424242")
    assert response.headers["location"] == f"/pay/{token}?result=paid&lang=ru"
    page = follow(customer, response)
    assert page.text_of("status") == "Оплачен"
    assert page.text_of("paid-message").startswith("Спасибо! Счёт оплачен ")


@pytest.mark.parametrize(
    ("number", "code", "reason"),
    [
        ("4000 0000 0000 0002", "card_declined", "your card was declined"),
        ("4000000000000069", "expired_card", "your card has expired"),
    ],
)
def test_declined_card_leaves_the_invoice_payable(
    api: httpx.Client, customer: httpx.Client, number: str, code: str, reason: str
) -> None:
    invoice, token = open_invoice_link(api)
    response = post_card(customer, token, number=number)
    assert response.status_code == 303
    assert response.headers["location"] == f"/pay/{token}?result=declined"
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["amount_paid"], after["paid_at"]) == ("open", "0.00", None)
    assert after["last_payment_error"] is not None
    assert after["last_payment_error"].startswith(f"{code}:")
    [payment] = payments_of(api, invoice["id"])
    assert (payment["status"], payment["provider"]) == ("failed", "sandbox")
    assert "invoice.payment_failed" in event_types(api, invoice["id"])

    page = follow(customer, response)
    assert page.text_of("payment-error") == (
        f"Payment failed: {reason}. You were not charged; you can try again."
    )
    assert page.text_of("status") == "Awaiting payment"
    assert page.card_form() is not None
    # the plain page (no ?result=) does not repeat an old failure
    assert get_page(customer, token).testid("payment-error") is None

    retry = post_card(customer, token, number="4242424242424242")
    assert retry.headers["location"] == f"/pay/{token}?result=paid"
    paid = invoice_of(api, invoice["id"])
    assert (paid["status"], paid["last_payment_error"]) == ("paid", None)
    assert [p["status"] for p in payments_of(api, invoice["id"])] == ["failed", "succeeded"]


def test_declined_reason_is_in_the_customers_language(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, token = open_invoice_link(api, currency="KZT", customer={"name": "Айгерим", "locale": "ru"})
    page = follow(customer, post_card(customer, token, number="4000000000000002"))
    assert page.text_of("payment-error") == (
        "Платёж не прошёл: банк отклонил карту. Деньги не списаны, можно попробовать снова."
    )


def _waiting_payment(api: httpx.Client, invoice_id: str) -> dict[str, Any]:
    [payment] = [p for p in payments_of(api, invoice_id) if p["status"] == "processing"]
    return payment


def test_card_needing_confirmation_is_paid_after_confirming(
    api: httpx.Client, customer: httpx.Client
) -> None:
    invoice, token = open_invoice_link(api)
    response = post_card(customer, token, number="4000 0025 0000 3155")
    assert response.status_code == 303
    payment = _waiting_payment(api, invoice["id"])
    assert response.headers["location"] == f"/pay/{token}/confirm/{payment['id']}"
    assert invoice_of(api, invoice["id"])["status"] == "processing"

    confirm = follow(customer, response)
    assert confirm.status == 200
    assert confirm.dom.one("h1").text() == "Confirm your payment"
    assert "$6,000.00" in confirm.dom.text()
    assert confirm.text_of("confirm-button") == "Confirm payment"
    form = confirm.dom.find("form")
    assert form is not None
    assert form.attrs["action"] == f"/pay/{token}/confirm/{payment['id']}"

    # meanwhile the pay page shows the payment in progress and takes no second card
    waiting = get_page(customer, token)
    assert waiting.text_of("status") == "Payment in progress"
    assert "A payment is waiting for confirmation." in waiting.dom.text()
    assert_not_payable(waiting)
    assert post_card(customer, token, number="4242424242424242").status_code == 409

    done = customer.post(form.attrs["action"], data={"decision": "confirm"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/pay/{token}?result=paid"
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["amount_paid"]) == ("paid", "6000.00")
    assert [p["status"] for p in payments_of(api, invoice["id"])] == ["succeeded"]
    page = follow(customer, done)
    assert page.text_of("status") == "Paid"
    assert page.testid("paid-message") is not None


def test_cancelling_the_confirmation_declines_and_reopens(
    api: httpx.Client, customer: httpx.Client
) -> None:
    invoice, token = open_invoice_link(api)
    post_card(customer, token, number="4000002500003155")
    payment = _waiting_payment(api, invoice["id"])
    response = customer.post(
        f"/pay/{token}/confirm/{payment['id']}",
        data={"decision": "cancel"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/pay/{token}?result=declined"
    after = invoice_of(api, invoice["id"])
    assert after["status"] == "open"
    assert after["last_payment_error"].startswith("authentication_failed:")
    assert [p["status"] for p in payments_of(api, invoice["id"])] == ["failed"]
    page = follow(customer, response)
    assert page.text_of("payment-error") == (
        "Payment failed: the payment was not confirmed. You were not charged; you can try again."
    )
    assert page.card_form() is not None
    # the confirmation step cannot be replayed once it was cancelled
    replay = customer.post(
        f"/pay/{token}/confirm/{payment['id']}",
        data={"decision": "confirm"},
        follow_redirects=False,
    )
    assert replay.headers["location"] == f"/pay/{token}?result=declined"
    assert invoice_of(api, invoice["id"])["status"] == "open"


def test_confirming_someone_elses_payment_does_nothing(
    api: httpx.Client, customer: httpx.Client
) -> None:
    mine, my_token = open_invoice_link(api)
    other, other_token = open_invoice_link(api)
    post_card(customer, other_token, number="4000002500003155")
    theirs = _waiting_payment(api, other["id"])
    response = customer.post(
        f"/pay/{my_token}/confirm/{theirs['id']}",
        data={"decision": "confirm"},
        follow_redirects=False,
    )
    assert response.headers["location"] == f"/pay/{my_token}?result=declined"
    assert invoice_of(api, mine["id"])["status"] == "open"
    assert invoice_of(api, other["id"])["status"] == "processing"
    assert payments_of(api, mine["id"]) == []


def test_customer_who_leaves_the_confirmation_step_can_get_back_to_it(
    api: httpx.Client, customer: httpx.Client
) -> None:
    """A customer who closes the bank's step and comes back through the link must be able to
    finish: while the invoice is processing the pay page offers the way back
    ("Continue to confirmation")."""
    invoice, token = open_invoice_link(api)
    post_card(customer, token, number="4000002500003155")
    payment = _waiting_payment(api, invoice["id"])
    page = get_page(customer, token)
    links = [a.attrs.get("href", "") for a in page.dom.find_all("a")]
    assert any(href.startswith(f"/pay/{token}/confirm/{payment['id']}") for href in links), (
        f"no way back to the confirmation step from the pay page; links: {links}"
    )


@pytest.mark.parametrize(
    ("card", "field_name", "message"),
    [
        (
            {"number": "4242 4242 4242 4241"},
            "number",
            "Please check the Card number: card number is not valid.",
        ),
        ({"number": "4242"}, "number", "Please check the Card number: card number is not valid."),
        (
            {"expiry": "01/20"},
            "expiry",
            "Please check the Expiry (MM/YY): the expiry date is in the past.",
        ),
        ({"expiry": "13/30"}, "expiry", "Please check the Expiry (MM/YY): expiry must be MM/YY."),
        ({"cvc": "12"}, "cvc", "Please check the CVC: CVC must be 3 or 4 digits."),
        ({"cvc": "abc"}, "cvc", "Please check the CVC: CVC must be 3 or 4 digits."),
    ],
)
def test_invalid_card_form_is_answered_422_naming_the_field(
    api: httpx.Client,
    customer: httpx.Client,
    card: dict[str, str],
    field_name: str,
    message: str,
) -> None:
    invoice, token = open_invoice_link(api)
    types_before = event_types(api, invoice["id"])
    sent = {"number": "4242424242424242", **card}
    response = post_card(customer, token, **sent)
    assert response.status_code == 422
    page = parse(response)
    assert page.text_of("form-error") == message
    form = page.card_form()
    assert form is not None
    invalid = [i.attrs["name"] for i in form.find_all("input") if "aria-invalid" in i.attrs]
    assert invalid == [field_name]
    bad_input = form.one("input", name=field_name)
    assert bad_input.attrs["aria-describedby"] == "form-error"
    # the card number and CVC are never written back into the page
    if len(sent["number"]) >= 12:  # (a short one is also in the sandbox hint)
        assert sent["number"] not in page.html
        assert sent["number"].replace(" ", "") not in page.html
    assert form.one("input", name="number").attrs.get("value") is None
    assert form.one("input", name="cvc").attrs.get("value") is None
    # nothing was attempted
    assert payments_of(api, invoice["id"]) == []
    after = invoice_of(api, invoice["id"])
    assert (after["status"], after["last_payment_error"]) == ("open", None)
    assert event_types(api, invoice["id"]) == types_before


def test_invalid_card_form_keeps_name_and_expiry_for_the_retry(
    api: httpx.Client, customer: httpx.Client
) -> None:
    _, token = open_invoice_link(api)
    page = parse(post_card(customer, token, number="4242", expiry="11/33", name="J. Smith"))
    assert page.status == 422
    assert page.dom.one("input", name="expiry").attrs["value"] == "11/33"
    assert page.dom.one("input", name="name").attrs["value"] == "J. Smith"


def test_invalid_card_message_is_in_the_customers_language(
    api: httpx.Client, customer: httpx.Client
) -> None:
    """A Russian page says what is wrong in Russian, not only which field."""
    _, token = open_invoice_link(api, currency="KZT", customer={"name": "Айгерим", "locale": "ru"})
    page = parse(post_card(customer, token, number="4242 4242 4242 4241"))
    assert page.status == 422
    error = page.text_of("form-error")
    assert error.startswith("Проверьте поле «Номер карты»: ")
    english_words = re.findall(r"[A-Za-z]{2,}", error)
    assert english_words == [], f"English words on a Russian page: {error!r}"


# ------------------------------------------------------------------ headers and escaping


def assert_secure_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "script-src" not in directives  # the page runs no script at all
    for name, sources in directives.items():
        for source in sources:
            # no host, scheme-wide source or wildcard: only the page's own origin
            assert source in ("'self'", "'none'", "data:"), f"{name} allows {source!r}: {csp}"


def assert_same_origin_only(page: Page) -> None:
    for node in page.dom.iter():
        for name in ("href", "src", "action", "srcset", "formaction"):
            value = node.attrs.get(name)
            if value is None:
                continue
            assert value.startswith(("/", "?", "#")), f"<{node.tag} {name}={value!r}>"
            assert not value.startswith("//"), f"<{node.tag} {name}={value!r}>"
    assert "<script" not in page.html.lower()


def test_security_headers_on_every_page(api: httpx.Client, customer: httpx.Client) -> None:
    invoice, token = open_invoice_link(api)
    page = get_page(customer, token)
    assert_secure_headers(page.response)
    assert_same_origin_only(page)
    invalid = post_card(customer, token, number="1234")
    assert invalid.status_code == 422
    assert_secure_headers(invalid)
    assert_same_origin_only(parse(invalid))
    missing = customer.get("/pay/not-a-real-token")
    assert missing.status_code == 404
    assert_secure_headers(missing)
    confirm_redirect = post_card(customer, token, number="4000002500003155")
    confirm = customer.get(confirm_redirect.headers["location"])
    assert confirm.status_code == 200
    assert_secure_headers(confirm)
    assert_same_origin_only(parse(confirm))
    stylesheet = customer.get("/static/pay.css")
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"].startswith("text/css")
    assert not re.search(r"url\(|@import", stylesheet.text), "the stylesheet loads nothing else"
    assert invoice_of(api, invoice["id"])["status"] == "processing"


def test_html_in_invoice_fields_is_shown_escaped(
    server: LiveServer, settings: Settings, customer: httpx.Client
) -> None:
    evil_org = create_org(settings, name='Tom & Jerry <b>"Studio"</b>')
    with server.client(evil_org.secret_key) as api:
        _, token = open_invoice_link(
            api,
            title='"><img src=x onerror=alert(1)>',
            description="<script>alert(1)</script>",
            notes="</p><script>alert('notes')</script>",
            customer={"name": "<i>Eve</i>", "email": "eve@example.com"},
            line_items=[{"description": "<b>bold</b> & <u>under</u>", "unit_price": "10"}],
        )
    page = get_page(customer, token)
    assert page.status == 200
    html = page.html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "<b>" not in html
    assert "<i>" not in html
    assert "<u>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    description = page.dom.find("p", class_="description")
    assert description is not None
    assert description.text() == "<script>alert(1)</script>"
    assert page.dom.one("p", class_="title").text() == '"><img src=x onerror=alert(1)>'
    assert page.dom.one("p", class_="notes").text() == "Notes: </p><script>alert('notes')</script>"
    assert page.lines()[0][0] == "<b>bold</b> & <u>under</u>"
    assert page.dom.one(class_="merchant").text() == 'Tom & Jerry <b>"Studio"</b>'
    assert "<i>Eve</i>" in page.pairs("meta")["Bill to"]
