"""Bots.Business web-app invoices (seed 002): the parameters, their checks and messages, and
the invoice object. Parameters come from a JSON body, a form or the query string alike, so
they are read by hand, in the document's order, with its "Missing parameters: …" message."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field

from invoicehub.compat.wire import to_decimal_number
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Account, Bot, Invoice

S = InvoiceStatus

# The document's order, which a "Missing parameters" message follows.
NEW_INVOICE_PARAMETERS = ("amount", "userId", "pin", "description", "title", "payload")
# Reading and paying one invoice (beyond the document): the invoice, and who asks.
INVOICE_PARAMETERS = ("invoiceId", "userId", "pin")

MAX_TEXT = {"title": 200, "description": 5000, "payload": 500}
MAX_USER_ID = 10**15  # Telegram ids are far below this
MAX_BOT_ID = 2**63 - 1
SHORT_CODE_ALPHABET = string.ascii_uppercase + string.digits
PAID_STATUSES = (S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED)
INVALID_AMOUNT = (
    "amount must be a positive number (KZT, at most 2 decimals, less than 10000000000000)"
)


class BadParameters(ValueError):
    """The request's parameters cannot be used; the message is the document's ``msg``."""


def new_short_code() -> str:
    """invoice- and 8 upper-case letters or digits, as the document's invoiceId."""
    return "invoice-" + "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(8))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def require(fields: dict[str, Any], names: tuple[str, ...]) -> None:
    missing = [name for name in names if _blank(fields.get(name))]
    if missing:
        raise BadParameters(f"Missing parameters: {', '.join(missing)}")


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _user_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()) if len(value.strip()) <= 20 else None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    return value if isinstance(value, int) and 0 < value < MAX_USER_ID else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if "\x00" in value else value.strip()  # no database stores a NUL
    if isinstance(value, (int, Decimal)):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class NewInvoice:
    amount: Decimal
    user_id: int
    pin: str
    description: str
    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    invoice_id: str
    user_id: int
    pin: str


def _invalid(problems: list[str]) -> BadParameters:
    return BadParameters(f"Invalid parameters: {'; '.join(problems)}")


def parse_new_invoice(fields: dict[str, Any]) -> NewInvoice:
    require(fields, NEW_INVOICE_PARAMETERS)
    problems = []
    amount = _amount(fields["amount"])
    if amount is None:
        problems.append(INVALID_AMOUNT)
    user_id = _user_id(fields["userId"])
    if user_id is None:
        problems.append("userId must be a Telegram user id (a positive whole number)")
    pin = _text(fields["pin"])
    if pin is None:
        problems.append("pin must be text (without NUL characters)")
    texts: dict[str, str] = {}
    for name in ("description", "title", "payload"):
        text = _text(fields[name])
        if text is None:
            problems.append(f"{name} must be text (without NUL characters)")
        elif len(text) > MAX_TEXT[name]:
            problems.append(f"{name} must be at most {MAX_TEXT[name]} characters")
        else:
            texts[name] = text
    if problems or amount is None or user_id is None or pin is None:
        raise _invalid(problems)
    return NewInvoice(amount, user_id, pin, texts["description"], texts["title"], texts["payload"])


def parse_invoice_request(fields: dict[str, Any]) -> InvoiceRequest:
    require(fields, INVOICE_PARAMETERS)
    problems = []
    invoice_id = _text(fields["invoiceId"])
    if invoice_id is None or len(invoice_id) > 32:
        problems.append("invoiceId must be an invoice id such as invoice-JJD0EOPJ")
    user_id = _user_id(fields["userId"])
    if user_id is None:
        problems.append("userId must be a Telegram user id (a positive whole number)")
    pin = _text(fields["pin"])
    if pin is None:
        problems.append("pin must be text (without NUL characters)")
    if problems or invoice_id is None or user_id is None or pin is None:
        raise _invalid(problems)
    return InvoiceRequest(invoice_id, user_id, pin)


def bot_number(raw: str) -> int | None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    number = int(raw)
    return number if 0 < number <= MAX_BOT_ID else None


# ------------------------------------------------------------------ the invoice object


def pay_link(bot: Bot, invoice: Invoice) -> str:
    return f"https://t.me/{bot.username}?start={invoice.short_code}"


def status_word(invoice: Invoice) -> str:
    """The document knows unpaid and paid only; anything not paid is unpaid."""
    return "paid" if invoice.status in PAID_STATUSES else "unpaid"


def invoice_object(
    invoice: Invoice,
    *,
    bot: Bot,
    creator: Account,
    payer: Account | None,
    qr_url: str,
    with_payload: bool = False,
) -> dict[str, Any]:
    paid = status_word(invoice) == "paid"
    body: dict[str, Any] = {
        "qrCode": qr_url,
        "invoiceId": invoice.short_code,
        "title": invoice.title,
        "amount": str(
            to_decimal_number(from_minor(invoice.total_minor, currency(invoice.currency)))
        ),
        "userId": creator.telegram_user_id,
        "payLink": pay_link(bot, invoice),
        "description": invoice.description,
        "status": status_word(invoice),
        "paidBy": payer.telegram_user_id if paid and payer is not None else None,
    }
    if with_payload:
        body["payload"] = invoice.metadata_.get("payload")
    return body


# ------------------------------------------------------------------ documentation models


class InvoiceOut(BaseModel):
    qrCode: str = Field(
        description="A PNG QR code of payLink, served by invoicehub.",
        examples=[
            "https://invoicehub.example/compat/botsbusiness/v2/bots/1914078/web-app/invoices/invoice-JJD0EOPJ/qr.png"
        ],
    )
    invoiceId: str = Field(description="invoice- and 8 characters.", examples=["invoice-JJD0EOPJ"])
    title: str = Field(description="Invoice title.", examples=["Test Payment"])
    amount: str = Field(description="Amount to be paid (KZT).", examples=["10"])
    userId: str = Field(
        description="Telegram id of the invoice's creator.", examples=["7378059553"]
    )
    payLink: str = Field(
        description="Telegram link to pay the invoice.",
        examples=["https://t.me/bbp_app_bot?start=invoice-JJD0EOPJ"],
    )
    description: str = Field(
        description="Description of the invoice.", examples=["Payment for test"]
    )
    status: str = Field(description="unpaid or paid.", examples=["unpaid"])
    paidBy: str | None = Field(description="Telegram id of the payer, once paid.", examples=[None])


class InvoiceWithPayloadOut(InvoiceOut):
    payload: str | None = Field(
        description="The payload given at creation.", examples=["user123-payment"]
    )


class SuccessOut(BaseModel):
    status: str = Field(description="success", examples=["success"])
    invoice: InvoiceOut


class SuccessWithPayloadOut(BaseModel):
    status: str = Field(description="success", examples=["success"])
    invoice: InvoiceWithPayloadOut


class ErrorOut(BaseModel):
    status: str = Field(description="error", examples=["error"])
    msg: str = Field(description="What went wrong.", examples=["Missing parameters: amount, pin"])
