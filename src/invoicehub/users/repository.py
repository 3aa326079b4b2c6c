"""SQL for people, their memberships, their dashboard sessions and the login throttle."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from invoicehub.models import (
    DashboardSession,
    InstanceSecret,
    LoginThrottle,
    Membership,
    Organization,
    User,
)


class SessionRow(NamedTuple):
    session: DashboardSession
    user: User
    organization: Organization
    role: str


def add(session: Session, row: User | Membership | DashboardSession) -> None:
    session.add(row)
    session.flush()


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def membership(session: Session, user_id: int, organization_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.user_id == user_id, Membership.organization_id == organization_id
        )
    )


def memberships_of(session: Session, user_id: int) -> list[tuple[Membership, Organization]]:
    rows = session.execute(
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.name, Organization.id)
    )
    return [(membership, organization) for membership, organization in rows]


def first_organization_of(session: Session, user_id: int) -> int | None:
    return session.scalar(
        select(Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.id)
        .limit(1)
    )


def live_session(session: Session, token_hash: str, now: dt.datetime) -> SessionRow | None:
    """The session, its user, and the organization it works in, only while the membership
    that lets it stands: a person removed from an organization loses it at once."""
    row = session.execute(
        select(DashboardSession, User, Organization, Membership.role)
        .join(User, User.id == DashboardSession.user_id)
        .join(Organization, Organization.id == DashboardSession.organization_id)
        .join(
            Membership,
            (Membership.user_id == DashboardSession.user_id)
            & (Membership.organization_id == DashboardSession.organization_id),
        )
        .where(
            DashboardSession.token_hash == token_hash,
            DashboardSession.ended_at.is_(None),
            DashboardSession.expires_at > now,
        )
    ).first()
    return SessionRow(*row) if row is not None else None


def end_session(session: Session, session_id: int, now: dt.datetime) -> None:
    session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == session_id, DashboardSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def move_session(session: Session, session_id: int, organization_id: int) -> None:
    session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == session_id)
        .values(organization_id=organization_id)
    )


def mark_logged_in(session: Session, user_id: int, now: dt.datetime) -> None:
    session.execute(update(User).where(User.id == user_id).values(last_login_at=now))


def delete_sessions_before(session: Session, cutoff: dt.datetime) -> int:
    """Sessions that expired or were ended before ``cutoff``, and failed-login counts last
    touched before it whose lock (if any) is over."""
    result = session.execute(
        delete(DashboardSession).where(
            (DashboardSession.expires_at < cutoff) | (DashboardSession.ended_at < cutoff)
        )
    )
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failed_at < cutoff,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < cutoff),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def throttle(session: Session, email_hash: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, email_hash)


def record_failure(
    session: Session,
    email_hash: str,
    *,
    now: dt.datetime,
    forget_before: dt.datetime,
    max_failures: int,
    lock_until: dt.datetime,
) -> int:
    """One more failure for this email, counted by one atomic upsert (failures older than
    ``forget_before`` are forgotten); the one that reaches ``max_failures`` locks the email
    and starts the count again. Returns the count."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(LoginThrottle)
        .values(email_hash=email_hash, failures=1, last_failed_at=now)
        .on_conflict_do_update(
            index_elements=["email_hash"],
            set_={
                "failures": case(
                    (LoginThrottle.last_failed_at < forget_before, 1),
                    else_=LoginThrottle.failures + 1,
                ),
                "last_failed_at": now,
            },
        )
        .returning(LoginThrottle.failures)
    )
    failures = int(session.execute(stmt).scalar_one())
    if failures >= max_failures:
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.email_hash == email_hash)
            .values(failures=0, locked_until=lock_until)
        )
    return failures


def clear_throttle(session: Session, email_hash: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.email_hash == email_hash))


def instance_secret(session: Session, name: str) -> str | None:
    return session.scalar(select(InstanceSecret.value).where(InstanceSecret.name == name))


def set_language(session: Session, user_id: int, language: str | None) -> None:
    session.execute(update(User).where(User.id == user_id).values(language=language))
