"""FastAPI dependencies shared by every router: the request's session, the runtime, and the
authenticated caller (which also applies the caller's rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from invoicehub.api.middleware import SessionHolder, check_rate_limit
from invoicehub.api.runtime import Runtime
from invoicehub.auth import service as auth_service
from invoicehub.auth.service import AuthContext
from invoicehub.errors import Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer sk_…")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: sk_…")


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


def authenticate(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Depends(_api_key)],
) -> AuthContext:
    auth: AuthContext | None = getattr(request.state, "auth", None)
    if auth is None:
        secret = auth_service.secret_from_headers(
            authorization=f"Bearer {bearer.credentials}" if bearer else None, x_api_key=x_api_key
        )
        if secret is None:
            raise Unauthenticated("no API key: send Authorization: Bearer sk_… or X-API-Key: sk_…")
        auth = auth_service.authenticate_secret(session, secret)
        request.state.auth = auth
    apply_rate_limit(request, runtime, f"key:{auth.public_key}")
    return auth


Auth = Annotated[AuthContext, Depends(authenticate)]
DbSession = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
