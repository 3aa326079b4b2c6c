"""Shared pydantic building blocks: strict request models and the money input type."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.networks import validate_email


def _no_float_surprises(value: Any) -> Any:
    # JSON numbers arrive as float; their shortest repr is what the client wrote.
    if isinstance(value, bool):
        raise ValueError("must be a decimal amount, not a boolean")
    if isinstance(value, float):
        return repr(value)
    return value


@functools.lru_cache(maxsize=4096)
def _checked_email(value: str) -> str:
    # A pure function of the text (no DNS lookup): a refused address raises and is not kept.
    return validate_email(value)[1]


# pydantic's EmailStr (the same checks, errors, normalized answer and schema), remembered per
# process: email-validator is pure Python, ~4 % of a create, and customers' addresses repeat.
EmailAddress = Annotated[
    str, AfterValidator(_checked_email), WithJsonSchema({"type": "string", "format": "email"})
]


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


def _nul_free(value: Any, where: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: NUL characters are not accepted")
    if isinstance(value, dict):
        for key, item in value.items():
            _nul_free(key, where)
            _nul_free(item, f"{where}.{key}")


class RequestModel(BaseModel):
    """Request bodies refuse fields they do not know, so a typo is an error, not a no-op,
    and text with NUL characters, which the databases cannot store."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        _nul_free(value, info.field_name or "value")
        return value


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=False)
