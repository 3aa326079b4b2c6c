"""People who use the dashboard: accounts, memberships, logins, sessions and CSRF tokens.

A login is a random 256-bit token. The browser holds it in a signed, HttpOnly, SameSite
cookie; the database holds only its SHA-256, so any process can find the session and logout
ends it everywhere. CSRF tokens are derived from the session (an HMAC of its hash), so they
need no storage and change with every login.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from invoicehub.config import Settings
from invoicehub.errors import Forbidden, NotFound, RateLimited, Unauthenticated, ValidationFailed
from invoicehub.kit import clock
from invoicehub.kit.db import Database
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.passwords import hash_password, password_matches
from invoicehub.models import DashboardSession, Membership, Organization, User
from invoicehub.users import repository

Role = Literal["owner", "member"]
ROLES: tuple[Role, ...] = ("owner", "member")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
# A login's failures are forgotten after this long without another one.
FAILURE_MEMORY = dt.timedelta(hours=1)
MAX_LOGIN_DELAY_SECONDS = 3.0


class LoginLocked(RateLimited):
    default_code = "login_locked"


# ------------------------------------------------------------------ people and memberships


def normalize_email(email: str) -> str:
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"email is not valid: {exc}", param="email") from None
    return checked.normalized.lower()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            param="password",
        )


def _check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValidationFailed(f"role must be owner or member; got {role!r}", param="role")


@dataclass(frozen=True, slots=True)
class UserAdded:
    user: User
    membership: Membership
    created: bool  # False: the person existed and got a membership (or a new role)


def add_user(
    session: Session,
    *,
    email: str,
    password: str,
    organization: Organization,
    role: str = "member",
    name: str | None = None,
) -> UserAdded:
    """Creates the person with this email, or, when they exist, checks the password and gives
    them the membership (an existing membership takes the role given). An existing person's
    password is never changed here."""
    address = normalize_email(email)
    checked_role = _check_role(role)
    _check_password(password)
    now = clock.utcnow()
    user = repository.user_by_email(session, address)
    created = user is None
    if user is None:
        user = User(
            public_id=new_public_id("usr"),
            email=address,
            password_hash=hash_password(password),
            name=(name or "").strip() or None,
            created_at=now,
            updated_at=now,
        )
        repository.add(session, user)
    elif not password_matches(user.password_hash, password):
        raise ValidationFailed(
            f"{address} already has an account and the password given is not its password; "
            "it was left unchanged",
            param="password",
            code="user_exists",
        )
    membership = repository.membership(session, user.id, organization.id)
    if membership is None:
        membership = Membership(
            user_id=user.id, organization_id=organization.id, role=checked_role, created_at=now
        )
        repository.add(session, membership)
    elif membership.role != checked_role:
        membership.role = checked_role
        session.flush()
    return UserAdded(user=user, membership=membership, created=created)


@dataclass(frozen=True, slots=True)
class OrganizationChoice:
    public_id: str
    name: str
    role: str


def organizations_of(session: Session, user_id: int) -> list[OrganizationChoice]:
    return [
        OrganizationChoice(public_id=o.public_id, name=o.name, role=m.role)
        for m, o in repository.memberships_of(session, user_id)
    ]


# ------------------------------------------------------------------ signing


class Signer:
    """HMAC-SHA256 with the installation's key: the cookie's signature and CSRF tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def cookie_value(self, token: str) -> str:
        return f"{token}.{self._mac('session', token)}"

    def token_from_cookie(self, value: str | None) -> str | None:
        if not value or value.count(".") != 1:
            return None
        token, signature = value.split(".")
        if not hmac.compare_digest(signature, self._mac("session", token)):
            return None
        return token

    def csrf_token(self, binding: str) -> str:
        return self._mac("csrf", binding)

    def csrf_ok(self, binding: str, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token(binding), presented or "")


_SIGNERS: dict[int, Signer] = {}


def signer_for(database: Database, settings: Settings) -> Signer:
    """INVOICEHUB_SECRET_KEY when set, else the key the migrations made for this installation.
    Either is the same in every process, so caching it per process is safe."""
    cached = _SIGNERS.get(id(database))
    if cached is not None:
        return cached
    if settings.secret_key:
        key = settings.secret_key
    else:
        with database.session(write=False) as session:
            stored = repository.instance_secret(session, "session_signing")
        if stored is None:
            raise RuntimeError("the database has no session_signing key: run invoicehub migrate")
        key = stored
    signer = Signer(hashlib.sha256(key.encode()).digest())
    _SIGNERS[id(database)] = signer
    return signer


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _email_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


# ------------------------------------------------------------------ logging in and out


