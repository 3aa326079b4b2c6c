"""The request is the transaction.

``RequestTransactionMiddleware`` gives each HTTP request one lazily opened session, lets the
endpoint work, and commits *before* a byte of the response is sent, so a failed commit is
answered as a failure, never as a success. A response of 400 or more rolls everything back.

POSTs under /v1 that carry ``Idempotency-Key`` are claimed first (see idempotency.service)
and their response is stored in the same transaction as the request's changes.
Rate-limit headers set by the auth dependency are added here, to every response.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from invoicehub.api.runtime import Runtime
from invoicehub.auth import service as auth_service
from invoicehub.errors import AppError, RateLimited, Unauthenticated
from invoicehub.idempotency import service as idempotency
from invoicehub.kit.db import Database
from invoicehub.kit.ratelimit import RateLimitResult

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENT_PREFIXES = ("/v1/",)


class SessionHolder:
    """The request's transaction. Opens the session on first use, so requests that never
    touch the database pay nothing, and remembers how it ended when the endpoint's own
    thread finished it (``finish``: see api.one_hop)."""

    def __init__(self, database: Database, *, write: bool) -> None:
        self._database = database
        self.write = write
        self._session: Session | None = None
        # The Idempotency-Key claim whose answer is stored with this transaction's changes.
        self.claim: idempotency.Claim | None = None
        self.finished = False
        self.failure: AppError | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._database.session(write=self.write)
        return self._session

    def require_write(self) -> None:
        """For the rare GET that writes (the pay page records the first view): the
        transaction must start as a write one (BEGIN IMMEDIATE on SQLite), before any read."""
        if self._session is not None and not self.write:
            raise RuntimeError("require_write() must come before the session is used")
        self.write = True

    @property
    def opened(self) -> bool:
        return self._session is not None

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def finish(self, status: int, body: bytes, content_type: str | None) -> AppError | None:
        """Commits a successful answer (storing it for the idempotency claim, if any) and
        closes the session; blocks, so it runs in a worker thread. Returns the failure to
        answer instead when the commit is refused, and remembers it (``failure``)."""
        try:
            self.failure = self._commit(status, body, content_type)
        finally:
            self.close()
            self.finished = True
        return self.failure

    def _commit(self, status: int, body: bytes, content_type: str | None) -> AppError | None:
        try:
            if self.claim is not None and not idempotency.complete_claim(
                self.session, self.claim, status_code=status, body=body, content_type=content_type
            ):
                self.rollback()
                return _LostClaim(
                    "this request's Idempotency-Key was taken over by a retry; nothing was saved"
                )
            self.commit()
        except IntegrityError:
            log.exception("commit refused by a constraint")
            self.rollback()
            return _CommitConflict(
                "the change conflicts with another one that was saved first; nothing was saved"
            )
        except DBAPIError:
            log.exception("commit failed")
            self.rollback()
            return _CommitFailed("the database could not save the change; nothing was saved, retry")
        return None


class _Captured:
    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start else 500

    def header(self, name: bytes) -> str | None:
        for key, value in (self.start or {}).get("headers", []):
            if key.lower() == name:
                return bytes(value).decode("latin-1")
        return None


def error_body(error: AppError) -> bytes:
    return json.dumps({"error": error.to_dict()}).encode()


def rate_limit_headers(result: RateLimitResult | None) -> list[tuple[bytes, bytes]]:
    if result is None:
        return []
    headers = [
        (b"x-ratelimit-limit", str(result.limit).encode()),
        (b"x-ratelimit-remaining", str(result.remaining).encode()),
        (b"x-ratelimit-reset", str(result.reset_at).encode()),
    ]
    if not result.allowed:
        headers.append((b"retry-after", str(result.retry_after).encode()))
    return headers


def check_rate_limit(state: dict[str, Any], runtime: Runtime, bucket: str) -> None:
    """The one place a request is counted; ``state`` is the request's scope state, so the
    idempotency layer and the endpoint's dependency never count the same request twice."""
    if not runtime.settings.rate_limit_enabled:
        return
    result = state.get("rate_limit")
    if not isinstance(result, RateLimitResult):
        result = runtime.limiter.hit(bucket)
        state["rate_limit"] = result
    if not result.allowed:
        raise RateLimited(
            f"rate limit exceeded: {result.limit} requests per minute and "
            f"{runtime.settings.rate_limit_burst_per_second} per second per key; retry after {result.retry_after}s",
        )


