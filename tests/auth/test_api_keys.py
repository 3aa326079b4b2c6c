"""API keys: the secret is kept only as a hash, works in either header, and can be revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from invoicehub.auth import service as auth_service
from invoicehub.config import Settings
from invoicehub.kit import clock
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.models import ApiKey, Organization
from tests.conftest import LiveServer, OrgKeys, invoice_body


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(create_db_engine(settings.database_url, pool_size=1, max_overflow=0))
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def assert_authentication_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["type"] == "authentication_error"
    assert isinstance(error["code"], str)
    assert error["code"]
    assert error["message"]
    assert "param" in error
    return error


def test_the_secret_is_stored_only_as_its_hash(db: Database, org: OrgKeys) -> None:
    with db.session(write=False) as session:
        rows = (
            session.execute(
                text("SELECT * FROM api_keys WHERE public_key = :pk"), {"pk": org.public_key}
            )
            .mappings()
            .all()
        )
    assert len(rows) == 1
    row = dict(rows[0])
    for column, value in row.items():
        if value is None:
            continue
        stored = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        assert org.secret_key not in stored, column
        assert org.secret_key.removeprefix("sk_") not in stored, column
    assert row["secret_hash"] == hashlib.sha256(org.secret_key.encode()).hexdigest()
    assert row["secret_last4"] == org.secret_key[-4:]
    assert org.secret_key.startswith("sk_")
    assert org.public_key.startswith("pk_")


def test_bearer_and_x_api_key_both_work(anonymous: httpx.Client, org: OrgKeys) -> None:
    for headers in (
        {"Authorization": f"Bearer {org.secret_key}"},
        {"Authorization": f"bearer {org.secret_key}"},
        {"X-API-Key": org.secret_key},
    ):
        listed = anonymous.get("/v1/invoices", headers=headers)
        assert listed.status_code == 200, (headers, listed.text)
        created = anonymous.post("/v1/invoices", json=invoice_body(), headers=headers)
        assert created.status_code == 201, (headers, created.text)
    # All three calls acted as the same organization.
    listed = anonymous.get("/v1/invoices", headers={"X-API-Key": org.secret_key}).json()["data"]
    assert len(listed) == 3


def test_missing_and_wrong_keys_are_401(anonymous: httpx.Client, org: OrgKeys) -> None:
    assert_authentication_error(anonymous.get("/v1/invoices"))
    assert_authentication_error(anonymous.post("/v1/invoices", json=invoice_body()))
    wrong = org.secret_key[:-1] + ("A" if org.secret_key[-1] != "A" else "B")
    for headers in (
        {"Authorization": f"Bearer {wrong}"},
        {"X-API-Key": wrong},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {org.secret_key}"},
        {"X-API-Key": "sk_"},
        {"Authorization": f"Bearer {hashlib.sha256(org.secret_key.encode()).hexdigest()}"},
    ):
        assert_authentication_error(anonymous.get("/v1/invoices", headers=headers))


def test_a_public_key_alone_is_not_enough(anonymous: httpx.Client, org: OrgKeys) -> None:
    for headers in ({"Authorization": f"Bearer {org.public_key}"}, {"X-API-Key": org.public_key}):
        assert_authentication_error(anonymous.get("/v1/invoices", headers=headers))
        assert_authentication_error(
            anonymous.post("/v1/invoices", json=invoice_body(), headers=headers)
        )
        assert_authentication_error(
            anonymous.post(
                "/v1/invoices",
                json=invoice_body(),
                headers=headers | {"Idempotency-Key": "pk-only"},
            )
        )


def test_a_revoked_key_is_401_everywhere(
    anonymous: httpx.Client, db: Database, org: OrgKeys
) -> None:
    headers = {"Authorization": f"Bearer {org.secret_key}"}
    assert anonymous.get("/v1/invoices", headers=headers).status_code == 200
    with db.session(write=True) as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.public_key == org.public_key)
            .values(revoked_at=clock.utcnow())
        )
        session.commit()

    assert_authentication_error(anonymous.get("/v1/invoices", headers=headers))
    assert_authentication_error(anonymous.get("/v1/events", headers=headers))
    assert_authentication_error(
        anonymous.get("/v1/invoices", headers={"X-API-Key": org.secret_key})
    )
    assert_authentication_error(
        anonymous.post("/v1/invoices", json=invoice_body(), headers=headers)
    )
    # The Idempotency-Key path authenticates on its own, before the endpoint: same answer.
    assert_authentication_error(
        anonymous.post(
            "/v1/invoices", json=invoice_body(), headers=headers | {"Idempotency-Key": "revoked"}
        )
    )
    with db.session(write=False) as session:
        key = session.scalar(select(ApiKey).where(ApiKey.public_key == org.public_key))
        assert key is not None
        assert key.revoked_at is not None


def test_revoking_one_key_leaves_the_others(
    server: LiveServer, anonymous: httpx.Client, db: Database, org: OrgKeys
) -> None:
    from invoicehub.auth.service import create_api_key
    from invoicehub.models import Organization

    with db.session(write=True) as session:
        organization = session.get(Organization, org.internal_id)
        assert organization is not None
        second = create_api_key(session, organization, name="second").secret_key
        session.execute(
            update(ApiKey)
            .where(ApiKey.public_key == org.public_key)
            .values(revoked_at=clock.utcnow())
        )
        session.commit()
    assert_authentication_error(
        anonymous.get("/v1/invoices", headers={"X-API-Key": org.secret_key})
    )
    assert anonymous.get("/v1/invoices", headers={"X-API-Key": second}).status_code == 200


def test_the_key_lookup_keeps_its_organization_row_for_reading_settings(
    db: Database, org: OrgKeys
) -> None:
    """The lookup reads the key and its organization in one Core query; services that only
    read the organization's settings take that snapshot instead of querying again."""
    with db.session(write=True) as session:
        auth = auth_service.authenticate_secret(session, org.secret_key)
        assert auth.organization_id == org.internal_id
        assert auth.organization_public_id == org.org_id
        snapshot = auth_service.caller_organization(session, org.internal_id)
        assert snapshot is not None
        assert auth_service.caller_organization(session, org.internal_id + 10_000) is None
        columns = [attribute.key for attribute in Organization.__mapper__.column_attrs]
        loaded = session.get(Organization, org.internal_id)
        assert loaded is not None
        assert loaded is not snapshot
        assert snapshot not in session
        assert {c: getattr(snapshot, c) for c in columns} == {
            c: getattr(loaded, c) for c in columns
        }
        snapshot.name = "changed on the snapshot only"
        session.commit()
    with db.session(write=False) as session:
        assert session.get(Organization, org.internal_id).name != "changed on the snapshot only"  # type: ignore[union-attr]
    with db.session(write=False) as session:
        assert auth_service.caller_organization(session, org.internal_id) is None
