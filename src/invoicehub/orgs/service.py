"""Organizations: the owner of invoices, keys and settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from invoicehub.config import Settings
from invoicehub.errors import NotFound, ValidationFailed
from invoicehub.invoices.numbering import validate_number_pattern
from invoicehub.kit import clock
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.money import MoneyError, currency
from invoicehub.models import Organization
from invoicehub.orgs import repository


def create_organization(
    session: Session,
    *,
    name: str,
    settings: Settings,
    verified: bool = False,
    default_currency: str | None = None,
    invoice_number_pattern: str | None = None,
) -> Organization:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name must be 1 to 200 characters", param="name")
    try:
        code = currency(default_currency or settings.default_currency).code
    except MoneyError as exc:
        raise ValidationFailed(str(exc), param="default_currency") from exc
    pattern = invoice_number_pattern or settings.default_invoice_number_pattern
    validate_number_pattern(pattern)
    now = clock.utcnow()
    return repository.add(
        session,
        Organization(
            public_id=new_public_id("org"),
            name=name,
            verified=verified,
            default_currency=code,
            invoice_number_pattern=pattern,
            default_due_days=settings.default_due_days,
            allow_partial_payments=True,
            payment_provider="sandbox",
            created_at=now,
            updated_at=now,
        ),
    )


def get_organization(session: Session, public_id: str) -> Organization:
    organization = repository.get_by_public_id(session, public_id)
    if organization is None:
        raise NotFound(f"no organization {public_id}", param="org")
    return organization


def verify_organization(session: Session, public_id: str) -> Organization:
    organization = repository.set_verified(session, public_id, verified=True)
    if organization is None:
        raise NotFound(f"no organization {public_id}", param="org")
    return organization
