"""The BW wallet's wire shapes (seed 001): status words, error codes, the invoice item, the p2p
payment object, and the create request. Shapes here are what the document shows; the models
describe them in /compat/wallet/docs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from invoicehub.accounts.service import TRANSFER_ID_BASE
from invoicehub.compat.wire import to_decimal_number
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Account, Invoice, Transfer

S = InvoiceStatus

# Core status -> the wallet's word. An open invoice whose last payment was declined reads as
# "declined" (see status_word); refunds and expiry cannot happen to a wallet invoice, but a
# word is still defined for each state so a reader never breaks.
STATUS_WORDS: dict[str, str] = {
    S.DRAFT: "created",
    S.OPEN: "created",
    S.PROCESSING: "processing",
    S.PAID: "completed",
    S.PARTIALLY_REFUNDED: "completed",
    S.REFUNDED: "completed",
    S.CANCELLED: "canceled",
    S.EXPIRED: "canceled",
}

# Which error answers which wallet status, per operation (the document's lists).
CANCEL_REFUSALS = {
    "processing": "invoice_is_processing",
    "completed": "invoice_is_completed",
    "canceled": "invoice_is_already_canceled",
}
PAY_REFUSALS = {
    "processing": "invoice_is_processing",
    "completed": "invoice_is_completed",
    "canceled": "invoice_is_canceled",
    "declined": "invoice_is_declined",
}
PAY_REFUSAL_MESSAGES = {
    "invoice_is_processing": "a payment of this invoice is already in progress",
    "invoice_is_completed": "this invoice is paid already",
    "invoice_is_canceled": "this invoice was canceled by the user who created it",
    "invoice_is_declined": "the payment of this invoice was declined; ask for a new invoice",
}
CANCEL_REFUSAL_MESSAGES = {
    "invoice_is_processing": "this invoice is being paid; it can no longer be canceled",
    "invoice_is_completed": "this invoice is paid; there is nothing to cancel",
    "invoice_is_already_canceled": "this invoice was canceled before",
    "invoice_cancelling_error": "this invoice could not be canceled",
}

MAX_MESSAGE = 1000  # the core keeps the message as the invoice's one line (at most 1000)

PUBLIC_ID_PREFIX = "inv_"


def status_word(invoice: Invoice) -> str:
    """The document's status for a core invoice. "declined" is an open invoice whose last
    payment attempt was declined: the wallet treats that as final (paying it again answers
    invoice_is_declined), while the core keeps it open."""
    if invoice.status == S.OPEN and invoice.last_payment_error:
        return "declined"
    return STATUS_WORDS.get(invoice.status, invoice.status)


def wallet_id(invoice: Invoice) -> str:
    """_id: the invoice's public id without its inv_ prefix (24 hex characters)."""
    return invoice.public_id.removeprefix(PUBLIC_ID_PREFIX)


def amount_of(minor: int, code: str) -> Decimal | int:
    return to_decimal_number(from_minor(minor, currency(code)))


def invoice_item(
    invoice: Invoice, accounts: dict[int, Account], transfer: Transfer | None
) -> dict[str, Any]:
    payer = accounts.get(invoice.payer_account_id) if invoice.payer_account_id else None
    payee = accounts.get(invoice.payee_account_id) if invoice.payee_account_id else None
    return {
        "_id": wallet_id(invoice),
        "payer": payer.phone if payer else None,
        "amount": amount_of(invoice.total_minor, invoice.currency),
        "recipient": payee.phone if payee else None,
        "message": invoice.description,
        "status": status_word(invoice),
        "payment_id": payment_id(transfer),
    }


def payment_id(transfer: Transfer | None) -> int | None:
    return None if transfer is None else TRANSFER_ID_BASE + transfer.id


