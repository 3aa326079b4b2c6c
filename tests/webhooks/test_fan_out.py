"""The outbox fan-out: which endpoints get a delivery row for an event, read through the
delivery log. No sender runs here; the rows stay pending and the endpoints are deleted
afterwards (their deliveries with them), so no later sender on this database sees them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.models import Event, WebhookDelivery
from tests.conftest import LiveServer, create_org
from tests.webhooks.helpers import open_invoice, register


@pytest.fixture
def endpoints(api: httpx.Client) -> Iterator[dict[str, str]]:
    """Five endpoints that hear of invoice.created (three of them of everything), one
    disabled, one subscribed only to invoice.paid; by name -> public id."""
    made = {
        "all_1": register(api, "https://one.example/hooks", enabled_events=["*"]),
        "all_2": register(api, "https://two.example/hooks", enabled_events=["*"]),
        "created": register(api, "https://three.example/hooks", enabled_events=["invoice.created"]),
        "created_paid": register(
            api,
            "https://four.example/hooks",
            enabled_events=["invoice.created", "invoice.paid"],
        ),
        "all_3": register(api, "https://five.example/hooks", enabled_events=["*"]),
        "disabled": register(api, "https://six.example/hooks", enabled_events=["*"], enabled=False),
        "paid_only": register(api, "https://seven.example/hooks", enabled_events=["invoice.paid"]),
    }
    yield {name: endpoint["id"] for name, endpoint in made.items()}
    for endpoint in made.values():
        api.delete(f"/v1/webhook-endpoints/{endpoint['id']}")


def deliveries_by_type(api: httpx.Client, invoice_id: str) -> dict[str, list[dict]]:
    events = api.get("/v1/events", params={"object_id": invoice_id, "limit": 100}).json()["data"]
    found: dict[str, list[dict]] = {}
    for event in events:
        response = api.get(f"/v1/events/{event['id']}/deliveries", params={"limit": 100})
        assert response.status_code == 200, response.text
        found[event["type"]] = response.json()["data"]
    return found


def test_one_event_gives_one_pending_delivery_per_subscribed_enabled_endpoint(
    api: httpx.Client, endpoints: dict[str, str]
) -> None:
    invoice = open_invoice(api)
    found = deliveries_by_type(api, invoice["id"])
    assert set(found) == {"invoice.created", "invoice.finalized"}
    expected = {
        "invoice.created": {"all_1", "all_2", "created", "created_paid", "all_3"},
        "invoice.finalized": {"all_1", "all_2", "all_3"},
    }
    for event_type, names in expected.items():
        rows = found[event_type]
        assert sorted(d["endpoint_id"] for d in rows) == sorted(endpoints[n] for n in names)
        assert all(d["event_type"] == event_type for d in rows)
        assert all(
            (d["status"], d["attempt_count"], d["attempts"]) == ("pending", 0, []) for d in rows
        )
        assert all(d["next_attempt_at"] is not None for d in rows)
    every = [d["id"] for rows in found.values() for d in rows]
    assert len(set(every)) == len(every) == 8
    assert all(i.startswith("whd_") for i in every)


def test_an_invoice_naming_an_endpoint_fans_out_to_it_alone_and_only_if_it_listens(
    api: httpx.Client, endpoints: dict[str, str]
) -> None:
    named = open_invoice(api, webhook_id=endpoints["created"])
    found = deliveries_by_type(api, named["id"])
    assert [d["endpoint_id"] for d in found["invoice.created"]] == [endpoints["created"]]
    assert found["invoice.finalized"] == []  # it listens to invoice.created only

    to_disabled = open_invoice(api, webhook_id=endpoints["disabled"])
    assert all(rows == [] for rows in deliveries_by_type(api, to_disabled["id"]).values())


def test_no_endpoint_no_delivery_and_other_organizations_are_never_fanned_to(
    api: httpx.Client, server: LiveServer, settings, endpoints: dict[str, str]
) -> None:
    stranger = create_org(settings, name="Stranger")
    with server.client(stranger.secret_key) as stranger_api:
        invoice = open_invoice(stranger_api)
        found = deliveries_by_type(stranger_api, invoice["id"])
    assert set(found) == {"invoice.created", "invoice.finalized"}
    assert all(rows == [] for rows in found.values())


def test_delivery_rows_hold_the_events_time_as_every_other_timestamp_is_stored(
    api: httpx.Client, settings: Settings, endpoints: dict[str, str]
) -> None:
    """The outbox rows are written below the ORM (driver SQL, the timestamp converted once);
    read back through it they must be due at the event's own time, to the microsecond, and
    compare with timestamps the ORM wrote (the worker's claim does that comparison)."""
    invoice = open_invoice(api)
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=False) as session:
            rows = session.execute(
                select(WebhookDelivery, Event)
                .join(Event, Event.id == WebhookDelivery.event_id)
                .where(Event.object_id == invoice["id"])
            ).all()
            assert len(rows) == 8
            for delivery, event in rows:
                assert delivery.next_attempt_at == event.created_at
                assert delivery.created_at == delivery.updated_at == event.created_at
                assert delivery.next_attempt_at.tzinfo is not None
            due = session.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.id.in_([d.id for d, _ in rows]),
                    WebhookDelivery.next_attempt_at <= rows[0][1].created_at,
                )
            ).all()
            assert len(due) == 8
    finally:
        runtime.database.dispose()
