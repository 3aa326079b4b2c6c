from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field

from invoicehub.kit.schemas import AmountIn, RequestModel, ResponseModel


class PaymentLinkCreate(RequestModel):
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the link stops taking payments (the invoice stays open)."
    )


class PaymentLink(ResponseModel):
    object: Literal["payment_link"] = "payment_link"
    invoice_id: str = Field(examples=["inv_5f0c2b9e1d7a4c3b8e6f9a01"])
    url: str = Field(
        description="The hosted pay page to send the customer to.",
        examples=["https://pay.example/pay/Xb3…"],
    )
    token: str = Field(description="The link's token (also the QR token).")
    qr_png_url: str = Field(description="A PNG QR code of url.")
    pdf_url: str = Field(description="The invoice as PDF, for the customer.")
    provider: str = Field(description="sandbox or stripe.", examples=["sandbox"])
    provider_url: str | None = Field(
        description="The provider's own checkout page, when it has one (Stripe)."
    )
    provider_checkout_id: str | None = Field(
        description="The provider's id for it (a Stripe Checkout Session id)."
    )
    expires_at: dt.datetime | None
    created_at: dt.datetime


class SimulatePayment(RequestModel):
    outcome: Literal["succeeded", "declined", "partial"] = Field(
        description="succeeded pays what is due (or amount); declined records a declined attempt; partial pays amount (default half)."
    )
    amount: AmountIn | None = Field(default=None, examples=["100.00"])

    def amount_or(self, default: Decimal) -> Decimal:
        return self.amount if self.amount is not None else default
