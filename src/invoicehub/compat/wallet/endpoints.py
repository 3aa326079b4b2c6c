"""The BW wallet's endpoints (seed 001): translate, call the accounts services, translate back.

Every answer is the document's envelope: {"meta": {"code": 200}, "data": ...}, and an error
{"meta": {"code": <HTTP status>, "error": "<the document's code>", "message": "..."}}.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub.accounts import service as accounts
from invoicehub.accounts.service import AccountLocked
from invoicehub.api.middleware import SessionHolder
from invoicehub.compat.wallet.schemas import (
    CANCEL_REFUSAL_MESSAGES,
    CANCEL_REFUSALS,
    MAX_MESSAGE,
    PAY_REFUSAL_MESSAGES,
    PAY_REFUSALS,
    PUBLIC_ID_PREFIX,
    CreateInvoiceIn,
    ErrorOut,
    InvoiceEnvelope,
    InvoiceListEnvelope,
    MetaOnly,
    PaymentEnvelope,
    invoice_item,
    payment_object,
    status_word,
)
from invoicehub.compat.wire import ExactJSONResponse, count_request, runtime_of
from invoicehub.errors import (
    AppError,
    Conflict,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from invoicehub.models import Account, Invoice

router = APIRouter(prefix="/v1/invoices")
_basic = HTTPBasic(
    auto_error=False,
    realm="wallet",
    description="HTTP Basic: your phone as the user name, your password as the password.",
)
CHALLENGE = {"WWW-Authenticate": 'Basic realm="wallet"'}
_WALLET_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "A bad request: missing_payer, payer_not_exists, invalid_payer, missing_amount …"),
        (401, "No or wrong phone:password (unauthorized, invalid_credentials)."),
        (404, "No such invoice of yours (invalid_invoice, invoice_not_found)."),
        (409, "The invoice's status does not allow it (invoice_is_processing …)."),
        (429, "Too many requests, or too many wrong passwords (account_locked)."),
    )
}


class WalletError(Exception):
    """An error already in the wallet's words."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _ok(data: Any = None, *, with_data: bool = True) -> ExactJSONResponse:
    body: dict[str, Any] = {"meta": {"code": 200}}
    if with_data:
        body["data"] = data
    return ExactJSONResponse(body)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    return ExactJSONResponse(
        {"meta": {"code": status, "error": code, "message": message}},
        status_code=status,
        headers=headers,
    )


# ------------------------------------------------------------------ the caller


@dataclass(slots=True)
class Caller:
    account: Account
    session: Session


def _caller(request: Request, credentials: HTTPBasicCredentials | None, *, write: bool) -> Caller:
    # Before the request's own session is touched: the check commits its own transaction
    # (it remembers failures), and on SQLite two open write transactions would wait on
    # each other.
    if credentials is None:
        raise WalletError(
            401,
            "unauthorized",
            "send HTTP Basic auth: your phone and your password",
            headers=CHALLENGE,
        )
    count_request(request, f"wallet:{credentials.username.strip()}")
    runtime = runtime_of(request)
    account_id = accounts.Authenticator(runtime.database, runtime.settings).wallet(
        credentials.username, credentials.password
    )
    holder: SessionHolder = request.state.db
    if write:
        holder.require_write()  # duplicate and cancel also answer GET (the document's curl)
    session = holder.session
    return Caller(accounts.get_account(session, account_id), session)


Credentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


async def in_worker_thread(
    request: Request, work: Callable[[], ExactJSONResponse]
) -> ExactJSONResponse:
    """Runs an endpoint's blocking work (sign-in, services) in one hop, on this API's own
    threads. Why its own: on SQLite a request keeps the write lock until the middleware
    commits it on the shared thread pool; if requests waiting for that lock held every
    shared thread, the commit could never run (a deadlock until the busy timeout)."""
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "worker_threads", None)
    if limiter is None:
        limiter = CapacityLimiter(runtime_of(request).settings.database_pool_size)
        state.worker_threads = limiter
    return await anyio.to_thread.run_sync(work, limiter=limiter)


async def body_fields(request: Request) -> dict[str, Any] | WalletError:
    """The request's fields from a JSON object or a form (curl -d sends a form unless told).
    A body that is neither is answered only after the caller is known to be someone."""
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES and not raw.lstrip().startswith(b"{"):
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        parsed = json.loads(raw, parse_float=Decimal)
    except ValueError:
        return WalletError(400, "invalid_request", "the body is not valid JSON")
    if not isinstance(parsed, dict):
        return WalletError(400, "invalid_request", "the body must be a JSON object")
    return parsed


Fields = Annotated[dict[str, Any] | WalletError, Depends(body_fields)]


def _public_id(wallet_id: str) -> str:
    if not _WALLET_ID.match(wallet_id):
        raise NotFound(f"no invoice {wallet_id}", code="invoice_not_found")
    return PUBLIC_ID_PREFIX + wallet_id.lower()