class RequestTransactionMiddleware:
    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        # Commits, rollbacks and closes get thread tokens of their own: were they to share the
        # endpoints' pool, requests waiting for SQLite's write lock could take every token and
        # the request holding the lock could never commit to release it.
        self._finish_limiter: anyio.CapacityLimiter | None = None

    def _finishing(self) -> anyio.CapacityLimiter:
        if self._finish_limiter is None:
            self._finish_limiter = anyio.CapacityLimiter(64)
        return self._finish_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            error = AppError(
                "the URL contains a NUL character, which no field accepts",
                code="invalid_characters",
                param=None,
            )
            await _send(send, 400, error_body(error), "application/json", [])
            return
        state = scope.setdefault("state", {})
        holder = SessionHolder(self.runtime.database, write=scope["method"] not in SAFE_METHODS)
        state["runtime"] = self.runtime
        state["db"] = holder
        try:
            await self._handle(scope, receive, send, state, holder)
        finally:
            if holder.opened:
                await anyio.to_thread.run_sync(holder.close, limiter=self._finishing())

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: dict[str, Any],
        holder: SessionHolder,
    ) -> None:
        claim: idempotency.Claim | None = None
        key = _header(scope, b"idempotency-key")
        if (
            key is not None
            and scope["method"] == "POST"
            and scope["path"].startswith(IDEMPOTENT_PREFIXES)
        ):
            body = await _read_body(receive)
            receive = _replay(body)
            try:
                outcome = await anyio.to_thread.run_sync(self._claim, scope, state, key, body)
            except AppError as error:
                await _send(
                    send,
                    error.status_code,
                    error_body(error),
                    "application/json",
                    rate_limit_headers(state.get("rate_limit")),
                )
                return
            if isinstance(outcome, idempotency.StoredResponse):
                await _send(
                    send,
                    outcome.status_code,
                    outcome.body,
                    outcome.content_type,
                    [
                        (b"idempotent-replayed", b"true"),
                        *rate_limit_headers(state.get("rate_limit")),
                    ],
                )
                return
            claim = outcome
            holder.claim = claim

        captured = _Captured()
        try:
            await self.app(scope, receive, captured.send)
        except BaseException:
            # Committed in the endpoint's thread already (then cancelled, say at shutdown):
            # the changes and the stored answer stand, and a retry must replay it.
            if not (holder.finished and holder.failure is None):
                await anyio.to_thread.run_sync(_end, holder, limiter=self._finishing())
                if claim is not None:
                    await anyio.to_thread.run_sync(self._release, claim, limiter=self._finishing())
            raise

        status = captured.status
        if holder.finished or status < 400:
            # Most routes finished the transaction in the endpoint's own thread already.
            failure = (
                holder.failure
                if holder.finished
                else await anyio.to_thread.run_sync(
                    holder.finish,
                    status,
                    bytes(captured.body),
                    captured.header(b"content-type"),
                    limiter=self._finishing(),
                )
            )
            if failure is not None:
                if claim is not None:
                    await anyio.to_thread.run_sync(self._release, claim, limiter=self._finishing())
                await _send(
                    send,
                    failure.status_code,
                    error_body(failure),
                    "application/json",
                    rate_limit_headers(state.get("rate_limit")),
                )
                return
        else:
            await anyio.to_thread.run_sync(_end, holder, limiter=self._finishing())
            if claim is not None:
                await anyio.to_thread.run_sync(self._release, claim, limiter=self._finishing())

        assert captured.start is not None
        start = dict(captured.start)
        start["headers"] = [*start.get("headers", []), *rate_limit_headers(state.get("rate_limit"))]
        await send(start)
        await send({"type": "http.response.body", "body": bytes(captured.body), "more_body": False})

    # The methods below run in worker threads: they block on the database.

    def _claim(
        self, scope: Scope, state: dict[str, Any], key: str, body: bytes
    ) -> idempotency.Claim | idempotency.StoredResponse:
        settings = self.runtime.settings
        with self.runtime.database.session(write=True) as session:
            secret = auth_service.secret_from_headers(
                authorization=_header(scope, b"authorization"),
                x_api_key=_header(scope, b"x-api-key"),
            )
            if secret is None:
                raise Unauthenticated(
                    "no API key: send Authorization: Bearer sk_… or X-API-Key: sk_…"
                )
            auth = auth_service.authenticate_secret(session, secret)
            state["auth"] = auth
            # A replay is an answer like any other: it counts against the key's limit.
            check_rate_limit(state, self.runtime, f"key:{auth.public_key}")
            outcome = idempotency.claim_key(
                session,
                organization_id=auth.organization_id,
                key=key,
                request_fingerprint=idempotency.fingerprint(
                    scope["method"], scope["path"], scope.get("query_string", b""), body
                ),
                ttl=dt.timedelta(hours=settings.idempotency_key_ttl_hours),
                stale_after=dt.timedelta(seconds=settings.idempotency_stale_lock_seconds),
            )
            session.commit()
            return outcome

    def _release(self, claim: idempotency.Claim) -> None:
        with self.runtime.database.session(write=True) as session:
            idempotency.release_claim(session, claim)
            session.commit()


def _end(holder: SessionHolder) -> None:
    """Rolls back and closes in one thread hop (closing alone would also roll back, but
    saying so keeps the intent visible)."""
    try:
        holder.rollback()
    finally:
        holder.close()


class _CommitConflict(AppError):
    status_code = 409
    default_code = "conflict"


class _CommitFailed(AppError):
    status_code = 503
    error_type = "api_error"
    default_code = "database_unavailable"


class _LostClaim(AppError):
    status_code = 409
    error_type = "idempotency_error"
    default_code = "idempotency_key_in_use"


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or query string (raw or %00): PostgreSQL text cannot hold one, so
    it is refused here, for every API, before it reaches a query."""
    raw = (
        bytes(scope.get("raw_path") or scope.get("path", "").encode())
        + b"?"
        + bytes(scope.get("query_string", b""))
    )
    return b"\x00" in raw or b"%00" in raw.lower() or "\x00" in scope.get("path", "")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return bytes(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return receive


async def _send(
    send: Send, status: int, body: bytes, content_type: str | None, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", (content_type or "application/json").encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
