"""Property tests of kit/money.py, the one module that owns rounding.

Every expectation here is computed independently of the code under test: with integer
arithmetic, ``fractions.Fraction`` and ``decimal`` quantize, never with money.py itself.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from invoicehub.kit.money import (
    MAX_MINOR,
    Currency,
    MoneyError,
    currency,
    format_amount,
    from_minor,
    line_amount_minor,
    line_tax_minor,
    round_half_up,
    to_minor,
)

EXPONENTS = {"USD": 2, "JPY": 0, "KWD": 3, "KZT": 2}
codes = st.sampled_from(sorted(EXPONENTS))
minors = st.integers(min_value=0, max_value=MAX_MINOR - 1)


def half_up(value: Fraction) -> int:
    """Independent reference: round to the nearest integer, ties away from zero."""
    if value >= 0:
        return math.floor(value + Fraction(1, 2))
    return -math.floor(-value + Fraction(1, 2))


def wire(minor: int, exponent: int) -> str:
    """Independent reference for the wire form, by integer arithmetic only."""
    if exponent == 0:
        return str(minor)
    whole, frac = divmod(minor, 10**exponent)
    return f"{whole}.{frac:0{exponent}d}"


# ---------------------------------------------------------------- currencies


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("KZT", 2),
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("CAD", 2),
        ("AUD", 2),
        ("JPY", 0),
        ("KWD", 3),
    ],
)
def test_currency_knows_its_minor_unit(code: str, exponent: int) -> None:
    cur = currency(code)
    assert cur == Currency(code, exponent)
    assert cur.quantum == Decimal(1).scaleb(-exponent)


@pytest.mark.parametrize("code", ["XYZ", "", "US", "USDX", "12$"])
def test_currency_refuses_unknown_codes(code: str) -> None:
    with pytest.raises(MoneyError):
        currency(code)


# ---------------------------------------------------------------- exact conversions


@given(code=codes, minor=minors)
@example(code="USD", minor=0)
@example(code="JPY", minor=MAX_MINOR - 1)
@example(code="KWD", minor=1)
def test_minor_to_wire_and_back_is_exact(code: str, minor: int) -> None:
    cur = currency(code)
    exponent = EXPONENTS[code]
    text = format_amount(minor, cur)
    assert text == wire(minor, exponent)
    decimals = len(text.partition(".")[2])
    assert decimals == exponent
    assert re.fullmatch(r"\d+" if exponent == 0 else rf"\d+\.\d{{{exponent}}}", text)
    assert from_minor(minor, cur) == Fraction(minor, 10**exponent)
    assert from_minor(minor, cur).as_tuple().exponent == -exponent
    assert to_minor(text, cur) == minor
    assert to_minor(Decimal(text), cur) == minor
    assert to_minor(from_minor(minor, cur), cur) == minor


@given(code=codes, minor=minors)
@example(code="USD", minor=1)
@example(code="KWD", minor=5)
@example(code="JPY", minor=7)
def test_a_negative_amount_formats_as_its_decimal(code: str, minor: int) -> None:
    """Refund and balance figures can go below zero; the sign goes before the whole part."""
    cur = currency(code)
    text = format_amount(-minor, cur)
    assert Decimal(text) == from_minor(-minor, cur)
    assert text == ("-" if minor else "") + format_amount(minor, cur)


@given(code=codes, minor=minors, fewer=st.integers(0, 3), trailing_zeros=st.integers(0, 4))
def test_amounts_written_with_fewer_or_zero_padded_decimals_convert_exactly(
    code: str, minor: int, fewer: int, trailing_zeros: int
) -> None:
    """ "5000", "5000.0", "5000.00", "5000.000", "5E+3": the same amount, the same minor units."""
    exponent = EXPONENTS[code]
    cur = currency(code)
    fewer = min(fewer, exponent)
    minor -= minor % 10**fewer  # a value whose last `fewer` minor digits are zero
    shown = wire(minor // 10**fewer, exponent - fewer)  # written with fewer decimals
    padded = shown + (
        "" if trailing_zeros == 0 else ("." if "." not in shown else "") + "0" * trailing_zeros
    )
    assert to_minor(shown, cur) == minor
    assert to_minor(padded, cur) == minor
    assert to_minor(Decimal(shown).normalize(), cur) == minor  # scientific form, e.g. 5E+3


def _excess(draw: st.DrawFn, code: str, max_extra: int) -> Decimal:
    """A valid amount plus a non-zero digit beyond the currency's last decimal.

    Built from a string, which Decimal reads exactly: arithmetic would go through the
    28-digit decimal context and could round the far digit away before to_minor sees it.
    """
    exponent = EXPONENTS[code]
    base_minor = draw(st.integers(0, 10**12))
    extra_places = draw(st.integers(1, max_extra))
    tail = draw(st.integers(1, 10**extra_places - 1).filter(lambda n: n % 10 != 0))
    units = base_minor * 10**extra_places + tail  # in 10**-(exponent + extra_places)
    return Decimal(f"{units}E-{exponent + extra_places}")


@st.composite
def excess_amounts(draw: st.DrawFn, *, max_extra: int) -> tuple[str, Decimal]:
    code = draw(codes)
    return code, _excess(draw, code, max_extra)


@given(case=excess_amounts(max_extra=6))
@example(case=("USD", Decimal("0.001")))
@example(case=("USD", Decimal("10.005")))
@example(case=("JPY", Decimal("1.5")))
@example(case=("KWD", Decimal("1.0005")))
def test_to_minor_refuses_more_decimals_than_the_currency_has(case: tuple[str, Decimal]) -> None:
    code, amount = case
    cur = currency(code)
    with pytest.raises(MoneyError):
        to_minor(amount, cur)
    with pytest.raises(MoneyError):
        to_minor(format(amount, "f"), cur)


@given(case=excess_amounts(max_extra=40))
@example(case=("USD", Decimal("1.0000000000000000000000000001")))
def test_to_minor_never_rounds_away_a_far_decimal(case: tuple[str, Decimal]) -> None:
    """However many digits the amount has, a non-zero digit past the minor unit is refused.

    Decimal("1.0000000000000000000000000001") USD is 100.00000000000000000000000001 cents:
    it must be refused, not turned into 100 cents.
    """
    code, amount = case
    cur = currency(code)
    in_minor_units = Fraction(amount) * 10 ** EXPONENTS[code]
    assert in_minor_units.denominator != 1  # the generator made a truly excess amount
    with pytest.raises(MoneyError):
        to_minor(amount, cur)


@given(
    code=codes,
    amount=st.decimals(max_value=Decimal("-1E-9"), allow_nan=False, allow_infinity=False),
)
@example(code="USD", amount=Decimal("-0.01"))
@example(code="JPY", amount=Decimal(-1))
def test_to_minor_refuses_negative_amounts(code: str, amount: Decimal) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, currency(code))


@given(code=codes, minor=st.integers(-(MAX_MINOR - 1), 0))
def test_negative_amounts_only_when_asked_for(code: str, minor: int) -> None:
    cur = currency(code)
    amount = -from_minor(-minor, cur)
    assert to_minor(amount, cur, allow_negative=True) == minor


@pytest.mark.parametrize(
    "amount",
    [
        "NaN",
        "sNaN",
        "-NaN",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "abc",
        "",
        "1,5",
        "1.2.3",
    ],
)
@pytest.mark.parametrize("code", sorted(EXPONENTS))
def test_to_minor_refuses_what_is_not_a_finite_number(amount: object, code: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, currency(code))  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        to_minor(amount, currency(code), allow_negative=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", sorted(EXPONENTS))
def test_max_minor_is_the_bound(code: str) -> None:
    cur = currency(code)
    assert to_minor(from_minor(MAX_MINOR - 1, cur), cur) == MAX_MINOR - 1
    assert to_minor(format_amount(MAX_MINOR - 1, cur), cur) == MAX_MINOR - 1
    for too_big in (MAX_MINOR, MAX_MINOR + 1, 10 * MAX_MINOR):
        with pytest.raises(MoneyError):
            to_minor(Decimal(too_big).scaleb(-EXPONENTS[code]), cur)
    with pytest.raises(MoneyError):
        to_minor(-Decimal(MAX_MINOR).scaleb(-EXPONENTS[code]), cur, allow_negative=True)


@given(code=codes, minor=st.integers(min_value=MAX_MINOR, max_value=10**27))
def test_to_minor_refuses_everything_from_max_minor_up(code: str, minor: int) -> None:
    with pytest.raises(MoneyError):
        to_minor(Decimal(minor).scaleb(-EXPONENTS[code]), currency(code))


@pytest.mark.parametrize("amount", ["1E+30", "1E+1000", "1E+999999", "9.99E+999998"])
def test_to_minor_refuses_astronomic_amounts_with_money_error(amount: str) -> None:
    """Refusals are MoneyError (which services turn into a 422), never another exception."""
    with pytest.raises(MoneyError):
        to_minor(amount, currency("USD"))


# ---------------------------------------------------------------- rounding


@given(n=st.integers(0, 10**18))
def test_round_half_up_ties_go_up_for_positive_values(n: int) -> None:
    assert round_half_up(Decimal(n) + Decimal("0.5")) == n + 1
    assert round_half_up(Decimal(n) + Decimal("0.4999999")) == n
    assert round_half_up(Decimal(n) + Decimal("0.5000001")) == n + 1
    assert round_half_up(Decimal(n)) == n


@given(n=st.integers(0, 10**18))
def test_round_half_up_ties_go_away_from_zero_for_negative_values(n: int) -> None:
    assert round_half_up(-(Decimal(n) + Decimal("0.5"))) == -(n + 1)


@given(
    value=st.decimals(
        min_value=Decimal("-1E+18"),
        max_value=Decimal("1E+18"),
        places=8,
        allow_nan=False,
        allow_infinity=False,
    )
)
@example(value=Decimal("2.5"))
@example(value=Decimal("0.5"))
@example(value=Decimal("-0.5"))
@example(value=Decimal("1.49999999"))
def test_round_half_up_agrees_with_quantize_and_with_fraction_math(value: Decimal) -> None:
    assert round_half_up(value) == int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert round_half_up(value) == half_up(Fraction(value))


# ---------------------------------------------------------------- line amounts and tax

quantities = st.integers(1, 10**9 * 10**6).map(lambda n: Decimal(n).scaleb(-6).normalize())
tax_rates = st.integers(0, 100 * 10**4).map(lambda n: Decimal(n).scaleb(-4).normalize())


@st.composite
def line_inputs(draw: st.DrawFn) -> tuple[Decimal, int]:
    """quantity (up to 6 decimals, at most 1e9) and a unit price so the line stays below MAX_MINOR."""
    quantity = draw(quantities)
    ceiling = max(0, min(MAX_MINOR - 1, int(Fraction(MAX_MINOR - 1) / Fraction(quantity))))
    return quantity, draw(st.integers(0, ceiling))


@given(case=line_inputs())
@example(case=(Decimal("2.5"), 1001))  # 25.025 -> 25.03
@example(case=(Decimal("0.5"), 1))  # a tie: 0.5 -> 1 (half-even would give 0)
@example(case=(Decimal("1.5"), 1))
@example(case=(Decimal("0.000001"), 500000))  # exactly 0.5
def test_line_amount_is_quantity_times_price_rounded_half_up(case: tuple[Decimal, int]) -> None:
    quantity, unit_minor = case
    assert line_amount_minor(quantity, unit_minor) == half_up(Fraction(quantity) * unit_minor)


@given(amount=st.integers(0, MAX_MINOR - 1), rate=tax_rates)
@example(amount=5, rate=Decimal(10))  # 0.5 -> 1
@example(amount=25, rate=Decimal(2))  # 0.5 -> 1
@example(amount=2503, rate=Decimal("7.5"))  # 187.725 -> 188
@example(amount=1, rate=Decimal(50))  # 0.5 -> 1
@example(amount=3, rate=Decimal(50))  # 1.5 -> 2
@example(amount=MAX_MINOR - 1, rate=Decimal("99.9999"))
@example(amount=MAX_MINOR - 1, rate=Decimal(100))
def test_line_tax_is_the_exact_rational_value_rounded_half_up(amount: int, rate: Decimal) -> None:
    assert line_tax_minor(amount, rate) == half_up(Fraction(amount) * Fraction(rate) / 100)


def test_seed_004_example() -> None:
    """1 x 5000 at 10% plus 1 x 500 at 0%: tax 500, total 6000."""
    usd = currency("USD")
    lines = [(Decimal(1), "5000", Decimal(10)), (Decimal(1), "500", Decimal(0))]
    amounts = [line_amount_minor(q, to_minor(price, usd)) for q, price, _ in lines]
    taxes = [line_tax_minor(a, rate) for a, (_, _, rate) in zip(amounts, lines, strict=True)]
    assert amounts == [500_000, 50_000]
    assert taxes == [50_000, 0]
    subtotal, tax = sum(amounts), sum(taxes)
    assert (
        format_amount(subtotal, usd),
        format_amount(tax, usd),
        format_amount(subtotal + tax, usd),
    ) == (
        "5500.00",
        "500.00",
        "6000.00",
    )
