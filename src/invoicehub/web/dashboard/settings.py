"""The organization's settings and its verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from invoicehub.errors import AppError
from invoicehub.orgs import service as orgs
from invoicehub.orgs.schemas import OrganizationUpdate
from invoicehub.users.service import DashboardContext, require_owner
from invoicehub.web.dashboard.common import (
    Ctx,
    FormCtx,
    db,
    invalid_input,
    render,
    runtime_of,
    see_other,
)
from invoicehub.web.dashboard.invoices import CURRENCIES

router = APIRouter()


def _page(
    request: Request,
    context: DashboardContext,
    *,
    error: AppError | None = None,
    form: dict[str, object] | None = None,
) -> HTMLResponse:
    organization = orgs.get_organization_by_id(db(request), context.organization_id)
    return render(
        request,
        "settings.html",
        context,
        {
            "organization": organization,
            "form": form
            or {
                "name": organization.name,
                "default_currency": organization.default_currency,
                "invoice_number_pattern": organization.invoice_number_pattern,
                "default_due_days": str(organization.default_due_days),
                "allow_partial_payments": organization.allow_partial_payments,
                "payment_provider": organization.payment_provider,
                "late_payment_policy": organization.late_payment_policy,
            },
            "currencies": CURRENCIES,
            "stripe_available": bool(runtime_of(request).settings.stripe_secret_key),
            "error": error,
            "done": request.query_params.get("done"),
        },
        status=error.status_code if error else 200,
        section="settings",
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, context: Ctx) -> HTMLResponse:
    return _page(request, context)


@router.post("/settings", response_model=None)
def save_settings(
    request: Request,
    context: FormCtx,
    name: Annotated[str, Form(max_length=200)] = "",
    default_currency: Annotated[str, Form(max_length=3)] = "",
    invoice_number_pattern: Annotated[str, Form(max_length=100)] = "",
    default_due_days: Annotated[str, Form(max_length=5)] = "",
    allow_partial_payments: Annotated[str, Form(max_length=5)] = "",
    payment_provider: Annotated[str, Form(max_length=20)] = "",
    late_payment_policy: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_owner(context)
    form: dict[str, object] = {
        "name": name,
        "default_currency": default_currency,
        "invoice_number_pattern": invoice_number_pattern,
        "default_due_days": default_due_days,
        "allow_partial_payments": allow_partial_payments == "true",
        "payment_provider": payment_provider,
        "late_payment_policy": late_payment_policy,
    }
    try:
        try:
            data = OrganizationUpdate.model_validate(
                {
                    "name": name.strip(),
                    "default_currency": default_currency,
                    "invoice_number_pattern": invoice_number_pattern.strip(),
                    "default_due_days": default_due_days.strip(),
                    "allow_partial_payments": allow_partial_payments == "true",
                    "payment_provider": payment_provider,
                    "late_payment_policy": late_payment_policy,
                }
            )
        except ValidationError as exc:
            raise invalid_input(exc) from None
        orgs.update_organization(
            db(request),
            context.organization_id,
            data,
            stripe_configured=bool(runtime_of(request).settings.stripe_secret_key),
        )
    except AppError as error:
        return _page(request, context, error=error, form=form)
    return see_other("/settings", done="saved")


@router.post("/settings/verify", response_model=None)
def verify(request: Request, context: FormCtx) -> Response:
    """A sandbox organization verifies itself at once; one that takes real money (Stripe) is
    verified by the operator (`invoicehub org verify ORG_ID`)."""
    require_owner(context)
    try:
        orgs.request_verification(db(request), context.organization_id)
    except AppError as error:
        return _page(request, context, error=error)
    return see_other("/settings", done="verified")
