"""API keys: a public ``pk_…`` and a secret ``sk_…`` per key; the secret is shown once.

The secret is 192 random bits, so a SHA-256 of it is as good as a slow hash and lets the
key be found by an index; the found hash is still compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.orm import Session

from invoicehub.auth import repository
from invoicehub.errors import Conflict, NotFound, Unauthenticated
from invoicehub.kit import clock
from invoicehub.kit.db import unevented
from invoicehub.kit.ids import new_public_id, new_secret
from invoicehub.models import ApiKey, Organization


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret_key: str


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling: resolved once per request and shared by every layer that asks."""

    organization_id: int
    organization_public_id: str
    organization_verified: bool
    api_key_id: int
    public_key: str


# session.info key under which the rows of authenticated organizations are kept.
_KEPT = "invoicehub_authenticated_organizations"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, organization: Organization, *, name: str | None = None
) -> IssuedKey:
    secret = new_secret("sk")
    key = repository.add(
        session,
        ApiKey(
            public_id=new_public_id("key"),
            organization_id=organization.id,
            public_key=new_secret("pk", 18),
            secret_hash=hash_secret(secret),
            secret_last4=secret[-4:],
            name=name,
            created_at=clock.utcnow(),
        ),
    )
    return IssuedKey(key=key, secret_key=secret)


def authenticate_secret(
    session: Session, secret: str, *, public_key: str | None = None
) -> AuthContext:
    """Resolve a secret key (and, where the wire format sends it, its public key)."""
    if not secret.startswith("sk_"):
        raise Unauthenticated("invalid API key: expected a secret key starting with sk_")
    expected_hash = hash_secret(secret)
    found = repository.find_active_by_secret_hash(session, expected_hash)
    if found is None or not hmac.compare_digest(found.secret_hash, expected_hash):
        raise Unauthenticated("invalid API key")
    if public_key is not None and not hmac.compare_digest(found.public_key, public_key):
        raise Unauthenticated("invalid API key: the public key does not belong to the secret key")
    organization = found.organization
    session.info.setdefault(_KEPT, {})[organization["id"]] = organization
    return AuthContext(
        organization_id=organization["id"],
        organization_public_id=organization["public_id"],
        organization_verified=organization["verified"],
        api_key_id=found.id,
        public_key=found.public_key,
    )


def caller_organization(session: Session, organization_id: int) -> Organization | None:
    """The caller's organization as the key lookup read it in this transaction, for reading
    its settings without another query: a detached snapshot, not attached to ``session``,
    so a change made to it is saved nowhere (load it with orgs.repository to change it).
    None when this session authenticated no key of that organization."""
    row = session.info.get(_KEPT, {}).get(organization_id)
    return None if row is None else unevented(Organization, row)


def secret_from_headers(*, authorization: str | None, x_api_key: str | None) -> str | None:
    """The secret key from ``Authorization: Bearer sk_…`` or ``X-API-Key: sk_…``."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def list_api_keys(session: Session, organization_id: int) -> list[ApiKey]:
    """Live keys first, newest first; a secret is never shown again (only its last 4)."""
    return repository.list_for_organization(session, organization_id)


def revoke_api_key(session: Session, organization_id: int, public_id: str) -> None:
    """The key stops working at once, in every process (each request looks it up)."""
    if repository.revoke(session, organization_id, public_id, clock.utcnow()):
        return
    if repository.exists(session, organization_id, public_id):
        raise Conflict(f"API key {public_id} is already revoked", code="api_key_revoked")
    raise NotFound(f"no API key {public_id}", param="id", code="api_key_not_found")
