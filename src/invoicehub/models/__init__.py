"""Every table, re-exported so Alembic sees the whole schema from one import."""

from invoicehub.kit.db import Base
from invoicehub.models.account import Account
from invoicehub.models.api_key import ApiKey
from invoicehub.models.bot import Bot
from invoicehub.models.event import Event
from invoicehub.models.idempotency_key import IdempotencyKey
from invoicehub.models.invoice import Invoice
from invoicehub.models.invoice_line_item import InvoiceLineItem
from invoicehub.models.invoice_number_sequence import InvoiceNumberSequence
from invoicehub.models.ledger_entry import LedgerEntry
from invoicehub.models.order import Order
from invoicehub.models.organization import Organization
from invoicehub.models.payment import Payment
from invoicehub.models.provider_event import ProviderEvent
from invoicehub.models.store import Store
from invoicehub.models.transfer import Transfer
from invoicehub.models.webhook_attempt import WebhookAttempt
from invoicehub.models.webhook_delivery import WebhookDelivery
from invoicehub.models.webhook_endpoint import WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Bot",
    "Event",
    "IdempotencyKey",
    "Invoice",
    "InvoiceLineItem",
    "InvoiceNumberSequence",
    "LedgerEntry",
    "Order",
    "Organization",
    "Payment",
    "ProviderEvent",
    "Store",
    "Transfer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
