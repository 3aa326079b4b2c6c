"""Idempotency-Key on POST /v1/…: the first success is stored and replayed, never redone."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update

from invoicehub.config import Settings
from invoicehub.idempotency.service import fingerprint
from invoicehub.kit import clock
from invoicehub.kit.db import Database, create_db_engine
from invoicehub.models import IdempotencyKey
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(create_db_engine(settings.database_url, pool_size=1, max_overflow=0))
    try:
        yield database
    finally:
        database.dispose()


def new_key() -> str:
    return f"idem-{secrets.token_hex(8)}"


def invoice_ids(api: httpx.Client) -> list[str]:
    response = api.get("/v1/invoices", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["data"]]


def event_types(api: httpx.Client, object_id: str) -> list[str]:
    response = api.get("/v1/events", params={"object_id": object_id, "limit": 100})
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["data"]]


def key_row(db: Database, org: OrgKeys, key: str) -> IdempotencyKey | None:
    with db.session(write=False) as session:
        return session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.organization_id == org.internal_id, IdempotencyKey.key == key
            )
        )


def test_replay_returns_the_stored_answer_and_creates_nothing(api: httpx.Client) -> None:
    key = new_key()
    first = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    invoice_id = first.json()["id"]

    for _ in range(2):
        again = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]

    assert invoice_ids(api) == [invoice_id]
    assert event_types(api, invoice_id) == ["invoice.created"]


def test_replay_keeps_a_200_status_and_does_not_pay_twice(api: httpx.Client) -> None:
    invoice = api.post("/v1/invoices", json=invoice_body(status="open")).json()
    url = f"/v1/invoices/{invoice['id']}/payments"
    key = new_key()
    first = api.post(url, json={"amount": "100.00"}, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert first.json()["amount_paid"] == "100.00"

    replay = api.post(url, json={"amount": "100.00"}, headers={"Idempotency-Key": key})
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()

    assert [p["amount"] for p in api.get(url).json()] == ["100.00"]
    assert api.get(f"/v1/invoices/{invoice['id']}").json()["amount_paid"] == "100.00"
    assert event_types(api, invoice["id"]).count("invoice.partially_paid") == 1


def test_same_key_with_another_body_is_refused(api: httpx.Client) -> None:
    key = new_key()
    created = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
    assert created.status_code == 201

    other = api.post(
        "/v1/invoices", json=invoice_body(description="changed"), headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["param"] == "Idempotency-Key"
    assert error["message"]
    assert "idempotent-replayed" not in other.headers

    # The same key on another endpoint is another request too.
    elsewhere = api.post(
        f"/v1/invoices/{created.json()['id']}/finalize", headers={"Idempotency-Key": key}
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["error"]["code"] == "idempotency_key_reused"
    assert api.get(f"/v1/invoices/{created.json()['id']}").json()["status"] == "draft"
    assert invoice_ids(api) == [created.json()["id"]]


def test_a_failed_request_releases_its_key(api: httpx.Client, db: Database, org: OrgKeys) -> None:
    key = new_key()
    bad = api.post(
        "/v1/invoices", json=invoice_body(currency="XYZ"), headers={"Idempotency-Key": key}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "currency"
    assert key_row(db, org, key) is None

    fixed = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    row = key_row(db, org, key)
    assert row is not None
    assert (row.status, row.response_status) == ("completed", 201)

    replay = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == fixed.json()["id"]
    assert invoice_ids(api) == [fixed.json()["id"]]


def test_a_409_from_the_endpoint_is_not_stored_either(api: httpx.Client) -> None:
    draft = api.post("/v1/invoices", json=invoice_body()).json()
    url = f"/v1/invoices/{draft['id']}/payments"
    key = new_key()
    refused = api.post(url, headers={"Idempotency-Key": key})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invoice_not_payable"

    api.post(f"/v1/invoices/{draft['id']}/finalize").raise_for_status()
    paid = api.post(url, headers={"Idempotency-Key": key})
    assert paid.status_code == 200, paid.text
    assert "idempotent-replayed" not in paid.headers
    assert paid.json()["status"] == "paid"


def test_keys_belong_to_one_organization(
    server: LiveServer, api: httpx.Client, settings: Settings
) -> None:
    key = new_key()
    body = invoice_body()
    mine = api.post("/v1/invoices", json=body, headers={"Idempotency-Key": key})
    assert mine.status_code == 201
    other = create_org(settings, name="Other Org")
    with server.client(other.secret_key) as theirs:
        first = theirs.post("/v1/invoices", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        assert first.json()["id"] != mine.json()["id"]
        assert invoice_ids(theirs) == [first.json()["id"]]
        replay = theirs.post("/v1/invoices", json=body, headers={"Idempotency-Key": key})
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["id"] == first.json()["id"]
    # A third organization may even send another body under the key: it is theirs alone.
    third = create_org(settings, name="Third Org")
    with server.client(third.secret_key) as theirs:
        different = theirs.post(
            "/v1/invoices", json=invoice_body(currency="EUR"), headers={"Idempotency-Key": key}
        )
        assert different.status_code == 201, different.text
        assert different.json()["currency"] == "EUR"
    assert invoice_ids(api) == [mine.json()["id"]]
    replay_mine = api.post("/v1/invoices", json=body, headers={"Idempotency-Key": key})
    assert replay_mine.json()["id"] == mine.json()["id"]


def test_key_length_is_limited_to_255(api: httpx.Client) -> None:
    longest = "k" * 255
    accepted = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": longest})
    assert accepted.status_code == 201, accepted.text

    too_long = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 422
    error = too_long.json()["error"]
    assert error["param"] == "Idempotency-Key"
    assert error["type"] == "invalid_request_error"
    assert invoice_ids(api) == [accepted.json()["id"]]


def test_an_in_progress_key_is_409_until_its_claim_is_stale(
    api: httpx.Client, db: Database, org: OrgKeys, settings: Settings
) -> None:
    key = new_key()
    body = json.dumps(invoice_body()).encode()
    now = clock.utcnow()
    with db.session(write=True) as session:
        session.add(
            IdempotencyKey(
                organization_id=org.internal_id,
                key=key,
                request_fingerprint=fingerprint("POST", "/v1/invoices", b"", body),
                status="in_progress",
                lock_token="a" * 32,
                locked_at=now,
                created_at=now,
            )
        )
        session.commit()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}

    busy = api.post("/v1/invoices", content=body, headers=headers)
    assert busy.status_code == 409
    error = busy.json()["error"]
    assert (error["code"], error["param"]) == ("idempotency_key_in_use", "Idempotency-Key")
    assert invoice_ids(api) == []

    # The fingerprint check still comes first: another body is a misuse, not a wait.
    misuse = api.post(
        "/v1/invoices", json=invoice_body(description="x"), headers={"Idempotency-Key": key}
    )
    assert misuse.status_code == 422
    assert misuse.json()["error"]["code"] == "idempotency_key_reused"

    stale = now - dt.timedelta(seconds=settings.idempotency_stale_lock_seconds + 5)
    with db.session(write=True) as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.organization_id == org.internal_id, IdempotencyKey.key == key)
            .values(locked_at=stale)
        )
        session.commit()

    taken_over = api.post("/v1/invoices", content=body, headers=headers)
    assert taken_over.status_code == 201, taken_over.text
    assert "idempotent-replayed" not in taken_over.headers
    row = key_row(db, org, key)
    assert row is not None
    assert row.status == "completed"
    assert row.lock_token != "a" * 32

    replay = api.post("/v1/invoices", content=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == taken_over.content
    assert invoice_ids(api) == [taken_over.json()["id"]]


def test_a_key_past_its_ttl_starts_over(
    api: httpx.Client, settings: Settings, moved_clock: list[float]
) -> None:
    key = new_key()
    first = api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": key})
    assert first.status_code == 201

    moved_clock[0] = (settings.idempotency_key_ttl_hours + 1) * 3600
    other_body = api.post(
        "/v1/invoices",
        json=invoice_body(description="a day later"),
        headers={"Idempotency-Key": key},
    )
    assert other_body.status_code == 201, other_body.text
    assert "idempotent-replayed" not in other_body.headers
    assert other_body.json()["id"] != first.json()["id"]
    assert len(invoice_ids(api)) == 2


def test_concurrent_duplicates_create_exactly_one_invoice(server: LiveServer, org: OrgKeys) -> None:
    key = new_key()
    body = json.dumps(invoice_body()).encode()
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    answers: list[httpx.Response] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def fire() -> None:
        try:
            with server.client(org.secret_key) as client:
                barrier.wait(timeout=10)
                response = client.post(
                    "/v1/invoices",
                    content=body,
                    headers={"Idempotency-Key": key, "Content-Type": "application/json"},
                )
                response.read()
            with lock:
                answers.append(response)
        except BaseException as exc:  # reported below, in the test's own thread
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=fire) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert len(answers) == threads_count

    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}, [(r.status_code, r.text) for r in answers]
    created = [r for r in answers if r.status_code == 201]
    assert created
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    for refused in (r for r in answers if r.status_code == 409):
        assert refused.json()["error"]["code"] == "idempotency_key_in_use"

    with server.client(org.secret_key) as client:
        assert invoice_ids(client) == [created[0].json()["id"]]
