"""The caller's own organization: its settings."""

from __future__ import annotations

from fastapi import APIRouter

from invoicehub.api.deps import Auth, DbSession, RuntimeDep
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.orgs import service
from invoicehub.orgs.schemas import Organization, OrganizationUpdate, organization_to_schema

router = APIRouter(prefix="/v1/organization", tags=["organization"], route_class=OneHopRoute)


@router.get("", response_model=Organization, summary="Your organization")
def get_organization(auth: Auth, session: DbSession) -> Organization:
    return organization_to_schema(service.get_organization_by_id(session, auth.organization_id))


@router.patch("", response_model=Organization, summary="Change your organization's settings")
def update_organization(
    body: OrganizationUpdate, auth: Auth, session: DbSession, runtime: RuntimeDep
) -> Organization:
    organization = service.update_organization(
        session,
        auth.organization_id,
        body,
        stripe_configured=bool(runtime.settings.stripe_secret_key),
    )
    return organization_to_schema(organization)
