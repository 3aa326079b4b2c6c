"""Bots.Business web-app invoices (seed 002): translate, call the accounts services, translate
back. Every answer is {"status": "success", "invoice": {...}} or {"status": "error", "msg"}."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import segno
from anyio import CapacityLimiter
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub.accounts import service as accounts
from invoicehub.accounts.service import AccountLocked
from invoicehub.api.middleware import SessionHolder
from invoicehub.compat.botsbusiness.schemas import (
    INVALID_AMOUNT,
    INVOICE_PARAMETERS,
    NEW_INVOICE_PARAMETERS,
    BadParameters,
    ErrorOut,
    SuccessOut,
    SuccessWithPayloadOut,
    bot_number,
    invoice_object,
    new_short_code,
    parse_invoice_request,
    parse_new_invoice,
    pay_link,
    status_word,
)
from invoicehub.compat.wire import count_request, runtime_of
from invoicehub.config import Settings
from invoicehub.errors import (
    AppError,
    Conflict,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.models import Account, Bot, Invoice

router = APIRouter(prefix="/v2/bots/{bot_id}/web-app")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SHORT_CODE_TRIES = 10
WRONG_CREDENTIALS = "Wrong userId or PIN"

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "Missing or invalid parameters."),
        (401, "Wrong userId or PIN (the answer never says which)."),
        (402, "The payer's balance cannot pay the invoice; nothing changed."),
        (404, "No such bot or invoice."),
        (409, "The invoice is paid already, or it is the payer's own."),
        (429, "Too many requests, or too many wrong PINs: the user is locked for a while."),
    )
}


class BotsError(Exception):
    """An error already in the document's words."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