def _item(session: Session, invoice: Invoice, *known: Account) -> dict[str, Any]:
    people = {account.id: account for account in known}
    for account_id in (invoice.payer_account_id, invoice.payee_account_id):
        if account_id is not None and account_id not in people:
            people[account_id] = accounts.get_account(session, account_id)
    return invoice_item(invoice, people, None)


# ------------------------------------------------------------------ endpoints

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CreateInvoiceIn.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": CreateInvoiceIn.model_json_schema()},
        },
    }
}
_INVALID_AMOUNT = (
    "amount must be a positive number of KZT with at most 2 decimals, less than 10000000000000"
)


def _create_request(fields: dict[str, Any] | WalletError) -> CreateInvoiceIn:
    if isinstance(fields, WalletError):
        raise fields
    try:
        return CreateInvoiceIn.model_validate(fields)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        if field == "payer":
            raise WalletError(400, "payer_not_exists", "payer must be a phone number") from None
        if field == "amount":
            raise WalletError(400, "invalid_amount", _INVALID_AMOUNT) from None
        raise WalletError(
            400,
            "invalid_message",
            f"message must be text of at most {MAX_MESSAGE} characters, without NUL characters",
        ) from None


@router.post(
    "",
    summary="Create an invoice (bill another wallet)",
    response_model=None,
    responses={200: {"model": InvoiceEnvelope}, **ERRORS},
    openapi_extra=_CREATE_BODY,
)
async def create_invoice(
    request: Request, credentials: Credentials, fields: Fields
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_create_invoice, request, credentials, fields))


def _create_invoice(
    request: Request, credentials: HTTPBasicCredentials | None, fields: dict[str, Any] | WalletError
) -> ExactJSONResponse:
    caller = _caller(request, credentials, write=True)
    body = _create_request(fields)
    if body.payer is None:
        raise WalletError(400, "missing_payer", "payer is required: the phone of who will pay")
    settings = runtime_of(request).settings
    try:
        payer = accounts.wallet_by_phone(
            caller.session, body.payer, region=settings.phone_default_region
        )
    except (NotFound, ValidationFailed):
        raise WalletError(
            400, "payer_not_exists", f"no wallet has the phone {body.payer}"
        ) from None
    try:
        view = accounts.create_p2p_invoice(
            caller.session,
            caller.account,
            amount=body.amount,
            payer=payer,
            description=body.message,
        )
    except ValidationFailed as exc:
        if exc.code == "missing_amount":
            raise WalletError(400, "missing_amount", "amount is required") from None
        if exc.code == "invalid_payer":
            raise WalletError(400, "invalid_payer", "you cannot bill yourself") from None
        raise WalletError(400, "invalid_amount", _INVALID_AMOUNT) from None
    return _ok(_item(caller.session, view.invoice, caller.account, payer))


@router.get(
    "",
    summary="Invoices issued to me",
    response_model=None,
    responses={200: {"model": InvoiceListEnvelope}, **ERRORS},
)
async def invoices_billed_to_me(request: Request, credentials: Credentials) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_listing, request, credentials, issued=False))


def _listing(
    request: Request, credentials: HTTPBasicCredentials | None, *, issued: bool
) -> ExactJSONResponse:
    caller = _caller(request, credentials, write=False)
    list_of = accounts.list_issued_by if issued else accounts.list_billed_to
    listing = list_of(caller.session, caller.account)
    return _ok(
        [
            invoice_item(invoice, listing.accounts, listing.transfers.get(invoice.id))
            for invoice in listing.invoices
        ]
    )


@router.get(
    "/created",
    summary="Invoices I issued",
    response_model=None,
    responses={200: {"model": InvoiceListEnvelope}, **ERRORS},
)
async def invoices_issued_by_me(request: Request, credentials: Credentials) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_listing, request, credentials, issued=True))


def _duplicate(
    request: Request, credentials: HTTPBasicCredentials | None, invoice_id: str
) -> ExactJSONResponse:
    caller = _caller(request, credentials, write=True)
    try:
        view = accounts.duplicate_p2p_invoice(
            caller.session, caller.account, _public_id(invoice_id)
        )
    except NotFound:
        raise WalletError(404, "invalid_invoice", f"you have no invoice {invoice_id}") from None
    return _ok(_item(caller.session, view.invoice, caller.account))


@router.get(
    "/{invoice_id}/duplicate",
    summary="Duplicate an invoice I issued (as the document's curl: GET)",
    response_model=None,
    responses={200: {"model": InvoiceEnvelope}, **ERRORS},
)
async def duplicate_invoice(
    invoice_id: str, request: Request, credentials: Credentials
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_duplicate, request, credentials, invoice_id))


@router.post(
    "/{invoice_id}/duplicate",
    summary="Duplicate an invoice I issued",
    response_model=None,
    responses={200: {"model": InvoiceEnvelope}, **ERRORS},
)
async def duplicate_invoice_post(
    invoice_id: str, request: Request, credentials: Credentials
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_duplicate, request, credentials, invoice_id))


