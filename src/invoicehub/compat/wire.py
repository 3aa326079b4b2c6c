"""Small wire-format helpers the seed APIs share: exact JSON numbers, timestamps, auth."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import simplejson
from fastapi import Request
from starlette.responses import Response

from invoicehub.api.middleware import check_rate_limit
from invoicehub.api.runtime import Runtime


class ExactJSONResponse(Response):
    """JSON whose Decimal values are written as exact number literals (5500, 10.5), for the
    APIs whose documents show money as numbers. Never through float."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return simplejson.dumps(
            content, use_decimal=True, ensure_ascii=False, separators=(",", ":")
        ).encode()


def iso_z(value: dt.datetime | None) -> str | None:
    """2025-01-31T12:00:00Z: UTC, whole seconds, as the seed documents show timestamps."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def iso_date_z(value: dt.date | None) -> str | None:
    """A date shown as midnight UTC (004: "2024-02-15T00:00:00Z")."""
    return None if value is None else f"{value.isoformat()}T00:00:00Z"


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


def count_request(request: Request, bucket: str) -> None:
    """Applies the caller's rate limit (the one shared mechanism); raises RateLimited."""
    check_rate_limit(request.scope["state"], runtime_of(request), bucket)


def to_decimal_number(value: Decimal) -> Decimal | int:
    """5500.00 -> 5500, 10.50 -> 10.5: the plain number a JSON client expects."""
    normalized = value.normalize()
    return int(normalized) if normalized == normalized.to_integral_value() else normalized
