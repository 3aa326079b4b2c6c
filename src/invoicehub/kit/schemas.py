"""Shared pydantic building blocks: strict request models and the money input type."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _no_float_surprises(value: Any) -> Any:
    # JSON numbers arrive as float; their shortest repr is what the client wrote.
    if isinstance(value, bool):
        raise ValueError("must be a decimal amount, not a boolean")
    if isinstance(value, float):
        return repr(value)
    return value


AmountIn = Annotated[
    Decimal,
    BeforeValidator(_no_float_surprises),
    Field(
        ge=0,
        allow_inf_nan=False,
        description='A decimal amount in major units, as a string ("49.90") or a number.',
        examples=["49.90"],
    ),
]


class RequestModel(BaseModel):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=False)
