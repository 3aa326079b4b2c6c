"""create_app(): settings, database, middleware, error handlers and routers in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub import __version__
from invoicehub.api.deps import document_security, settle_deferred_caller
from invoicehub.api.middleware import RequestTransactionMiddleware
from invoicehub.api.runtime import Runtime
from invoicehub.compat import mount_compat_apis
from invoicehub.config import Settings, get_settings
from invoicehub.errors import AppError, NotFound, ValidationFailed
from invoicehub.events.endpoints import router as events_router
from invoicehub.invoices.endpoints import router as invoices_router
from invoicehub.orgs.endpoints import router as organization_router
from invoicehub.payments.endpoints import router as payments_router
from invoicehub.payments.endpoints import stripe_router
from invoicehub.reports.endpoints import router as reports_router
from invoicehub.web import dashboard
from invoicehub.web.dashboard.common import LoginRequired, error_page, is_dashboard, login_redirect
from invoicehub.web.pay import router as pay_router
from invoicehub.webhooks.endpoints import router as webhooks_router

log = logging.getLogger(__name__)

NATIVE_ROUTERS = (
    invoices_router,
    events_router,
    organization_router,
    webhooks_router,
    payments_router,
    stripe_router,
    reports_router,
    pay_router,
)

DESCRIPTION = """
invoicehub's native API. Authenticate with `Authorization: Bearer sk_…` (or `X-API-Key: sk_…`).
Amounts are decimal strings in the invoice's currency. Every POST accepts `Idempotency-Key`.
Errors come as `{"error": {"type", "code", "message", "param"}}`.
"""


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker_task = None
        worker = None
        if settings.run_worker_in_serve:
            from invoicehub.worker import Worker

            worker = Worker(runtime)
            worker_task = asyncio.create_task(worker.run_forever())
        try:
            yield
        finally:
            if worker is not None and worker_task is not None:
                worker.stop()
                await asyncio.wait_for(worker_task, timeout=settings.webhook_timeout_seconds + 5)
            runtime.database.dispose()

    app = FastAPI(
        title="invoicehub", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.runtime = runtime
    app.add_middleware(RequestTransactionMiddleware, runtime=runtime)
    _install_error_handlers(app)

    # First: the router tries routes in order, and load balancers probe this one often
    # (behind every router it matched ~75 routes per request).
    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> JSONResponse:
        try:
            with runtime.database.session(write=False) as session:
                session.execute(text("SELECT 1"))
        except Exception:
            log.exception("health check could not reach the database")
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": runtime.database.engine.dialect.name})

    for router in NATIVE_ROUTERS:
        app.include_router(router)
    dashboard.install(app)
    app.mount(
        "/static",
        StaticFiles(directory=str(Path(__file__).parent / "web" / "static")),
        name="static",
    )

    # Last: the seed APIs, checked against every native route above.
    mount_compat_apis(app, runtime)
    document_security(app, NATIVE_ROUTERS)
    return app


def _error_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def validation_param(loc: tuple[Any, ...]) -> str | None:
    """("body", "line_items", 0, "quantity") -> "line_items.0.quantity"."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _caller_refusal(request: Request) -> Response | None:
    """A native route's key is looked up in the endpoint's thread (api.one_hop); when the
    request is refused before that, the key is looked up now, and its refusal wins."""
    try:
        await settle_deferred_caller(request)
    except AppError as exc:
        return _error_response(exc.status_code, exc.to_dict(), exc.headers)
    return None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if (caller_refused := await _caller_refusal(request)) is not None:
            return caller_refused
        if is_dashboard(request):  # a page, rendered off the event loop (it reads the database)
            return await anyio.to_thread.run_sync(error_page, request, exc)
        return _error_response(exc.status_code, exc.to_dict(), exc.headers)

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return login_redirect(exc.next_path)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if (caller_refused := await _caller_refusal(request)) is not None:
            return caller_refused
        errors = exc.errors()
        details = []
        for error in errors:
            param = validation_param(tuple(error.get("loc", ())))
            details.append({"param": param, "message": str(error.get("msg", "invalid"))})
        first = details[0] if details else {"param": None, "message": "invalid request"}
        message = f"{first['param']}: {first['message']}" if first["param"] else first["message"]
        if errors and errors[0].get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        if is_dashboard(request):
            refusal = ValidationFailed(str(message), param=first["param"])
            return await anyio.to_thread.run_sync(error_page, request, refusal)
        return _error_response(
            422,
            {
                "type": "invalid_request_error",
                "code": "validation_error",
                "message": message,
                "param": first["param"],
                "errors": details,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if is_dashboard(request) and exc.status_code == 404:
            missing = NotFound("there is no such page", code=code)
            return await anyio.to_thread.run_sync(error_page, request, missing)
        return _error_response(
            exc.status_code,
            {
                "type": "invalid_request_error",
                "code": code,
                "message": str(exc.detail),
                "param": None,
            },
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _error_response(
            500,
            {
                "type": "api_error",
                "code": "internal_error",
                "message": "internal error; nothing was saved",
                "param": None,
            },
        )
