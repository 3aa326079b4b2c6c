"""Getting paid: payment links, the sandbox provider, and money reported by providers.

Every path that moves an invoice goes through the invoice service's state machine; this
module decides *which* move a provider's news means.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from invoicehub.errors import AppError, Conflict, NotFound, ValidationFailed
from invoicehub.invoices import repository as invoices_repository
from invoicehub.invoices import service as invoices
from invoicehub.invoices import states
from invoicehub.invoices.service import InvoiceView
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.kit.money import MoneyError, currency, format_amount, from_minor, to_minor
from invoicehub.models import Invoice, Organization, Payment
from invoicehub.orgs import repository as orgs_repository
from invoicehub.payments import repository as payments_repository
from invoicehub.payments.sandbox import (
    DECLINE_MESSAGES,
    CardForm,
    CardInvalid,
    CardOutcome,
    check_card,
)
from invoicehub.payments.schemas import PaymentLink

# A provider's checkout for a new link: (invoice, pay page URL) -> (checkout id, checkout URL).
CheckoutFactory = Callable[[Invoice, str], tuple[str, str]]


def link_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits: unguessable


# ------------------------------------------------------------------ links


def create_payment_link(
    session: Session,
    organization_id: int,
    invoice_public_id: str,
    *,
    public_url: str,
    expires_at: dt.datetime | None = None,
    checkout: CheckoutFactory | None = None,
) -> InvoiceView:
    """Gives the invoice its one payment link (a draft is finalized by it: it is being sent).
    409 when a usable link exists already."""
    now = clock.utcnow()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed(
            "expires_at must be in the future", param="expires_at", code="invalid_expires_at"
        )
    current = invoices.get_invoice(
        session, organization_id, invoice_public_id, with_lines=False
    ).invoice
    if current.payment_link_token and (
        current.payment_link_expires_at is None or current.payment_link_expires_at > now
    ):
        raise Conflict(
            f"invoice {invoice_public_id} already has a payment link", code="payment_link_exists"
        )
    if current.status not in states.LINKABLE:
        raise Conflict(
            f"invoice {invoice_public_id} is {current.status}; links are made for draft or open invoices",
            code="invoice_not_payable",
        )
    if current.status == InvoiceStatus.DRAFT:
        invoices.finalize_invoice(session, organization_id, invoice_public_id)
    organization = _organization(session, organization_id)
    token = link_token()
    url = f"{public_url.rstrip('/')}/pay/{token}"
    values: dict[str, object] = {
        "payment_link_token": token,
        "payment_url": url,
        "payment_link_created_at": now,
        "payment_link_expires_at": expires_at,
        "payment_provider": organization.payment_provider,
        "provider_checkout_id": None,
        "provider_checkout_url": None,
    }
    if organization.payment_provider != "sandbox":
        if checkout is None:
            raise Conflict(
                f"the {organization.payment_provider} provider is not configured on this server",
                code="payment_provider_unavailable",
            )
        checkout_id, checkout_url = checkout(current, url)
        values.update(provider_checkout_id=checkout_id, provider_checkout_url=checkout_url)
    invoice = invoices_repository.set_payment_link(
        session,
        organization_id,
        invoice_public_id,
        values=values,
        now=now,
        from_statuses=(InvoiceStatus.OPEN,),
    )
    if invoice is None:
        raise Conflict(
            f"invoice {invoice_public_id} already has a payment link", code="payment_link_exists"
        )
    return InvoiceView(invoice, None)


def present_link(invoice: Invoice) -> PaymentLink:
    assert invoice.payment_url is not None
    assert invoice.payment_link_token is not None
    assert invoice.payment_link_created_at is not None
    return PaymentLink(
        invoice_id=invoice.public_id,
        url=invoice.payment_url,
        token=invoice.payment_link_token,
        qr_png_url=f"{invoice.payment_url}/qr.png",
        pdf_url=f"{invoice.payment_url}/invoice.pdf",
        provider=invoice.payment_provider or "sandbox",
        provider_url=invoice.provider_checkout_url,
        provider_checkout_id=invoice.provider_checkout_id,
        expires_at=invoice.payment_link_expires_at,
        created_at=invoice.payment_link_created_at,
    )


def get_payment_link(session: Session, organization_id: int, invoice_public_id: str) -> PaymentLink:
    invoice = invoices.get_invoice(
        session, organization_id, invoice_public_id, with_lines=False
    ).invoice
    if invoice.payment_link_token is None:
        raise NotFound(
            f"invoice {invoice_public_id} has no payment link",
            param="id",
            code="payment_link_not_found",
        )
    return present_link(invoice)


# ------------------------------------------------------------------ the pay page


@dataclass(slots=True)
class PayPage:
    """Everything the customer's page shows; built by the service so the page holds no rules."""

    view: InvoiceView
    organization: Organization
    link_expired: bool
    # The attempt waiting for the customer's confirmation (3-D Secure), so they can return to it.
    waiting_payment_id: str | None = None

    @property
    def invoice(self) -> Invoice:
        return self.view.invoice

    @property
    def payable(self) -> bool:
        return (
            self.invoice.status == InvoiceStatus.OPEN
            and not self.link_expired
            and self.amount_due_minor > 0
        )

    @property
    def amount_due_minor(self) -> int:
        return self.invoice.total_minor - self.invoice.amount_paid_minor

    @property
    def awaiting_confirmation(self) -> bool:
        return self.invoice.status == InvoiceStatus.PROCESSING


