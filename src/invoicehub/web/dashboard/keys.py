"""API keys: create one (the secret shown once, on the answer to the form) and revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from invoicehub.auth import service as auth
from invoicehub.errors import AppError
from invoicehub.orgs.service import get_organization_by_id
from invoicehub.users.service import DashboardContext, require_owner
from invoicehub.web.dashboard.common import Ctx, FormCtx, db, render, see_other

router = APIRouter()


def _page(
    request: Request,
    context: DashboardContext,
    *,
    issued: auth.IssuedKey | None = None,
    error: AppError | None = None,
) -> HTMLResponse:
    return render(
        request,
        "api_keys.html",
        context,
        {
            "keys": auth.list_api_keys(db(request), context.organization_id),
            "issued": issued,
            "error": error,
            "done": request.query_params.get("done"),
        },
        status=error.status_code if error else 200,
        section="api_keys",
    )


@router.get("/api-keys", response_class=HTMLResponse)
def key_list(request: Request, context: Ctx) -> HTMLResponse:
    require_owner(context)
    return _page(request, context)


@router.post("/api-keys", response_class=HTMLResponse)
def create_key(
    request: Request, context: FormCtx, name: Annotated[str, Form(max_length=200)] = ""
) -> HTMLResponse:
    require_owner(context)
    organization = get_organization_by_id(db(request), context.organization_id)
    issued = auth.create_api_key(db(request), organization, name=name.strip() or None)
    return _page(request, context, issued=issued)


@router.post("/api-keys/{public_id}/revoke", response_model=None)
def revoke_key(request: Request, context: FormCtx, public_id: str) -> Response:
    require_owner(context)
    try:
        auth.revoke_api_key(db(request), context.organization_id, public_id)
    except AppError as error:
        return _page(request, context, error=error)
    return see_other("/api-keys", done="revoked")
