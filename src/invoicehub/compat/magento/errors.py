"""The hub's error answers: {"success": false, "error_code", "message", "status"}, for the
core's errors, FastAPI's parameter checks and Starlette's 404/405 alike."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicehub.compat.magento.schemas import RATE_LIMIT_MESSAGE, UNAUTHORIZED_MESSAGE
from invoicehub.errors import AppError, NotFound, RateLimited, Unauthenticated, ValidationFailed

_CODES_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
}

# Laravel's words for a bad query parameter, keyed by pydantic's error type.
MESSAGES = {
    "literal_error": "The selected {field} is invalid.",
    "int_parsing": "The {field} field must be an integer.",
    "int_from_float": "The {field} field must be an integer.",
    "greater_than_equal": "The {field} field must be at least {ge}.",
    "less_than_equal": "The {field} field must not be greater than {le}.",
    "string_too_long": "The {field} field must not be greater than {max_length} characters.",
}


def _failure(
    status: int,
    code: str,
    message: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "success": False,
        "error_code": code,
        "message": message,
        "status": status,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _error_code(exc: AppError) -> str:
    if exc.code in ("invoice_not_found", "order_not_found"):
        return exc.code.upper()
    return _CODES_BY_STATUS.get(exc.status_code, "ERROR")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        if isinstance(exc, RateLimited):
            return _failure(429, "RATE_LIMIT_EXCEEDED", RATE_LIMIT_MESSAGE)
        if isinstance(exc, Unauthenticated):
            return _failure(
                401, "UNAUTHORIZED", UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"}
            )
        if isinstance(exc, ValidationFailed) and exc.param:
            return _failure(422, "VALIDATION_ERROR", exc.message, errors={exc.param: [exc.message]})
        if isinstance(exc, NotFound) and exc.code not in ("invoice_not_found", "order_not_found"):
            return _failure(404, "NOT_FOUND", "Not Found.")
        return _failure(exc.status_code, _error_code(exc), exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "header")]
            field = ".".join(loc) or "request"
            template = MESSAGES.get(str(error.get("type")), "The {field} field is invalid.")
            context = dict(error.get("ctx") or {})
            errors.setdefault(field, []).append(
                template.format(field=field.replace("_", " "), **context)
            )
        first = next(iter(errors.values()))[0]
        extra = sum(len(v) for v in errors.values()) - 1
        message = (
            first if extra == 0 else f"{first} (and {extra} more error{'s' if extra > 1 else ''})"
        )
        return _failure(422, "VALIDATION_ERROR", message, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = {404: "Not Found.", 405: "Method Not Allowed."}.get(status, str(exc.detail))
        return _failure(
            status,
            _CODES_BY_STATUS.get(status, "ERROR"),
            message,
            headers=dict(exc.headers) if exc.headers else None,
        )