@dataclass(frozen=True, slots=True)
class IssuedLogin:
    cookie_value: str
    expires_at: dt.datetime


class DashboardLogin:
    """Checks an email and password. Failures are counted per email (whether or not anyone
    has it) in a transaction of their own, so a failed attempt is remembered although the
    request fails; each recent failure delays the next answer, and ``login_max_failures`` of
    them lock the email for ``login_lock_minutes``. The argon2 check runs with no transaction
    open (on SQLite a write transaction would hold the one write lock for its length)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def log_in(self, email: str, password: str) -> IssuedLogin:
        try:
            address = normalize_email(email)
        except ValidationFailed:
            address = email.strip().lower()  # nobody has it; it still costs a check
        email_hash = _email_hash(address)
        now = clock.utcnow()
        with self.database.session(write=False) as session:
            throttle = repository.throttle(session, email_hash)
            locked_until = throttle.locked_until if throttle else None
            recent_failures = (
                throttle.failures
                if throttle and throttle.last_failed_at >= now - FAILURE_MEMORY
                else 0
            )
            user = repository.user_by_email(session, address)
            found = (user.id, user.password_hash) if user else None
            organization_id = repository.first_organization_of(session, user.id) if user else None
        if locked_until is not None and locked_until > now:
            minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
            raise LoginLocked(
                f"too many failed logins for this email; try again in {minutes} minute(s)"
            )
        if recent_failures:
            time.sleep(
                min(
                    MAX_LOGIN_DELAY_SECONDS,
                    recent_failures * self.settings.dashboard_login_delay_seconds,
                )
            )
        ok = password_matches(found[1] if found else None, password) and organization_id is not None
        with self.database.session(write=True) as session:
            if not ok or found is None or organization_id is None:
                repository.record_failure(
                    session,
                    email_hash,
                    now=now,
                    forget_before=now - FAILURE_MEMORY,
                    max_failures=self.settings.login_max_failures,
                    lock_until=now + dt.timedelta(minutes=self.settings.login_lock_minutes),
                )
                session.commit()
                raise Unauthenticated("wrong email or password", code="invalid_credentials")
            repository.clear_throttle(session, email_hash)
            token = secrets.token_urlsafe(32)
            expires_at = now + dt.timedelta(hours=self.settings.dashboard_session_hours)
            repository.add(
                session,
                DashboardSession(
                    token_hash=_token_hash(token),
                    user_id=found[0],
                    organization_id=organization_id,
                    created_at=now,
                    expires_at=expires_at,
                ),
            )
            repository.mark_logged_in(session, found[0], now)
            session.commit()
        signer = signer_for(self.database, self.settings)
        return IssuedLogin(cookie_value=signer.cookie_value(token), expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class DashboardContext:
    """Who is looking, and at which organization: resolved once per dashboard request."""

    session_id: int
    token_hash: str
    user_id: int
    user_public_id: str
    email: str
    name: str | None
    language: str | None
    organization_id: int
    organization_public_id: str
    organization_name: str
    organization_verified: bool
    role: str

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def resolve_session(session: Session, token: str) -> DashboardContext | None:
    token_hash = _token_hash(token)
    row = repository.live_session(session, token_hash, clock.utcnow())
    if row is None:
        return None
    return DashboardContext(
        session_id=row.session.id,
        token_hash=token_hash,
        user_id=row.user.id,
        user_public_id=row.user.public_id,
        email=row.user.email,
        name=row.user.name,
        language=row.user.language,
        organization_id=row.organization.id,
        organization_public_id=row.organization.public_id,
        organization_name=row.organization.name,
        organization_verified=row.organization.verified,
        role=row.role,
    )


def log_out(session: Session, context: DashboardContext) -> None:
    repository.end_session(session, context.session_id, clock.utcnow())


def switch_organization(
    session: Session, context: DashboardContext, organization_public_id: str
) -> None:
    for membership, organization in repository.memberships_of(session, context.user_id):
        if organization.public_id == organization_public_id:
            repository.move_session(session, context.session_id, membership.organization_id)
            return
    raise NotFound(f"no organization {organization_public_id}", param="organization")


def require_owner(context: DashboardContext) -> None:
    if not context.is_owner:
        raise Forbidden("only an owner of the organization can do this", code="owner_required")


def purge_ended_sessions(session: Session, *, older_than: dt.timedelta) -> int:
    return repository.delete_sessions_before(session, clock.utcnow() - older_than)


def set_language(session: Session, context: DashboardContext, language: str | None) -> None:
    """The person's dashboard language (None: follow the browser)."""
    repository.set_language(session, context.user_id, language)
