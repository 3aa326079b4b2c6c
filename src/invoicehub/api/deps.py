"""FastAPI dependencies shared by every router: the request's session, the runtime, and the
authenticated caller (which also applies the caller's rate limit)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from invoicehub.api.middleware import SessionHolder, check_rate_limit
from invoicehub.api.runtime import Runtime
from invoicehub.auth import service as auth_service
from invoicehub.auth.service import AuthContext
from invoicehub.errors import Unauthenticated

# These two only read request.state (opening a Session connects nothing), so they are
# async: FastAPI runs a sync dependency in a worker thread, one hop (~45 µs CPU) each.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


async def get_session(request: Request) -> Session:
    holder: SessionHolder = request.state.db
    return holder.session


def apply_rate_limit(request: Request, runtime: Runtime, bucket: str) -> None:
    """Counts this request against ``bucket`` once; the middleware puts the headers on the
    answer (and Retry-After on a 429)."""
    check_rate_limit(request.scope["state"], runtime, bucket)


def requires_key(request: Request) -> str:
    """The secret key the request sends; refuses a request that sends none."""
    secret = auth_service.secret_from_headers(
        authorization=request.headers.get("authorization"),
        x_api_key=request.headers.get("x-api-key"),
    )
    if secret is None:
        raise Unauthenticated("no API key: send Authorization: Bearer sk_… or X-API-Key: sk_…")
    return secret


def authenticate(request: Request) -> AuthContext:
    """The caller, from ``Authorization: Bearer sk_…`` or ``X-API-Key: sk_…``.

    It reads the headers, the session and the runtime from the request itself rather than
    through sub-dependencies: FastAPI solves every dependency of every request anew, and the
    four it had (session, runtime, and the two header schemes) cost more than the lookup's
    SQL. The two schemes still appear in the OpenAPI document (``document_security``).
    The native routes run it in the endpoint's own thread (``defer_caller``)."""
    auth: AuthContext | None = getattr(request.state, "auth", None)
    if auth is None:
        secret = requires_key(request)
        holder: SessionHolder = request.state.db
        auth = auth_service.authenticate_secret(holder.session, secret)
        request.state.auth = auth
    apply_rate_limit(request, request.state.runtime, f"key:{auth.public_key}")
    return auth


@dataclass(frozen=True, slots=True)
class DeferredCaller:
    """The caller of a request whose key is looked up later, in the endpoint's thread
    (api.one_hop)."""

    request: Request


async def defer_caller(request: Request) -> DeferredCaller:
    """``authenticate`` without the lookup: a request that sends no key is refused here."""
    if getattr(request.state, "auth", None) is None:
        requires_key(request)
        request.state.caller_deferred = True
    return DeferredCaller(request)


def resolve_caller(deferred: DeferredCaller) -> AuthContext:
    """The lookup ``defer_caller`` left for later; blocks, so it runs in a worker thread."""
    deferred.request.state.caller_deferred = False  # tried once: the handlers must not retry
    return authenticate(deferred.request)


async def settle_deferred_caller(request: Request) -> None:
    """For an error answered before the endpoint ran (a refused parameter or body): looks
    the caller up first, as the dependency did before it was deferred, so that a bad key
    still answers 401, a spent limit 429, and the refused request counts against the key."""
    if getattr(request.state, "caller_deferred", False):
        await anyio.to_thread.run_sync(resolve_caller, DeferredCaller(request))


SECURITY_SCHEMES = {
    "HTTPBearer": {"type": "http", "description": "Authorization: Bearer sk_…", "scheme": "bearer"},
    "APIKeyHeader": {
        "type": "apiKey",
        "description": "X-API-Key: sk_…",
        "in": "header",
        "name": "X-API-Key",
    },
}


def _needs_key(dependant: Dependant) -> bool:
    return any(
        d.call in (authenticate, defer_caller) or _needs_key(d) for d in dependant.dependencies
    )


def document_security(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Declares the API-key schemes in the OpenAPI document on every operation of
    ``routers`` that authenticates, as FastAPI's security classes would, without solving
    them per request."""
    build = app.openapi
    requirement: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    secured = [
        (route.path_format, method.lower())
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema and _needs_key(route.dependant)
        for method in route.methods or ()
    ]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, method in secured:
            schema["paths"][path][method]["security"] = requirement
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


Auth = Annotated[AuthContext, Depends(authenticate)]
DbSession = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
