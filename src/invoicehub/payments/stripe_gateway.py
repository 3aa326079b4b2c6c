"""Stripe, through the official ``stripe`` library: Checkout Sessions for payment links,
refunds, and the verification of Stripe's webhook signatures.

The API base is a setting, so tests run against a local fake Stripe server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import stripe

from invoicehub.config import Settings
from invoicehub.errors import AppError
from invoicehub.kit.money import currency
from invoicehub.models import Invoice


class PaymentProviderError(AppError):
    status_code = 502
    error_type = "api_error"
    default_code = "payment_provider_error"


class SignatureInvalid(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class StripeGateway:
    settings: Settings

    def client(self) -> stripe.StripeClient:
        assert self.settings.stripe_secret_key
        return stripe.StripeClient(
            self.settings.stripe_secret_key,
            base_addresses={"api": self.settings.stripe_api_base},
            max_network_retries=2,
        )

    def create_checkout(self, invoice: Invoice, pay_url: str) -> tuple[str, str]:
        """A Checkout Session for what the invoice still owes; returns its id and URL."""
        due = invoice.total_minor - invoice.amount_paid_minor
        metadata = {
            "invoicehub_invoice_id": invoice.public_id,
            "invoicehub_organization_id": str(invoice.organization_id),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": invoice.public_id,
            "success_url": f"{pay_url}?paid=1",
            "cancel_url": pay_url,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency(invoice.currency).code.lower(),
                        "unit_amount": due,
                        "product_data": {"name": f"Invoice {invoice.number}"},
                    },
                }
            ],
        }
        if invoice.customer_email:
            params["customer_email"] = invoice.customer_email
        try:
            session = self.client().v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise PaymentProviderError(
                f"Stripe refused the checkout: {exc.user_message or exc}"
            ) from exc
        if not session.url:
            raise PaymentProviderError("Stripe returned a checkout without a URL")
        return session.id, session.url

    def refund(self, payment_intent: str, amount_minor: int) -> str:
        try:
            refund = self.client().v1.refunds.create(
                params={"payment_intent": payment_intent, "amount": amount_minor}
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(
                f"Stripe refused the refund: {exc.user_message or exc}"
            ) from exc
        return refund.id


def verify_signature(
    payload: bytes, header: str | None, *, secret: str, tolerance: int, now: int
) -> dict[str, Any]:
    """Checks ``Stripe-Signature: t=…,v1=…`` (HMAC-SHA256 of "t.payload", constant-time
    compare, the timestamp within ``tolerance`` seconds either way) and returns the event."""
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("Stripe-Signature needs t= and v1=")
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid("Stripe-Signature timestamp is outside the tolerance")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureInvalid("no v1 signature matches")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise SignatureInvalid("the body is not JSON") from exc
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise SignatureInvalid("the body is not a Stripe event")
    return event
