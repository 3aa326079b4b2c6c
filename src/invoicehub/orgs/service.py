"""Organizations: the owner of invoices, keys and settings."""

from __future__ import annotations

from sqlalchemy.orm import Session

from invoicehub.config import Settings
from invoicehub.errors import Conflict, NotFound, ValidationFailed
from invoicehub.invoices.numbering import validate_number_pattern
from invoicehub.kit import clock
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.money import MoneyError, currency
from invoicehub.models import Organization
from invoicehub.orgs import repository
from invoicehub.orgs.schemas import OrganizationUpdate


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
            late_payment_policy="accept",
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


def get_organization_by_id(session: Session, organization_id: int) -> Organization:
    organization = repository.get(session, organization_id)
    if organization is None:
        raise NotFound("organization not found")
    return organization


def update_organization(
    session: Session,
    organization_id: int,
    data: OrganizationUpdate,
    *,
    stripe_configured: bool = False,
) -> Organization:
    values: dict[str, object] = {}
    given = data.model_fields_set
    if data.payment_provider == "stripe" and not stripe_configured:
        raise ValidationFailed(
            "the stripe provider needs INVOICEHUB_STRIPE_SECRET_KEY on this server",
            param="payment_provider",
            code="payment_provider_unavailable",
        )
    for name in (
        "name",
        "default_due_days",
        "allow_partial_payments",
        "payment_provider",
        "late_payment_policy",
    ):
        if name in given:
            if getattr(data, name) is None:
                raise ValidationFailed(f"{name} cannot be null", param=name)
            values[name] = getattr(data, name)
    if "default_currency" in given:
        try:
            values["default_currency"] = currency(data.default_currency or "").code
        except MoneyError as exc:
            raise ValidationFailed(
                str(exc), param="default_currency", code="invalid_currency"
            ) from exc
    if "invoice_number_pattern" in given:
        if not data.invoice_number_pattern:
            raise ValidationFailed(
                "invoice_number_pattern cannot be null", param="invoice_number_pattern"
            )
        validate_number_pattern(data.invoice_number_pattern)
        values["invoice_number_pattern"] = data.invoice_number_pattern
    if not values:
        return get_organization_by_id(session, organization_id)
    values["updated_at"] = clock.utcnow()
    organization = repository.update_fields(session, organization_id, values)
    if organization is None:
        raise NotFound("organization not found")
    return organization


def request_verification(session: Session, organization_id: int) -> Organization:
    """A sandbox organization (no real money moves) is verified at once when its owner asks;
    one that takes real payments is verified by the operator (`invoicehub org verify`)."""
    organization = get_organization_by_id(session, organization_id)
    if organization.payment_provider != "sandbox":
        raise Conflict(
            "an organization that takes real payments is verified by the operator of this "
            f"server: invoicehub org verify {organization.public_id}",
            code="verification_needs_operator",
        )
    return verify_organization(session, organization.public_id)
