"""ApiPay's request and response shapes, and its status words."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from invoicehub.invoices.states import InvoiceStatus

S = InvoiceStatus

# Core status -> ApiPay's word.
STATUS_WORDS = {
    S.DRAFT: "pending",
    S.OPEN: "pending",
    S.PROCESSING: "pending",
    S.PAID: "paid",
    S.PARTIALLY_REFUNDED: "refunded",
    S.REFUNDED: "refunded",
    S.CANCELLED: "cancelled",
    S.EXPIRED: "expired",
}
# ApiPay's word -> the core statuses it covers (for status[] filters).
STATUS_FILTERS = {
    "pending": ("draft", "open", "processing"),
    "paid": ("paid",),
    "refunded": ("partially_refunded", "refunded"),
    "cancelled": ("cancelled",),
    "expired": ("expired",),
}


def _number(value: Any) -> Any:
    # A JSON number as the client wrote it (repr of the float), never the binary float.
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return repr(value) if isinstance(value, float) else value


class CreateInvoice(BaseModel):
    """Unknown fields are ignored, as the original (Laravel) API does."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    amount: Annotated[
        Decimal,
        BeforeValidator(_number),
        Field(ge=Decimal("0.01"), le=Decimal("99999999.99"), allow_inf_nan=False),
    ]
    phone_number: Annotated[str, Field(pattern=r"^8\d{10}$")]
    description: Annotated[str, Field(max_length=500)] | None = None
    external_order_id: Annotated[str, Field(max_length=255)] | None = None
    webhook_id: Annotated[int, Field(ge=1)] | None = None


# Laravel's words for the failures a client can make, keyed by pydantic's error type.
MESSAGES = {
    "missing": "The {field} field is required.",
    "string_pattern_mismatch": "The {field} field format is invalid.",
    "string_too_long": "The {field} field must not be greater than {max_length} characters.",
    "greater_than_equal": "The {field} field must be at least {ge}.",
    "less_than_equal": "The {field} field must not be greater than {le}.",
    "decimal_parsing": "The {field} field must be a number.",
    "decimal_type": "The {field} field must be a number.",
    "int_parsing": "The {field} field must be an integer.",
    "int_type": "The {field} field must be an integer.",
    "int_from_float": "The {field} field must be an integer.",
    "string_type": "The {field} field must be a string.",
    "finite_number": "The {field} field must be a number.",
    "json_invalid": "The request body is not valid JSON.",
}