def iso_millis(value: dt.datetime) -> str:
    """2014-09-25T14:26:47.406Z, as the document's payment shows created_at."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payment_object(
    transfer: Transfer, invoice: Invoice, payer: Account, payee: Account
) -> dict[str, Any]:
    amount = amount_of(transfer.amount_minor, transfer.currency)
    return {
        "id": payment_id(transfer),
        "client_payment_id": transfer.client_payment_id,
        "amount": amount,
        "total": amount,  # no fees between wallets
        "created_at": iso_millis(transfer.created_at),
        "status": transfer.status,  # completed | declined: settled while the request waited
        "type": "p2p",
        "wallet": {"phone": payer.phone},
        "destination": {"phone": payee.phone},
        "direction": "out",
        "message": invoice.description,
    }


# ------------------------------------------------------------------ the create request


def _as_written(value: Any) -> Any:
    # A JSON number as the client wrote it (repr of the float), never the binary float.
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _phone_text(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a phone number")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _text(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:  # no database stores it
            raise ValueError("must not contain NUL characters")
        return value.strip() or None
    return value


class CreateInvoiceIn(BaseModel):
    """POST /v1/invoices, as JSON or a form. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    payer: Annotated[str | None, BeforeValidator(_phone_text)] = Field(
        default=None,
        description="Phone of the wallet that will pay (who the invoice is for). Required.",
        examples=["+12345678102"],
    )
    amount: Annotated[Decimal | None, BeforeValidator(_as_written)] = Field(
        default=None,
        allow_inf_nan=False,
        description="Amount to pay, a number (KZT, at most 2 decimals). Required.",
        examples=[350],
    )
    message: Annotated[str | None, BeforeValidator(_text)] = Field(
        default=None,
        max_length=MAX_MESSAGE,
        description="Free text for the payer. Optional.",
        examples=["Test invoice"],
    )


# ------------------------------------------------------------------ documentation models


class Meta(BaseModel):
    code: int = Field(description="The HTTP status, repeated.", examples=[200])


class ErrorMeta(Meta):
    error: str = Field(description="The document's error code.", examples=["missing_payer"])
    message: str = Field(description="What went wrong, in words.", examples=["payer is required"])


class ErrorOut(BaseModel):
    meta: ErrorMeta


class InvoiceOut(BaseModel):
    id: str = Field(
        alias="_id",
        description="The invoice's id: 24 hex characters.",
        examples=["5422daccb7f47b52010041a7"],
    )
    payer: str | None = Field(description="Phone of who pays.", examples=["+12345675578"])
    amount: Decimal = Field(description="Amount, a JSON number.", examples=[200])
    recipient: str | None = Field(
        description="Phone of who is paid (the creator).", examples=["+12345678102"]
    )
    message: str | None = Field(description="The creator's message.", examples=["Test invoice"])
    status: str = Field(
        description="created, canceled, processing, completed or declined.",
        examples=["created"],
    )
    payment_id: int | None = Field(
        description="The payment's id once /pay was called (the last attempt), else null.",
        examples=[1401089242211],
    )


class InvoiceEnvelope(BaseModel):
    meta: Meta
    data: InvoiceOut


class InvoiceListEnvelope(BaseModel):
    meta: Meta
    data: list[InvoiceOut]


class MetaOnly(BaseModel):
    meta: Meta


class PhoneOut(BaseModel):
    phone: str | None = Field(description="A wallet's phone.", examples=["+12345675578"])


class PaymentOut(BaseModel):
    id: int = Field(description="The payment's id.", examples=[1401089242256])
    client_payment_id: str = Field(
        description="A UUID naming this payment.", examples=["a0341db9-280f-4daa-ad09-7f10e1dce5a5"]
    )
    amount: Decimal = Field(description="Amount moved.", examples=[300])
    total: Decimal = Field(description="Amount with fees (there are none).", examples=[300])
    created_at: str = Field(description="UTC, milliseconds.", examples=["2014-09-25T14:26:47.406Z"])
    status: str = Field(
        description="completed (the money moved) or declined (it could not, e.g. insufficient funds).",
        examples=["completed"],
    )
    type: str = Field(description="Always p2p.", examples=["p2p"])
    wallet: PhoneOut = Field(description="The payer's wallet.")
    destination: PhoneOut = Field(description="The recipient's wallet.")
    direction: str = Field(description="Always out (money leaves the caller).", examples=["out"])
    message: str | None = Field(description="The invoice's message.", examples=["Test invoice"])


class PaymentMeta(BaseModel):
    code: int = Field(description="200, or 402 when the payment was declined.", examples=[200])
    next_action: str | None = Field(
        description="null: the payment is settled, nothing is left to do.", examples=[None]
    )
    time: float = Field(description="Seconds the payment took.", examples=[0.012])
    error: str | None = Field(
        default=None, description="Only when declined: why.", examples=["insufficient_funds"]
    )
    message: str | None = Field(default=None, description="Only when declined: in words.")


class PaymentResult(BaseModel):
    meta: PaymentMeta
    data: PaymentOut


class PaymentEnvelope(BaseModel):
    meta: Meta
    data: PaymentResult
