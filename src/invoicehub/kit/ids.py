"""Public identifiers: a type prefix and 24 random hex characters (96 bits), e.g. inv_1f3a…"""

from __future__ import annotations

import secrets


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
