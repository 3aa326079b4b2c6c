"""Money: integer minor units in storage, ``Decimal`` in code, decimal strings on the wire.

This module owns every rounding in invoicehub. The rule: an amount is rounded half-up
(away from zero on a tie) to the currency's minor unit, and only at two points: a line's
amount (quantity x unit price) and a line's tax (line amount x rate / 100). Invoice totals
are sums of already-rounded integers, so they never round again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

# Largest amount any money field may hold, in minor units: keeps every sum far from the
# 64-bit limit of the storage columns whatever the number of lines.
MAX_MINOR = 10**15

_HUNDRED = Decimal(100)
_POWERS = tuple(10**exponent for exponent in range(10))


class MoneyError(ValueError):
    """A money value that cannot be represented; the message says why."""


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.exponent)


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code.isalpha())


@lru_cache(maxsize=512)
def currency(code: str) -> Currency:
    """The ISO 4217 currency ``code`` with its real number of decimals (JPY 0, KWD 3)."""
    normalized = code.strip().upper() if isinstance(code, str) else ""
    if normalized not in _known_codes():
        raise MoneyError(f"{code!r} is not an ISO 4217 currency code")
    return Currency(normalized, get_currency_precision(normalized))


def is_currency(code: str) -> bool:
    try:
        currency(code)
    except MoneyError:
        return False
    return True


def round_half_up(value: Decimal) -> int:
    """Round a value already expressed in minor units to a whole number of them."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def to_minor(amount: Decimal | int | str, cur: Currency, *, allow_negative: bool = False) -> int:
    """Exact conversion of a major-unit amount to minor units; refuses to drop precision.

    Works on the decimal's digits and exponent with Python integers, never through the
    decimal context, whose 28-digit precision would round a far-out digit away unseen.
    """
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"{amount!r} is not a decimal amount") from exc
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if sign and any(digits) and not allow_negative:
        raise MoneyError("amount must not be negative")
    # Drop trailing zeros so 10.500 counts as one decimal, not three.
    digit_list = list(digits)
    while len(digit_list) > 1 and digit_list[-1] == 0:
        digit_list.pop()
        exponent += 1
    if not any(digit_list):
        return 0
    if len(digit_list) + exponent > 20:  # far beyond MAX_MINOR, and cheap to say so
        raise MoneyError(f"amount {value} {cur.code} is larger than invoicehub accepts")
    shift = exponent + cur.exponent
    if shift < 0:
        places = "no decimal places" if cur.exponent == 0 else f"at most {cur.exponent} decimals"
        raise MoneyError(f"{cur.code} amounts take {places}; got {value}")
    scale: int = 10**shift
    minor = int("".join(map(str, digit_list))) * scale
    if minor >= MAX_MINOR:
        raise MoneyError(f"amount {value} {cur.code} is larger than invoicehub accepts")
    return -minor if sign else minor


def from_minor(minor: int, cur: Currency) -> Decimal:
    return Decimal(minor).scaleb(-cur.exponent).quantize(cur.quantum)


def format_amount(minor: int, cur: Currency) -> str:
    """The wire form: a plain decimal string with the currency's decimals ("6000.00").

    Integer arithmetic, not ``from_minor``: a list page formats eight amounts per invoice,
    and a divmod is a fraction of a Decimal's scaleb + quantize + format."""
    if cur.exponent == 0:
        return str(minor)
    whole, fraction = divmod(-minor if minor < 0 else minor, _POWERS[cur.exponent])
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{cur.exponent}d}"


def line_amount_minor(quantity: Decimal, unit_price_minor: int) -> int:
    """quantity x unit price, rounded half-up to the minor unit."""
    return round_half_up(quantity * unit_price_minor)


def line_tax_minor(amount_minor: int, tax_rate: Decimal) -> int:
    """A line's tax: its amount x rate / 100, rounded half-up to the minor unit."""
    return round_half_up(Decimal(amount_minor) * tax_rate / _HUNDRED)
