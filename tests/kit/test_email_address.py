"""``kit.schemas.EmailAddress`` is pydantic's EmailStr remembered per process: it must accept,
normalize and refuse exactly as EmailStr does, and describe itself the same way."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from invoicehub.kit import schemas
from invoicehub.kit.schemas import EmailAddress

OURS: TypeAdapter[str] = TypeAdapter(EmailAddress)
PYDANTICS: TypeAdapter[str] = TypeAdapter(EmailStr)

ADDRESSES = [
    "client@example.com",
    "Client@EXAMPLE.com",  # the domain is lower-cased, the local part kept
    "  padded@example.com ",
    "Jane Doe <jane@example.com>",
    "user+tag@sub.example.co.uk",
    "ñandú@example.com",
    "not-an-email",
    "two@@example.com",
    "no-domain@",
    "ip@[127.0.0.1]",
    "line\nbreak@example.com",
    "a" * 300 + "@example.com",
]


def outcome(adapter: TypeAdapter[str], value: str) -> tuple[str, str]:
    try:
        return ("ok", adapter.validate_python(value))
    except ValidationError as error:
        [detail] = error.errors()
        return (detail["type"], detail["msg"])


@pytest.mark.parametrize("value", ADDRESSES)
def test_the_same_answer_as_emailstr(value: str) -> None:
    assert outcome(OURS, value) == outcome(PYDANTICS, value)
    # and again, now that a valid one is remembered
    assert outcome(OURS, value) == outcome(PYDANTICS, value)


def test_a_repeated_address_is_checked_once() -> None:
    address = "repeat-me@example.com"
    OURS.validate_python(address)
    before = schemas._checked_email.cache_info()
    OURS.validate_python(address)
    after = schemas._checked_email.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_the_same_schema_as_emailstr() -> None:
    class Ours(BaseModel):
        email: EmailAddress | None = None

    class Pydantics(BaseModel):
        email: EmailStr | None = None

    assert Ours.model_json_schema()["properties"] == Pydantics.model_json_schema()["properties"]
