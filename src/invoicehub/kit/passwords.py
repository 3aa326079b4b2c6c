"""Passwords and PINs: argon2id hashes, and one check that costs the same whether or not the
person exists."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()
# Verified against when nobody matches, so a wrong email costs what a wrong password does.
_DUMMY_HASH = HASHER.hash("no such person")


def hash_password(secret: str) -> str:
    return HASHER.hash(secret)


def password_matches(stored_hash: str | None, secret: str) -> bool:
    """True only for a stored hash that ``secret`` matches; ``None`` still pays for a check."""
    try:
        HASHER.verify(stored_hash or _DUMMY_HASH, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
