"""Invoice totals through the service (and a few through HTTP) against an independent
computation: ``fractions.Fraction`` per line, rounded half-up, then integer sums."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.invoices import service
from invoicehub.invoices.schemas import InvoiceCreate
from tests.conftest import LiveServer, OrgKeys, create_org

EXPONENTS = {"USD": 2, "JPY": 0, "KWD": 3, "KZT": 2}
MONEY_FIELDS = (
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "total",
    "amount_paid",
    "amount_refunded",
    "amount_due",
)
LINE_MONEY_FIELDS = ("unit_price", "amount", "tax")


def half_up(value: Fraction) -> int:
    return (
        math.floor(value + Fraction(1, 2)) if value >= 0 else -math.floor(-value + Fraction(1, 2))
    )


def major(minor: int, exponent: int) -> str:
    """A decimal string with exactly `exponent` decimals, by integer arithmetic only."""
    if exponent == 0:
        return str(minor)
    whole, frac = divmod(minor, 10**exponent)
    return f"{whole}.{frac:0{exponent}d}"


def money_pattern(exponent: int) -> re.Pattern[str]:
    return re.compile(r"\d+" if exponent == 0 else rf"\d+\.\d{{{exponent}}}")


@dataclass(frozen=True)
class Line:
    quantity: str
    unit_minor: int
    tax_rate: str


@dataclass(frozen=True)
class Case:
    currency: str
    lines: tuple[Line, ...]
    shipping_minor: int
    discount_share: Fraction  # of subtotal + tax + shipping

    @property
    def exponent(self) -> int:
        return EXPONENTS[self.currency]

    def expected(self) -> dict[str, Any]:
        amounts = [half_up(Fraction(line.quantity) * line.unit_minor) for line in self.lines]
        taxes = [
            half_up(Fraction(amount) * Fraction(line.tax_rate) / 100)
            for amount, line in zip(amounts, self.lines, strict=True)
        ]
        subtotal, tax = sum(amounts), sum(taxes)
        discount = math.floor((subtotal + tax + self.shipping_minor) * self.discount_share)
        return {
            "amounts": amounts,
            "taxes": taxes,
            "subtotal": subtotal,
            "tax": tax,
            "shipping": self.shipping_minor,
            "discount": discount,
            "total": subtotal + tax + self.shipping_minor - discount,
        }

    def body(self) -> dict[str, Any]:
        expected = self.expected()
        return {
            "currency": self.currency,
            "line_items": [
                {
                    "description": f"line {i}",
                    "quantity": line.quantity,
                    "unit_price": major(line.unit_minor, self.exponent),
                    "tax_rate": line.tax_rate,
                }
                for i, line in enumerate(self.lines)
            ],
            "shipping": major(self.shipping_minor, self.exponent),
            "discount": major(expected["discount"], self.exponent),
        }


def decimal_text(units: int, places: int) -> str:
    """units / 10**places written plainly, keeping at most `places` decimals."""
    return format(Decimal(units).scaleb(-places).normalize(), "f")


# quantity: > 0, up to 6 decimals, at most 10 000; a third of the time a ".5"-style tie maker
quantities = st.one_of(
    st.integers(0, 6).flatmap(
        lambda places: st.integers(1, 10_000 * 10**places).map(lambda n: decimal_text(n, places))
    ),
    st.builds(lambda n: f"{n}.5", st.integers(0, 100)),
    st.sampled_from(["1", "2", "0.5", "1.5", "0.000001", "2.5", "0.333333"]),
)
# tax rate 0..100 with up to 4 decimals, often a common one
tax_rates = st.one_of(
    st.integers(0, 4).flatmap(
        lambda places: st.integers(0, 100 * 10**places).map(lambda n: decimal_text(n, places))
    ),
    st.sampled_from(["0", "5", "7.5", "10", "12", "12.5", "20", "21", "100", "0.0001"]),
)
unit_minors = st.one_of(st.integers(0, 10**9), st.integers(0, 1000))


@st.composite
def cases(draw: st.DrawFn, max_lines: int = 6) -> Case:
    lines = tuple(
        Line(draw(quantities), draw(unit_minors), draw(tax_rates))
        for _ in range(draw(st.integers(1, max_lines)))
    )
    return Case(
        currency=draw(st.sampled_from(sorted(EXPONENTS))),
        lines=lines,
        shipping_minor=draw(st.one_of(st.just(0), st.integers(0, 10**7))),
        discount_share=draw(
            st.one_of(st.just(Fraction(0)), st.fractions(0, 1, max_denominator=1000))
        ),
    )


def check_presented(invoice: dict[str, Any], case: Case) -> None:
    """The JSON: every amount a decimal string with exactly the currency's decimals, equal to
    the independent computation."""
    expected = case.expected()
    exp = case.exponent
    pattern = money_pattern(exp)
    for field in MONEY_FIELDS:
        assert isinstance(invoice[field], str), (field, invoice[field])
        assert pattern.fullmatch(invoice[field]), (field, invoice[field])
    for line in invoice["line_items"]:
        for field in LINE_MONEY_FIELDS:
            assert pattern.fullmatch(line[field]), (field, line[field])
    assert invoice["currency"] == case.currency
    for field in ("subtotal", "tax", "shipping", "discount", "total"):
        assert invoice[field] == major(expected[field], exp), field
    assert invoice["amount_due"] == major(expected["total"], exp)
    assert invoice["amount_paid"] == invoice["amount_refunded"] == major(0, exp)
    assert [line["amount"] for line in invoice["line_items"]] == [
        major(a, exp) for a in expected["amounts"]
    ]
    assert [line["tax"] for line in invoice["line_items"]] == [
        major(t, exp) for t in expected["taxes"]
    ]
    assert [line["unit_price"] for line in invoice["line_items"]] == [
        major(li.unit_minor, exp) for li in case.lines
    ]
    assert [Decimal(line["quantity"]) for line in invoice["line_items"]] == [
        Decimal(li.quantity) for li in case.lines
    ]
    assert [Decimal(line["tax_rate"]) for line in invoice["line_items"]] == [
        Decimal(li.tax_rate) for li in case.lines
    ]


TIES = [
    # 2.5 x 10.01 = 25.025 -> 25.03; tax 7.5% of 25.03 = 1.87725 -> 1.88
    Case("USD", (Line("2.5", 1001, "7.5"),), 0, Fraction(0)),
    # JPY: 0.5 x 1 = 0.5 -> 1 yen; 5 yen at 10% = 0.5 -> 1 (half-even would give 0 twice)
    Case("JPY", (Line("0.5", 1, "0"), Line("1", 5, "10")), 0, Fraction(0)),
    # KWD: 1.5 x 0.001 = 0.0015 -> 0.002; tax 50% of 0.001 = 0.0005 -> 0.001
    Case("KWD", (Line("1.5", 1, "0"), Line("1", 1, "50")), 0, Fraction(0)),
    # seed 004: 1 x 5000 at 10% and 1 x 500 at 0% -> tax 500, total 6000
    Case("USD", (Line("1", 500_000, "10"), Line("1", 50_000, "0")), 0, Fraction(0)),
]


@pytest.fixture(scope="module")
def property_org(settings: Settings) -> OrgKeys:
    return create_org(settings, name="Totals properties")


@settings(max_examples=50, deadline=None)
@given(case=cases())
@example(case=TIES[0])
@example(case=TIES[1])
@example(case=TIES[2])
@example(case=TIES[3])
def test_stored_totals_match_independent_fraction_math(
    runtime: Runtime, property_org: OrgKeys, case: Case
) -> None:
    expected = case.expected()
    data = InvoiceCreate.model_validate(case.body())
    with runtime.database.session(write=True) as session:
        created = service.create_invoice(session, property_org.internal_id, data)
        session.commit()
        public_id = created.invoice.public_id

    # Read it back in a fresh session: what was stored, not what was kept in memory.
    with runtime.database.session(write=False) as session:
        view = service.get_invoice(session, property_org.internal_id, public_id)
        invoice, lines = view.invoice, view.lines or []
        assert [line.amount_minor for line in lines] == expected["amounts"]
        assert [line.tax_minor for line in lines] == expected["taxes"]
        assert [line.unit_price_minor for line in lines] == [li.unit_minor for li in case.lines]
        assert [line.quantity for line in lines] == [Decimal(li.quantity) for li in case.lines]
        assert [line.tax_rate for line in lines] == [Decimal(li.tax_rate) for li in case.lines]
        assert invoice.subtotal_minor == expected["subtotal"]
        assert invoice.tax_minor == expected["tax"]
        assert invoice.shipping_minor == expected["shipping"]
        assert invoice.discount_minor == expected["discount"]
        assert invoice.total_minor == expected["total"]
        assert (
            invoice.total_minor
            == invoice.subtotal_minor
            + invoice.tax_minor
            + invoice.shipping_minor
            - invoice.discount_minor
        )
        check_presented(service.present(view), case)


@settings(max_examples=12, deadline=None)
@given(case=cases(max_lines=4))
@example(case=TIES[1])
def test_http_totals_match_independent_fraction_math(
    server: LiveServer, property_org: OrgKeys, case: Case
) -> None:
    with server.client(property_org.secret_key) as api:
        response = api.post("/v1/invoices", json=case.body())
        assert response.status_code == 201, response.text
        check_presented(response.json(), case)
        again = api.get(f"/v1/invoices/{response.json()['id']}")
        assert again.status_code == 200
        check_presented(again.json(), case)


def test_http_json_numbers_are_read_as_written(server: LiveServer, property_org: OrgKeys) -> None:
    """A client that sends JSON numbers instead of strings gets the same exact arithmetic."""
    with server.client(property_org.secret_key) as api:
        response = api.post(
            "/v1/invoices",
            json={
                "currency": "USD",
                "line_items": [
                    {"description": "x", "quantity": 2.5, "unit_price": 10.01, "tax_rate": 7.5}
                ],
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["subtotal"], body["tax"], body["total"]) == ("25.03", "1.88", "26.91")
