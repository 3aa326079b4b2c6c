"""The one error root. Every error knows its HTTP status, its machine code and, where it is
about one input, the parameter it names. One handler in ``app.py`` renders it."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 400
    error_type: ClassVar[str] = "invalid_request_error"
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        body.update(self.extra)
        return body


class ValidationFailed(AppError):
    """A payload or parameter that cannot be accepted; names the field in ``param``."""

    status_code = 422
    default_code = "validation_error"


class NotFound(AppError):
    status_code = 404
    default_code = "resource_missing"


class Conflict(AppError):
    """The request is well formed but the object's state does not allow it."""

    status_code = 409
    default_code = "state_conflict"


class Unauthenticated(AppError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class Forbidden(AppError):
    status_code = 403
    error_type = "permission_error"
    default_code = "forbidden"


class RateLimited(AppError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class IdempotencyError(AppError):
    """The same Idempotency-Key is still being worked on by another request."""

    status_code = 409
    error_type = "idempotency_error"
    default_code = "idempotency_key_in_use"


class ServiceUnavailable(AppError):
    status_code = 503
    error_type = "api_error"
    default_code = "service_unavailable"
