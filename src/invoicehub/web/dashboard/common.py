"""What every dashboard page shares: who is logged in, CSRF, the language, and rendering.

The dashboard calls the same services as the API; these helpers only find the person, check
the form's token and turn a service's answer (or refusal) into a page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from invoicehub.api.middleware import SessionHolder
from invoicehub.api.runtime import Runtime
from invoicehub.errors import AppError, Forbidden, NotFound, ValidationFailed
from invoicehub.invoices.schemas import is_overdue
from invoicehub.kit import clock
from invoicehub.models import Invoice
from invoicehub.users import service as users
from invoicehub.users.service import DashboardContext, Signer
from invoicehub.web.dashboard.words import DashboardTranslator
from invoicehub.web.i18n import choose_language

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
SESSION_COOKIE = "invoicehub_session"
LOGIN_COOKIE = "invoicehub_login"  # binds the login form's CSRF token before a session exists
PREFIX = "/dashboard"

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class LoginRequired(Exception):
    """An anonymous visitor (or an ended session) asked for a dashboard page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Forbidden):
    default_code = "csrf_token_invalid"


def is_dashboard(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


def db(request: Request) -> Session:
    holder: SessionHolder = request.state.db
    return holder.session


def signer(request: Request) -> Signer:
    runtime = runtime_of(request)
    return users.signer_for(runtime.database, runtime.settings)


def current_context(request: Request) -> DashboardContext:
    """The logged-in person, or a redirect to the login page."""
    found: DashboardContext | None = getattr(request.state, "dashboard", None)
    if found is not None:
        return found
    token = signer(request).token_from_cookie(request.cookies.get(SESSION_COOKIE))
    context = users.resolve_session(db(request), token) if token else None
    if context is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.dashboard = context
    return context


def checked_form(
    request: Request,
    context: Annotated[DashboardContext, Depends(current_context)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> DashboardContext:
    """Every dashboard form carries the session's CSRF token; one without it changes nothing."""
    if not signer(request).csrf_ok(context.token_hash, csrf_token):
        raise CsrfRefused(
            "the form's security token is missing or out of date; reload the page and try again"
        )
    return context


Ctx = Annotated[DashboardContext, Depends(current_context)]
FormCtx = Annotated[DashboardContext, Depends(checked_form)]


def translator(request: Request, context: DashboardContext | None) -> DashboardTranslator:
    return DashboardTranslator(
        choose_language(
            context.language if context else None,
            request.headers.get("accept-language"),
            requested=request.query_params.get("lang"),
        )
    )


def status_key(invoice: Invoice) -> str:
    if is_overdue(invoice, clock.today()):
        return "status_overdue"
    return f"status_{invoice.status}"


def page_url(path: str, **query: Any) -> str:
    """A dashboard URL with only the query values that are set (lists repeat the key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, str(v)) for v in values if v not in (None, ""))
    return f"{PREFIX}{path}" + (f"?{urlencode(pairs)}" if pairs else "")


def render(
    request: Request,
    template: str,
    context: DashboardContext | None,
    values: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    section: str | None = None,
) -> HTMLResponse:
    t = translator(request, context)
    base: dict[str, Any] = {
        "t": t,
        "lang": t.language,
        "me": context,
        "section": section,
        "csrf_token": signer(request).csrf_token(context.token_hash) if context else "",
        "organizations": users.organizations_of(db(request), context.user_id) if context else [],
        "money": t.money,
        "day": t.date,
        "moment": t.moment,
        "status_key": status_key,
        "url": page_url,
        "today": clock.today(),
    }
    base.update(values or {})
    return TEMPLATES.TemplateResponse(
        request, f"dashboard/{template}", base, status_code=status, headers=PAGE_HEADERS
    )


def error_page(request: Request, error: AppError) -> HTMLResponse:
    """A refusal from a service, shown as a page in the person's language (the message names
    what is wrong; the transaction is rolled back by the status)."""
    context: DashboardContext | None = getattr(request.state, "dashboard", None)
    return render(
        request,
        "error.html",
        context,
        {"error": error, "status": error.status_code},
        status=error.status_code,
    )


def not_found_page(request: Request) -> HTMLResponse:
    return error_page(request, NotFound("there is no such page in this organization"))


def login_redirect(next_path: str) -> RedirectResponse:
    target = f"{PREFIX}/login"
    if next_path and next_path.startswith(PREFIX) and not next_path.startswith(f"{PREFIX}/login"):
        target += "?next=" + quote(next_path, safe="/")
    return RedirectResponse(target, status_code=303)


def see_other(path: str, **query: Any) -> RedirectResponse:
    return RedirectResponse(page_url(path, **query), status_code=303)


def invalid_input(exc: ValidationError) -> ValidationFailed:
    """A form's values refused by the API's own request model, named as the API names them
    (``line_items.0.unit_price: …``)."""
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ()))
    return ValidationFailed(f"{param}: {first.get('msg', 'invalid')}", param=param or None)


def cookie_secure(request: Request) -> bool:
    """Cookies get the Secure flag when the request came over HTTPS (behind a proxy too)."""
    return request.url.scheme == "https"


def parse_day(value: str | None, param: str) -> dt.date | None:
    """A date field of a filter form: empty is no filter; anything else must be YYYY-MM-DD."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{param}: {value!r} is not a date (YYYY-MM-DD)", param=param
        ) from None
