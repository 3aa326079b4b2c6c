"""``Idempotency-Key`` on POST: the first successful response is stored and replayed.

A key is claimed in a short transaction of its own, before the request runs, and completed
in the request's own transaction, together with the changes it made. So:
- the same key with a different request is refused (422);
- the same key while the first request still runs is refused (409);
- a claim still in progress after ``stale_after`` belongs to a request that died before
  committing anything, so it may be taken over and the request run again;
- a request that fails (4xx/5xx) releases its key: nothing was stored, so a retry runs anew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from invoicehub.errors import IdempotencyError, ValidationFailed
from invoicehub.idempotency import repository
from invoicehub.kit import clock

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Claim:
    row_id: int
    token: str


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str | None


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim_key(
    session: Session,
    *,
    organization_id: int,
    key: str,
    request_fingerprint: str,
    ttl: dt.timedelta,
    stale_after: dt.timedelta,
) -> Claim | StoredResponse:
    """Claims ``key`` for this request, or returns the stored response to replay."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            param="Idempotency-Key",
            code="invalid_idempotency_key",
        )
    now = clock.utcnow()
    token = secrets.token_hex(16)
    row_id = repository.insert_if_absent(
        session,
        organization_id=organization_id,
        key=key,
        fingerprint=request_fingerprint,
        token=token,
        now=now,
    )
    if row_id is not None:
        return Claim(row_id, token)
    existing = repository.get(session, organization_id, key)
    if existing is None:  # deleted between our insert and read; the caller may retry
        raise IdempotencyError(
            "this Idempotency-Key is being released by another request; retry",
            code="idempotency_key_in_use",
            param="Idempotency-Key",
        )
    if existing.created_at < now - ttl:
        repository.delete_row(session, existing.id)
        return claim_key(
            session,
            organization_id=organization_id,
            key=key,
            request_fingerprint=request_fingerprint,
            ttl=ttl,
            stale_after=stale_after,
        )
    if existing.request_fingerprint != request_fingerprint:
        raise ValidationFailed(
            "this Idempotency-Key was already used with a different request; use a new key",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    if existing.status == "completed" and existing.response_status is not None:
        return StoredResponse(
            existing.response_status, existing.response_body or b"", existing.response_content_type
        )
    if existing.locked_at < now - stale_after and repository.take_over_stale(
        session, existing.id, old_token=existing.lock_token, new_token=token, now=now
    ):
        return Claim(existing.id, token)
    raise IdempotencyError(
        "a request with this Idempotency-Key is still in progress; retry later",
        code="idempotency_key_in_use",
        param="Idempotency-Key",
    ) from None


def complete_claim(
    session: Session, claim: Claim, *, status_code: int, body: bytes, content_type: str | None
) -> bool:
    return repository.complete(
        session,
        claim.row_id,
        token=claim.token,
        status_code=status_code,
        body=body,
        content_type=content_type,
    )


def release_claim(session: Session, claim: Claim) -> None:
    repository.delete_row(session, claim.row_id, token=claim.token)


def purge_expired_keys(session: Session, *, ttl: dt.timedelta) -> int:
    return repository.delete_older_than(session, clock.utcnow() - ttl)