def _error(status: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": "error", "msg": msg}, status_code=status, headers=headers)


def _success(invoice: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": "success", "invoice": invoice})


async def request_fields(request: Request) -> dict[str, Any]:
    """The parameters from the query string, a form or a JSON object (the body wins)."""
    fields: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw.strip():
        return fields
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES and not raw.lstrip().startswith(b"{"):
        form = await request.form()
        fields.update({key: value for key, value in form.items() if isinstance(value, str)})
        return fields
    try:
        parsed = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise BotsError(400, "Invalid parameters: the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BotsError(400, "Invalid parameters: the body must be a JSON object")
    fields.update(parsed)
    return fields


Fields = Annotated[dict[str, Any], Depends(request_fields)]


async def in_worker_thread(request: Request, work: Callable[[], Response]) -> Response:
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


def _holder(request: Request, *, write: bool) -> SessionHolder:
    holder: SessionHolder = request.state.db
    if write:
        holder.require_write()  # new-invoice also answers GET, as the document says
    return holder


def _bot_number(bot_id: str) -> int:
    number = bot_number(bot_id)
    if number is None:
        raise BotsError(404, "Bot not found")
    return number


def _bot(session: Session, number: int) -> Bot:
    try:
        return accounts.require_bot(session, number)
    except NotFound:
        raise BotsError(404, "Bot not found") from None


def _sign_in(
    request: Request, holder: SessionHolder, number: int, user_id: int, pin: str
) -> Account:
    """The bot's user, by Telegram id and PIN. Runs before the request's session is used: the
    check commits its own transaction (it remembers failures)."""
    count_request(request, f"botsbusiness:{number}:{user_id}")
    runtime = runtime_of(request)
    try:
        account_id = accounts.Authenticator(runtime.database, runtime.settings).bot_user(
            number, user_id, pin
        )
    except Unauthenticated:
        _bot(holder.session, number)  # an unknown bot is said as such: its id is public
        raise BotsError(401, WRONG_CREDENTIALS) from None
    return accounts.get_account(holder.session, account_id)


def qr_url(settings: Settings, bot: Bot, invoice: Invoice) -> str:
    prefix = settings.compat_botsbusiness_prefix.strip().rstrip("/")
    return (
        f"{settings.public_url.rstrip('/')}{prefix}"
        f"/v2/bots/{bot.number}/web-app/invoices/{invoice.short_code}/qr.png"
    )


def _bot_invoice(session: Session, bot: Bot, code: str) -> tuple[Invoice, Account]:
    """The invoice ``code`` issued in ``bot``, and its creator."""
    try:
        invoice = accounts.find_by_short_code(session, code)
    except NotFound:
        raise BotsError(404, "Invoice not found") from None
    creator = (
        accounts.get_account(session, invoice.payee_account_id)
        if invoice.payee_account_id is not None
        else None
    )
    if creator is None or creator.bot_id != bot.id:
        raise BotsError(404, "Invoice not found")
    return invoice, creator


def _present(
    request: Request,
    session: Session,
    invoice: Invoice,
    *,
    bot: Bot,
    creator: Account,
    with_payload: bool,
) -> dict[str, Any]:
    payer = (
        accounts.get_account(session, invoice.payer_account_id)
        if invoice.payer_account_id is not None
        else None
    )
    return invoice_object(
        invoice,
        bot=bot,
        creator=creator,
        payer=payer,
        qr_url=qr_url(runtime_of(request).settings, bot, invoice),
        with_payload=with_payload,
    )


def _free_short_code(session: Session) -> str:
    for _ in range(_SHORT_CODE_TRIES):
        code = new_short_code()
        try:
            accounts.find_by_short_code(session, code)
        except NotFound:
            return code
    raise BotsError(503, "Could not make an invoice id; try again")


def _query_parameters(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in names
        ]
    }


def _body(names: tuple[str, ...]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {name: {"type": ["string", "number"]} for name in names},
        "required": list(names),
    }
    return {
        "requestBody": {
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            }
        }
    }


# ------------------------------------------------------------------ the document's endpoint


def _new_invoice(bot_id: str, fields: dict[str, Any], request: Request) -> JSONResponse:
    number = _bot_number(bot_id)
    wanted = parse_new_invoice(fields)
    holder = _holder(request, write=True)
    creator = _sign_in(request, holder, number, wanted.user_id, wanted.pin)
    session = holder.session
    bot = _bot(session, number)
    try:
        view = accounts.create_p2p_invoice(
            session,
            creator,
            amount=wanted.amount,
            payer=None,
            description=wanted.description,
            title=wanted.title,
            payload=wanted.payload,
            short_code=_free_short_code(session),
        )
    except ValidationFailed:
        raise BotsError(400, f"Invalid parameters: {INVALID_AMOUNT}") from None
    return _success(
        _present(request, session, view.invoice, bot=bot, creator=creator, with_payload=False)
    )


@router.post(
    "/new-invoice",
    summary="Create Invoice",
    description="Parameters in a JSON body, a form, or the query string; all six are required.",
    response_model=None,
    responses={200: {"model": SuccessOut}, **ERRORS},
    openapi_extra=_body(NEW_INVOICE_PARAMETERS),
)
async def new_invoice(bot_id: str, fields: Fields, request: Request) -> Response:
    return await in_worker_thread(request, partial(_new_invoice, bot_id, fields, request))


@router.get(
    "/new-invoice",
    summary="Create Invoice (query string)",
    response_model=None,
    responses={200: {"model": SuccessOut}, **ERRORS},
    openapi_extra=_query_parameters(NEW_INVOICE_PARAMETERS),
)
async def new_invoice_get(bot_id: str, fields: Fields, request: Request) -> Response:
    return await in_worker_thread(request, partial(_new_invoice, bot_id, fields, request))


@router.get(
    "/invoices/{invoice_id}/qr.png",
    summary="The QR code of an invoice's pay link (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorOut}},
)
async def qr_code(bot_id: str, invoice_id: str, request: Request) -> Response:
    return await in_worker_thread(request, partial(_qr_code, bot_id, invoice_id, request))


def _qr_code(bot_id: str, invoice_id: str, request: Request) -> Response:
    number = _bot_number(bot_id)
    session = _holder(request, write=False).session
    bot = _bot(session, number)
    invoice, _creator = _bot_invoice(session, bot, invoice_id)
    buffer = io.BytesIO()
    segno.make(pay_link(bot, invoice), error="m").save(buffer, kind="png", scale=8, border=4)
    # The pay link never changes, so neither does the image.
    return Response(
        buffer.getvalue(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# ------------------------------------------------------------------ beyond the document


def _get_invoice(bot_id: str, fields: dict[str, Any], request: Request) -> JSONResponse:
    number = _bot_number(bot_id)
    wanted = parse_invoice_request(fields)
    holder = _holder(request, write=False)
    _sign_in(request, holder, number, wanted.user_id, wanted.pin)
    session = holder.session
    bot = _bot(session, number)
    invoice, creator = _bot_invoice(session, bot, wanted.invoice_id)
    return _success(
        _present(request, session, invoice, bot=bot, creator=creator, with_payload=True)
    )


@router.post(
    "/get-invoice",
    summary="Read one invoice (beyond the document)",
    description="Any user of the bot, with their PIN, may read an invoice of the bot.",
    response_model=None,
    responses={200: {"model": SuccessWithPayloadOut}, **ERRORS},
    openapi_extra=_body(INVOICE_PARAMETERS),
)
async def get_invoice(bot_id: str, fields: Fields, request: Request) -> Response:
    return await in_worker_thread(request, partial(_get_invoice, bot_id, fields, request))


@router.get(
    "/get-invoice",
    summary="Read one invoice (query string)",
    response_model=None,
    responses={200: {"model": SuccessWithPayloadOut}, **ERRORS},
    openapi_extra=_query_parameters(INVOICE_PARAMETERS),
)
async def get_invoice_get(bot_id: str, fields: Fields, request: Request) -> Response:
    return await in_worker_thread(request, partial(_get_invoice, bot_id, fields, request))


@router.post(
    "/pay-invoice",
    summary="Pay an invoice from your balance (beyond the document; POST only)",
    description="Another user of the same bot pays, with their PIN; the money moves from their balance to the creator's.",
    response_model=None,
    responses={200: {"model": SuccessWithPayloadOut}, **ERRORS},
    openapi_extra=_body(INVOICE_PARAMETERS),
)
async def pay_invoice(bot_id: str, fields: Fields, request: Request) -> Response:
    return await in_worker_thread(request, partial(_pay_invoice, bot_id, fields, request))


def _pay_invoice(bot_id: str, fields: dict[str, Any], request: Request) -> JSONResponse:
    number = _bot_number(bot_id)
    wanted = parse_invoice_request(fields)
    holder = _holder(request, write=True)
    payer = _sign_in(request, holder, number, wanted.user_id, wanted.pin)
    session = holder.session
    bot = _bot(session, number)
    invoice, creator = _bot_invoice(session, bot, wanted.invoice_id)
    try:
        paid = accounts.pay_from_balance(session, payer, invoice)
    except (NotFound, Conflict) as exc:
        if exc.code == "own_invoice":
            raise BotsError(409, "You cannot pay your own invoice") from None
        # The invoice is this bot's (checked above), so a refusal is about its state: the
        # core re-read the row when it refused (NotFound: someone else paid it first).
        current = accounts.find_by_short_code(session, wanted.invoice_id)
        if status_word(current) == "paid":
            raise BotsError(409, "Invoice is already paid") from None
        if isinstance(exc, NotFound):
            raise BotsError(404, "Invoice not found") from None
        if current.status == InvoiceStatus.PROCESSING:
            raise BotsError(409, "A payment of this invoice is in progress") from None
        raise BotsError(409, f"Invoice cannot be paid: it is {current.status}") from None
    if paid.transfer.status != "completed":
        # A 4xx answer rolls the request back, so a refused payment leaves no trace.
        raise BotsError(402, "Insufficient balance to pay this invoice")
    return _success(
        _present(request, session, paid.view.invoice, bot=bot, creator=creator, with_payload=True)
    )


# ------------------------------------------------------------------ errors


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BotsError)
    async def bots_error(_request: Request, exc: BotsError) -> JSONResponse:
        return _error(exc.status, exc.msg)

    @app.exception_handler(BadParameters)
    async def bad_parameters(_request: Request, exc: BadParameters) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        if isinstance(exc, AccountLocked | RateLimited):
            return _error(429, _sentence(exc.message), exc.headers)
        if isinstance(exc, Unauthenticated):
            return _error(401, WRONG_CREDENTIALS)
        return _error(exc.status_code, _sentence(exc.message), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, "Invalid parameters")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(404, f"Not found: {request.url.path}")
        if exc.status_code == 405:
            return _error(
                405, f"Method {request.method} is not allowed here", dict(exc.headers or {})
            )
        return _error(exc.status_code, str(exc.detail))