def _cancel(
    request: Request, credentials: HTTPBasicCredentials | None, invoice_id: str
) -> ExactJSONResponse:
    caller = _caller(request, credentials, write=True)
    try:
        public_id = _public_id(invoice_id)
        accounts.cancel_p2p_invoice(caller.session, caller.account, public_id)
    except NotFound:
        raise WalletError(404, "invoice_not_found", f"you have no invoice {invoice_id}") from None
    except Conflict:
        # The core re-read the row when it refused; its status says which refusal it is.
        current = accounts.find_p2p_invoice(caller.session, public_id)
        code = CANCEL_REFUSALS.get(status_word(current), "invoice_cancelling_error")
        raise WalletError(409, code, CANCEL_REFUSAL_MESSAGES[code]) from None
    return _ok(with_data=False)


@router.get(
    "/{invoice_id}/cancel",
    summary="Cancel an invoice I issued (as the document's curl: GET)",
    response_model=None,
    responses={200: {"model": MetaOnly}, **ERRORS},
)
async def cancel_invoice(
    invoice_id: str, request: Request, credentials: Credentials
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_cancel, request, credentials, invoice_id))


@router.post(
    "/{invoice_id}/cancel",
    summary="Cancel an invoice I issued",
    response_model=None,
    responses={200: {"model": MetaOnly}, **ERRORS},
)
async def cancel_invoice_post(
    invoice_id: str, request: Request, credentials: Credentials
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_cancel, request, credentials, invoice_id))


def _refuse_payment(code: str) -> WalletError:
    return WalletError(409, code, PAY_REFUSAL_MESSAGES[code])


@router.post(
    "/{invoice_id}/pay",
    summary="Pay an invoice issued to me, from my balance",
    response_model=None,
    responses={200: {"model": PaymentEnvelope}, **ERRORS},
)
async def pay_invoice(
    invoice_id: str, request: Request, credentials: Credentials
) -> ExactJSONResponse:
    return await in_worker_thread(request, partial(_pay, request, credentials, invoice_id))


def _pay(
    request: Request, credentials: HTTPBasicCredentials | None, invoice_id: str
) -> ExactJSONResponse:
    caller = _caller(request, credentials, write=True)
    session, payer = caller.session, caller.account
    try:
        public_id = _public_id(invoice_id)
        invoice = accounts.find_p2p_invoice(session, public_id)
    except NotFound:
        raise WalletError(
            404, "invoice_not_found", f"you have no invoice {invoice_id} to pay"
        ) from None
    # "declined" is the wallet's word for an open invoice whose payment was declined; the
    # document makes it final, so it is not handed to the core as payable again. Only the
    # invoice's payer is told so; anyone else learns nothing about it.
    if invoice.payer_account_id == payer.id and status_word(invoice) == "declined":
        raise _refuse_payment("invoice_is_declined")
    started = time.perf_counter()
    try:
        paid = accounts.pay_from_balance(session, payer, invoice)
    except NotFound:
        raise WalletError(
            404, "invoice_not_found", f"you have no invoice {invoice_id} to pay"
        ) from None
    except Conflict as exc:
        if exc.code == "own_invoice":
            raise WalletError(409, "invalid_payer", "you cannot pay your own invoice") from None
        # The core re-read the row when it refused; its status says which refusal it is.
        word = status_word(accounts.find_p2p_invoice(session, public_id))
        raise _refuse_payment(PAY_REFUSALS.get(word, "invoice_is_processing")) from None
    elapsed = time.perf_counter() - started
    transfer = paid.transfer
    payee = accounts.get_account(session, transfer.payee_account_id)
    meta: dict[str, Any] = {"code": 200, "next_action": None, "time": round(elapsed, 6)}
    if transfer.status != "completed":
        meta = {
            "code": 402,
            "error": transfer.failure_reason or "declined",
            "message": "the payment was declined: your balance cannot pay this invoice",
            "next_action": None,
            "time": round(elapsed, 6),
        }
    return _ok({"meta": meta, "data": payment_object(transfer, paid.view.invoice, payer, payee)})


# ------------------------------------------------------------------ errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WalletError)
    async def wallet_error(_request: Request, exc: WalletError) -> ExactJSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> ExactJSONResponse:
        if isinstance(exc, AccountLocked):
            return _error(429, "account_locked", exc.message, exc.headers)
        if isinstance(exc, RateLimited):
            return _error(429, "rate_limit_exceeded", exc.message, exc.headers)
        if isinstance(exc, Unauthenticated):
            return _error(401, "invalid_credentials", "wrong phone or password", CHALLENGE)
        if isinstance(exc, ValidationFailed):
            return _error(400, exc.code, exc.message, exc.headers)
        return _error(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> ExactJSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "path"))
        return _error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ExactJSONResponse:
        if exc.status_code == 401:
            return _error(401, "invalid_credentials", "wrong phone or password", CHALLENGE)
        if exc.status_code == 404:
            return _error(404, "not_found", f"no such endpoint: {request.url.path}")
        if exc.status_code == 405:
            return _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                dict(exc.headers or {}),
            )
        return _error(exc.status_code, "http_error", str(exc.detail))