def open_pay_page(session: Session, token: str, *, record_view: bool) -> PayPage:
    """The page behind /pay/<token>. The first view by the customer sets viewed_at."""
    invoice = invoices_repository.get_by_link_token(session, token)
    if invoice is None:
        raise NotFound("no such payment link", param="token", code="payment_link_not_found")
    if record_view and invoice.viewed_at is None:
        invoices.mark_viewed(session, invoice.organization_id, invoice.public_id)
        invoice = invoices_repository.get_by_link_token(session, token)
        assert invoice is not None
    lines = invoices_repository.lines_of(session, [invoice.id])[invoice.id]
    expired = (
        invoice.payment_link_expires_at is not None
        and invoice.payment_link_expires_at <= clock.utcnow()
    )
    waiting = None
    if invoice.status == InvoiceStatus.PROCESSING:
        attempt = invoices_repository.processing_payment(session, invoice.id)
        waiting = (
            attempt.public_id if attempt is not None and attempt.provider == "sandbox" else None
        )
    return PayPage(
        InvoiceView(invoice, lines),
        _organization(session, invoice.organization_id),
        expired,
        waiting,
    )


class CardResult(StrEnum):
    PAID = "paid"
    DECLINED = "declined"
    NEEDS_CONFIRMATION = "needs_confirmation"
    INVALID = "invalid"
    NOT_PAYABLE = "not_payable"


@dataclass(frozen=True, slots=True)
class CardPayment:
    result: CardResult
    message: str | None = None
    field: str | None = None
    payment_id: str | None = None


def pay_with_card(session: Session, token: str, form: CardForm) -> CardPayment:
    """The sandbox card form: open -> processing -> paid, declined back to open, or waiting
    for the extra confirmation step."""
    page = open_pay_page(session, token, record_view=False)
    if page.invoice.payment_provider not in (None, "sandbox"):
        return CardPayment(CardResult.NOT_PAYABLE, "this invoice is paid through another provider")
    if not page.payable:
        return CardPayment(CardResult.NOT_PAYABLE, "this invoice cannot be paid now")
    try:
        outcome = check_card(form, today=clock.today())
    except CardInvalid as exc:
        return CardPayment(CardResult.INVALID, exc.code, field=exc.field)
    digits = "".join(ch for ch in form.number if ch.isdigit())
    organization_id, invoice_id = page.invoice.organization_id, page.invoice.public_id
    _, payment = invoices.start_payment_attempt(
        session,
        organization_id,
        invoice_id,
        provider="sandbox",
        reference=f"card ending {digits[-4:]}",
    )
    if outcome == CardOutcome.SUCCEEDED:
        invoices.complete_payment_attempt(session, organization_id, payment.public_id)
        return CardPayment(CardResult.PAID, payment_id=payment.public_id)
    if outcome == CardOutcome.REQUIRES_CONFIRMATION:
        return CardPayment(CardResult.NEEDS_CONFIRMATION, payment_id=payment.public_id)
    reason = DECLINE_MESSAGES[outcome]
    invoices.decline_payment_attempt(session, organization_id, payment.public_id, reason=reason)
    return CardPayment(CardResult.DECLINED, reason.split(": ", 1)[1], payment_id=payment.public_id)


