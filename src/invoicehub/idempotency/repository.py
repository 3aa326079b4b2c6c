from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from invoicehub.models import IdempotencyKey


def insert_if_absent(
    session: Session,
    *,
    organization_id: int,
    key: str,
    fingerprint: str,
    token: str,
    now: dt.datetime,
) -> int | None:
    """Inserts an in-progress claim; None when the key is already there."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(IdempotencyKey)
        .values(
            organization_id=organization_id,
            key=key,
            request_fingerprint=fingerprint,
            status="in_progress",
            lock_token=token,
            locked_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "key"])
        .returning(IdempotencyKey.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def get(session: Session, organization_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.organization_id == organization_id, IdempotencyKey.key == key
        )
    )


def take_over_stale(
    session: Session, row_id: int, *, old_token: str, new_token: str, now: dt.datetime
) -> bool:
    result = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == row_id,
            IdempotencyKey.lock_token == old_token,
            IdempotencyKey.status == "in_progress",
        )
        .values(lock_token=new_token, locked_at=now)
        .returning(IdempotencyKey.id)
    )
    return result.scalar_one_or_none() is not None


def delete_row(session: Session, row_id: int, *, token: str | None = None) -> None:
    stmt = delete(IdempotencyKey).where(IdempotencyKey.id == row_id)
    if token is not None:
        stmt = stmt.where(IdempotencyKey.lock_token == token)
    session.execute(stmt)


def complete(
    session: Session,
    row_id: int,
    *,
    token: str,
    status_code: int,
    body: bytes,
    content_type: str | None,
) -> bool:
    result = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == row_id,
            IdempotencyKey.lock_token == token,
            IdempotencyKey.status == "in_progress",
        )
        .values(
            status="completed",
            response_status=status_code,
            response_body=body,
            response_content_type=content_type,
        )
        .returning(IdempotencyKey.id)
    )
    return result.scalar_one_or_none() is not None


def delete_older_than(session: Session, cutoff: dt.datetime) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
