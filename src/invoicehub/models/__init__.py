"""Every table, re-exported so Alembic sees the whole schema from one import."""

from invoicehub.kit.db import Base
from invoicehub.models.account import Account
from invoicehub.models.api_key import ApiKey
from invoicehub.models.bot import Bot
from invoicehub.models.dashboard_session import DashboardSession
from invoicehub.models.event import Event
from invoicehub.models.idempotency_key import IdempotencyKey
from invoicehub.models.instance_secret import InstanceSecret
from invoicehub.models.invoice import Invoice
from invoicehub.models.invoice_line_item import InvoiceLineItem
from invoicehub.models.invoice_number_sequence import InvoiceNumberSequence
from invoicehub.models.ledger_entry import LedgerEntry
from invoicehub.models.login_throttle import LoginThrottle
from invoicehub.models.membership import Membership
from invoicehub.models.order import Order
from invoicehub.models.organization import Organization
from invoicehub.models.payment import Payment
from invoicehub.models.provider_event import ProviderEvent
from invoicehub.models.store import Store
from invoicehub.models.transfer import Transfer
from invoicehub.models.user import User
from invoicehub.models.webhook_attempt import WebhookAttempt
from invoicehub.models.webhook_delivery import WebhookDelivery
from invoicehub.models.webhook_endpoint import WebhookEndpoint

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Bot",
    "DashboardSession",
    "Event",
    "IdempotencyKey",
    "InstanceSecret",
    "Invoice",
    "InvoiceLineItem",
    "InvoiceNumberSequence",
    "LedgerEntry",
    "LoginThrottle",
    "Membership",
    "Order",
    "Organization",
    "Payment",
    "ProviderEvent",
    "Store",
    "Transfer",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