def confirm_card_payment(
    session: Session, token: str, payment_public_id: str, *, approve: bool
) -> CardPayment:
    """The extra confirmation step (3-D Secure): approve completes it, anything else declines."""
    page = open_pay_page(session, token, record_view=False)
    organization_id = page.invoice.organization_id
    payment = invoices_repository.get_payment(session, organization_id, payment_public_id)
    if payment is None or payment.invoice_id != page.invoice.id or payment.status != "processing":
        return CardPayment(CardResult.NOT_PAYABLE, "there is no payment waiting for confirmation")
    if approve:
        invoices.complete_payment_attempt(session, organization_id, payment_public_id)
        return CardPayment(CardResult.PAID, payment_id=payment_public_id)
    invoices.decline_payment_attempt(
        session,
        organization_id,
        payment_public_id,
        reason="authentication_failed: the payment was not confirmed",
    )
    return CardPayment(
        CardResult.DECLINED, "the payment was not confirmed", payment_id=payment_public_id
    )


# ------------------------------------------------------------------ provider news


def receive_provider_payment(
    session: Session,
    organization_id: int,
    invoice_public_id: str,
    *,
    amount_minor: int,
    currency_code: str,
    provider: str,
    reference: str | None,
    exact: bool = False,
    gateway: StripeGatewayLike | None = None,
) -> Payment | InvoiceView:
    """A provider says money arrived for an invoice. Whatever the invoice's state, the money
    is recorded: as a payment, a late payment (cancelled/expired), or flagged for review
    (wrong currency or amount, or paid twice). Returns the view, or the flagged payment.

    The invoice's row is locked first, so two reports arriving together are decided one
    after the other, each on the invoice as the other left it. ``exact``: the provider
    charged a fixed amount (a checkout), so anything but the amount due is a mismatch."""
    invoices_repository.lock(session, organization_id, invoice_public_id)
    invoice = invoices.get_invoice(
        session, organization_id, invoice_public_id, with_lines=False
    ).invoice
    cur = currency(invoice.currency)

    def flag(reason: str) -> Payment:
        return invoices.flag_payment_for_review(
            session,
            organization_id,
            invoice_public_id,
            amount_minor=amount_minor,
            currency_code=currency_code.upper(),
            provider=provider,
            reference=reference,
            reason=reason,
        )

    if currency_code.upper() != invoice.currency:
        return flag(f"paid in {currency_code.upper()}, but the invoice is in {invoice.currency}")
    due = invoice.total_minor - invoice.amount_paid_minor
    organization = _organization(session, organization_id)
    if invoice.status in states.LATE_PAYABLE:
        if amount_minor > due:
            return flag(
                f"{format_amount(amount_minor, cur)} arrived for a closed invoice owing {format_amount(due, cur)}"
            )
        if organization.late_payment_policy == "refund" and provider == "stripe":
            # The policy sends the money back where it came from; without Stripe here, a person must.
            if gateway is None or reference is None:
                return flag(
                    "paid after the invoice was closed: refund it at Stripe (not configured here)"
                )
            gateway.refund(reference, amount_minor)
        view, _ = invoices.record_late_payment(
            session,
            organization_id,
            invoice_public_id,
            amount_minor=amount_minor,
            provider=provider,
            reference=reference,
        )
        return view
    if invoice.status != InvoiceStatus.OPEN:
        return flag(f"payment arrived while the invoice is {invoice.status}")
    short = amount_minor < due and (exact or not organization.allow_partial_payments)
    if amount_minor > due or short:
        return flag(
            f"{format_amount(amount_minor, cur)} does not match the {format_amount(due, cur)} {cur.code} due"
        )
    return invoices.record_payment(
        session,
        organization_id,
        invoice_public_id,
        amount=from_minor(amount_minor, cur),
        provider=provider,
        reference=reference,
    )


