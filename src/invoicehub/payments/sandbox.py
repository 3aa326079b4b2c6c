"""The sandbox provider's card rules: the test cards of seed 004, nothing else succeeds.

4242 4242 4242 4242  succeeds
4000 0000 0000 0002  is declined
4000 0000 0000 0069  is an expired card
4000 0025 0000 3155  needs an extra confirmation step (3-D Secure) before it succeeds
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class CardOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    EXPIRED_CARD = "expired_card"
    REQUIRES_CONFIRMATION = "requires_confirmation"


TEST_CARDS = {
    "4242424242424242": CardOutcome.SUCCEEDED,
    "4000000000000002": CardOutcome.DECLINED,
    "4000000000000069": CardOutcome.EXPIRED_CARD,
    "4000002500003155": CardOutcome.REQUIRES_CONFIRMATION,
}

DECLINE_MESSAGES = {
    CardOutcome.DECLINED: "card_declined: your card was declined",
    CardOutcome.EXPIRED_CARD: "expired_card: your card has expired",
}


@dataclass(frozen=True, slots=True)
class CardForm:
    number: str
    expiry: str  # MM/YY
    cvc: str
    name: str | None = None


class CardInvalid(ValueError):
    """A card form that cannot be sent at all; ``field`` names the input and ``code`` the
    reason, which the pay page words in the customer's language."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def check_card(form: CardForm, *, today: dt.date) -> CardOutcome:
    """What the sandbox does with this card; CardInvalid when the form itself is wrong."""
    digits = re.sub(r"[\s-]", "", form.number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise CardInvalid("number", "invalid_number", "card number is not valid")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", form.expiry)
    if not match or not 1 <= int(match.group(1)) <= 12:
        raise CardInvalid("expiry", "invalid_expiry", "expiry must be MM/YY")
    year = int(match.group(2))
    year = year + 2000 if year < 100 else year
    if (year, int(match.group(1))) < (today.year, today.month):
        raise CardInvalid("expiry", "expiry_in_past", "the expiry date is in the past")
    if not re.fullmatch(r"\d{3,4}", form.cvc.strip()):
        raise CardInvalid("cvc", "invalid_cvc", "CVC must be 3 or 4 digits")
    # Any other valid number behaves like a declined card, as in Stripe's test mode.
    return TEST_CARDS.get(digits, CardOutcome.DECLINED)
