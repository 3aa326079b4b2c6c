from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session

from invoicehub.kit.db import Prebuilt
from invoicehub.models import ApiKey, Organization


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


_KEYS = cast(Table, ApiKey.__table__)
_ORGANIZATIONS = cast(Table, Organization.__table__)
# The organization's columns under their attribute names, for an Organization snapshot.
_ORGANIZATION_ATTRIBUTES = [
    (attribute.key, attribute.columns[0]) for attribute in inspect(Organization).column_attrs
]


@dataclass(frozen=True, slots=True)
class FoundKey:
    id: int
    public_key: str
    secret_hash: str
    organization: dict[str, Any]  # the organization's row, keyed by attribute name


# Every authenticated request runs this: prebuilt, and Core rather than two ORM entities,
# which cost ~60 µs more to load per request (docs/benchmarks.md, lead 11).
_FIND_ACTIVE = Prebuilt(
    select(
        _KEYS.c.id,
        _KEYS.c.public_key,
        _KEYS.c.secret_hash,
        *[column.label(f"organization_{key}") for key, column in _ORGANIZATION_ATTRIBUTES],
    )
    .join(_ORGANIZATIONS, _ORGANIZATIONS.c.id == _KEYS.c.organization_id)
    .where(_KEYS.c.secret_hash == bindparam("secret_hash"), _KEYS.c.revoked_at.is_(None))
)


def find_active_by_secret_hash(session: Session, secret_hash: str) -> FoundKey | None:
    rows = _FIND_ACTIVE.execute(session, {"secret_hash": secret_hash})
    if not rows:
        return None
    key_id, public_key, found_hash, *organization = rows[0]
    return FoundKey(
        id=key_id,
        public_key=public_key,
        secret_hash=found_hash,
        organization={
            key: value
            for (key, _), value in zip(_ORGANIZATION_ATTRIBUTES, organization, strict=True)
        },
    )


def list_for_organization(session: Session, organization_id: int) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey)
            .where(ApiKey.organization_id == organization_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
        )
    )


def revoke(session: Session, organization_id: int, public_id: str, now: dt.datetime) -> bool:
    """One conditional UPDATE: only a live key of this organization is revoked."""
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.organization_id == organization_id,
            ApiKey.public_id == public_id,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def exists(session: Session, organization_id: int, public_id: str) -> bool:
    return (
        session.scalar(
            select(ApiKey.id).where(
                ApiKey.organization_id == organization_id, ApiKey.public_id == public_id
            )
        )
        is not None
    )