def simulate_payment(
    session: Session,
    organization_id: int,
    invoice_public_id: str,
    *,
    outcome: str,
    amount: Decimal | None,
) -> InvoiceView:
    """For scripts and tests on the sandbox provider: what a customer's payment would do."""
    organization = _organization(session, organization_id)
    if organization.payment_provider != "sandbox":
        raise Conflict(
            "simulate-payment works only for organizations on the sandbox provider",
            code="not_sandbox",
        )
    invoice = invoices.get_invoice(
        session, organization_id, invoice_public_id, with_lines=False
    ).invoice
    cur = currency(invoice.currency)
    due = invoice.total_minor - invoice.amount_paid_minor
    if outcome == "partial":
        if amount is None:
            amount = from_minor(max(1, due // 2), cur)
    elif outcome == "succeeded" and amount is None:
        amount = from_minor(due, cur)
    if invoice.status in states.LATE_PAYABLE and outcome != "declined":
        assert amount is not None
        result = receive_provider_payment(
            session,
            organization_id,
            invoice_public_id,
            amount_minor=_minor(amount, cur.code),
            currency_code=cur.code,
            provider="sandbox",
            reference="simulated",
        )
        return (
            result
            if isinstance(result, InvoiceView)
            else invoices.get_invoice(session, organization_id, invoice_public_id)
        )
    _, payment = invoices.start_payment_attempt(
        session,
        organization_id,
        invoice_public_id,
        provider="sandbox",
        amount=amount,
        reference="simulated",
    )
    if outcome == "declined":
        return invoices.decline_payment_attempt(
            session, organization_id, payment.public_id, reason="card_declined: simulated decline"
        )
    return invoices.complete_payment_attempt(session, organization_id, payment.public_id)


def _minor(amount: Decimal, code: str) -> int:
    try:
        return to_minor(amount, currency(code))
    except MoneyError as exc:
        raise ValidationFailed(str(exc), param="amount", code="invalid_amount") from exc


def _organization(session: Session, organization_id: int) -> Organization:
    organization = orgs_repository.get(session, organization_id)
    if organization is None:
        raise NotFound("organization not found")
    return organization


# ------------------------------------------------------------------ refunds


def refund(
    session: Session,
    organization_id: int,
    invoice_public_id: str,
    *,
    amount: Decimal | None,
    reason: str | None,
    gateway: StripeGatewayLike | None,
) -> InvoiceView:
    """Refunds go back through the provider that took the payment. What Stripe took (and has
    not refunded yet) is refunded at Stripe first; any rest, paid outside, is recorded as a
    manual refund. Nothing moves at Stripe unless the state machine allows the refund."""
    invoices_repository.lock(session, organization_id, invoice_public_id)
    invoice = invoices.get_invoice(
        session, organization_id, invoice_public_id, with_lines=False
    ).invoice
    stripe_payment = payments_repository.last_provider_payment(session, invoice.id, "stripe")
    if stripe_payment is None or stripe_payment.provider_reference is None:
        return invoices.refund_invoice(
            session, organization_id, invoice_public_id, amount=amount, reason=reason
        )
    cur = currency(invoice.currency)
    refundable = invoice.amount_paid_minor - invoice.amount_refunded_minor
    minor = refundable if amount is None else _minor(amount, cur.code)
    if invoice.status not in states.REFUNDABLE or minor <= 0 or minor > refundable:
        # Let the state machine refuse it, with its own words.
        return invoices.refund_invoice(
            session, organization_id, invoice_public_id, amount=amount, reason=reason
        )
    intent = stripe_payment.provider_reference
    left_at_stripe = stripe_payment.amount_minor - payments_repository.refunded_through(
        session, invoice.id, "stripe", intent
    )
    through_stripe = min(minor, max(0, left_at_stripe))
    view = None
    if through_stripe > 0:
        if gateway is None:
            raise Conflict(
                "this invoice was paid through Stripe, which is not configured here",
                code="payment_provider_unavailable",
            )
        gateway.refund(intent, through_stripe)
        view = invoices.refund_invoice(
            session,
            organization_id,
            invoice_public_id,
            amount=from_minor(through_stripe, cur),
            reason=reason,
            provider="stripe",
            reference=intent,
        )
    rest = minor - through_stripe
    if rest > 0:
        view = invoices.refund_invoice(
            session, organization_id, invoice_public_id, amount=from_minor(rest, cur), reason=reason
        )
    assert view is not None
    return view


class StripeGatewayLike(Protocol):
    def refund(self, payment_intent: str, amount_minor: int) -> str: ...


# ------------------------------------------------------------------ Stripe's webhooks


def handle_stripe_event(
    session: Session, event: dict[str, Any], *, gateway: StripeGatewayLike | None = None
) -> str:
    """Applies one verified Stripe event, once per event id. 004's mapping:
    checkout.session.completed / payment_intent.succeeded -> paid, charge.refunded ->
    refunded, invoice.payment_failed -> overdue. Returns what was done (kept on record)."""
    row_id = payments_repository.record_provider_event(
        session, provider="stripe", event_id=str(event["id"]), type_=str(event["type"])
    )
    if row_id is None:
        return "duplicate event: already handled"
    obj = (event.get("data") or {}).get("object") or {}
    invoice = _stripe_invoice(session, obj)
    if invoice is None:
        payments_repository.set_provider_event_outcome(
            session, row_id, invoice_public_id=None, outcome="ignored: not an invoicehub payment"
        )
        return "ignored: not an invoicehub payment"
    try:
        with session.begin_nested():
            outcome = _apply_stripe_event(session, str(event["type"]), obj, invoice, gateway)
    except AppError as exc:
        outcome = f"not applied: {exc.message}"
    payments_repository.set_provider_event_outcome(
        session, row_id, invoice_public_id=invoice.public_id, outcome=outcome
    )
    return outcome


def _stripe_invoice(session: Session, obj: dict[str, Any]) -> Invoice | None:
    metadata = obj.get("metadata") or {}
    invoice_id = metadata.get("invoicehub_invoice_id")
    organization_id = str(metadata.get("invoicehub_organization_id") or "")
    if invoice_id and organization_id.isdigit():
        found = invoices_repository.get(session, int(organization_id), str(invoice_id))
        if found is not None:
            return found
    intent = obj.get("payment_intent") if obj.get("object") != "payment_intent" else obj.get("id")
    if isinstance(intent, str):
        return payments_repository.invoice_for_provider_reference(session, "stripe", intent)
    return None


def _apply_stripe_event(
    session: Session,
    type_: str,
    obj: dict[str, Any],
    invoice: Invoice,
    gateway: StripeGatewayLike | None,
) -> str:
    organization_id, invoice_id = invoice.organization_id, invoice.public_id
    # One event at a time per invoice: Stripe sends checkout.session.completed and
    # payment_intent.succeeded for one payment together; the second must see the first.
    invoices_repository.lock(session, organization_id, invoice_id)
    if type_ in ("checkout.session.completed", "payment_intent.succeeded"):
        if type_ == "checkout.session.completed":
            if obj.get("payment_status") != "paid":
                return "ignored: the session is not paid"
            amount, intent = obj.get("amount_total"), obj.get("payment_intent") or obj.get("id")
        else:
            amount, intent = obj.get("amount_received"), obj.get("id")
        if (
            not isinstance(amount, int)
            or not isinstance(intent, str)
            or not isinstance(obj.get("currency"), str)
        ):
            return "ignored: the event has no amount, currency or payment"
        if payments_repository.payment_recorded(session, invoice.id, "stripe", intent):
            return "duplicate payment: already recorded"
        result = receive_provider_payment(
            session,
            organization_id,
            invoice_id,
            amount_minor=amount,
            currency_code=obj["currency"],
            provider="stripe",
            reference=intent,
            exact=True,
            gateway=gateway,
        )
        return (
            f"flagged for review: {result.failure_reason}"
            if isinstance(result, Payment)
            else f"invoice is {result.invoice.status}"
        )
    if type_ == "charge.refunded":
        intent, refunded = obj.get("payment_intent"), obj.get("amount_refunded")
        if not isinstance(intent, str) or not isinstance(refunded, int):
            return "ignored: the charge has no payment or refunded amount"
        missing = refunded - payments_repository.refunded_through(
            session, invoice.id, "stripe", intent
        )
        if missing <= 0:
            return "refund already recorded"
        view = invoices.refund_invoice(
            session,
            organization_id,
            invoice_id,
            amount=from_minor(missing, currency(invoice.currency)),
            reason="refunded at Stripe",
            provider="stripe",
            reference=intent,
        )
        return f"invoice is {view.invoice.status}"
    if type_ == "invoice.payment_failed":
        marked = invoices.mark_overdue(
            session, organization_id, invoice_id, reason="payment failed at Stripe"
        )
        return "invoice marked overdue" if marked else "already overdue or not open"
    return f"ignored: {type_} is not used"
