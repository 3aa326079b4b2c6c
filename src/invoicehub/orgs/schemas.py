from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from invoicehub.kit.schemas import RequestModel, ResponseModel


class Organization(ResponseModel):
    id: str = Field(description="Organization id.", examples=["org_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["organization"] = "organization"
    name: str = Field(examples=["Acme LLP"])
    verified: bool = Field(
        description="Verified organizations may use APIs that require it (ApiPay)."
    )
    default_currency: str = Field(examples=["KZT"])
    invoice_number_pattern: str = Field(examples=["INV-{YYYY}-{seq:04}"])
    default_due_days: int = Field(
        description="Due date = issue date + this many days.", examples=[30]
    )
    allow_partial_payments: bool = Field(description="Whether an invoice may be paid in parts.")
    payment_provider: str = Field(
        description="Provider new payment links use.", examples=["sandbox"]
    )
    late_payment_policy: str = Field(
        description="Money for a cancelled or expired invoice: accept (it becomes paid) or refund.",
        examples=["accept"],
    )
    created_at: dt.datetime


class OrganizationUpdate(RequestModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, examples=["Acme LLP"]
    )
    default_currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] | None = Field(
        default=None, examples=["KZT"]
    )
    invoice_number_pattern: (
        Annotated[str, StringConstraints(min_length=1, max_length=100)] | None
    ) = Field(default=None, examples=["{YYYY}/{MM}/{seq:03}"])
    default_due_days: Annotated[int, Field(ge=0, le=3650)] | None = Field(
        default=None, examples=[14]
    )
    allow_partial_payments: bool | None = None
    payment_provider: Literal["sandbox", "stripe"] | None = Field(
        default=None, description="stripe needs INVOICEHUB_STRIPE_SECRET_KEY on the server."
    )
    late_payment_policy: Literal["accept", "refund"] | None = None


def organization_to_schema(organization: object) -> Organization:
    from invoicehub.models import Organization as Model

    assert isinstance(organization, Model)
    return Organization(
        id=organization.public_id,
        name=organization.name,
        verified=organization.verified,
        default_currency=organization.default_currency,
        invoice_number_pattern=organization.invoice_number_pattern,
        default_due_days=organization.default_due_days,
        allow_partial_payments=organization.allow_partial_payments,
        payment_provider=organization.payment_provider,
        late_payment_policy=organization.late_payment_policy,
        created_at=organization.created_at,
    )
