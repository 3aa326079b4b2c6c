"""Logging in and out, choosing the organization and the language."""

from __future__ import annotations

import secrets
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from invoicehub.errors import AppError
from invoicehub.users import service as users
from invoicehub.web.dashboard.common import (
    LOGIN_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    CsrfRefused,
    FormCtx,
    cookie_secure,
    db,
    render,
    runtime_of,
    see_other,
    signer,
)
from invoicehub.web.i18n import LANGUAGES

router = APIRouter()


def _safe_next(value: str | None) -> str:
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def _login_page(
    request: Request, *, error: AppError | None = None, email: str = "", next_path: str = ""
) -> HTMLResponse:
    binding = request.cookies.get(LOGIN_COOKIE) or ""
    fresh = len(binding) < 20
    if fresh:
        binding = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        None,
        {
            "login_csrf": signer(request).csrf_token("login:" + binding),
            "error": error,
            "email": email,
            "next": _safe_next(next_path or request.query_params.get("next")),
        },
        status=error.status_code if error else 200,
    )
    if fresh:
        response.set_cookie(
            LOGIN_COOKIE,
            binding,
            max_age=3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=cookie_secure(request),
        )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse, response_model=None)
async def log_in(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    binding = request.cookies.get(LOGIN_COOKIE) or ""
    if not binding or not signer(request).csrf_ok("login:" + binding, csrf_token):
        return _login_page(
            request,
            error=CsrfRefused(
                "the login form expired or was sent from elsewhere; please try again"
            ),
            email=email,
            next_path=next,
        )
    runtime = runtime_of(request)
    login = users.DashboardLogin(runtime.database, runtime.settings)
    try:
        # Its own short transactions, and the argon2 check and any delay off the event loop.
        issued = await anyio.to_thread.run_sync(login.log_in, email, password)
    except AppError as error:
        return _login_page(request, error=error, email=email, next_path=next)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        issued.cookie_value,
        max_age=runtime.settings.dashboard_session_hours * 3600,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout", response_model=None)
def log_out(request: Request, context: FormCtx) -> Response:
    users.log_out(db(request), context)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.post("/organization/switch", response_model=None)
def switch_organization(
    request: Request,
    context: FormCtx,
    organization: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    users.switch_organization(db(request), context, organization)
    return see_other("")


@router.post("/language", response_model=None)
def choose_language(
    request: Request,
    context: FormCtx,
    language: Annotated[str, Form(max_length=5)] = "",
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    users.set_language(db(request), context, language if language in LANGUAGES else None)
    return RedirectResponse(_safe_next(back), status_code=303)
