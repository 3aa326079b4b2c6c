"""Signed webhooks, end to end: a real server, the real sender, a local receiver that
verifies every signature with the standardwebhooks library."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from invoicehub.config import Settings
from tests.conftest import LiveServer, create_org, fresh_database, make_settings
from tests.webhooks.helpers import open_invoice, register, run_sender_once
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.support import disable_every_endpoint


# These tests run the sender, which claims every due delivery in its database: they get a
# database of their own so deliveries left by other modules are never theirs to send.
@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(str(tmp_path_factory.mktemp("delivery-db"))) as url:
        yield url


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(autouse=True)
def _nothing_left_to_send(settings: Settings) -> Iterator[None]:
    yield
    disable_every_endpoint(settings)


def test_secret_is_shown_once_and_endpoints_are_managed(api: httpx.Client) -> None:
    created = register(
        api, "https://shop.example/hooks", enabled_events=["invoice.paid"], description="orders"
    )
    assert created["secret"].startswith("whsec_")
    fetched = api.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert fetched["secret"] is None
    assert api.get("/v1/webhook-endpoints").json()["data"][0]["id"] == created["id"]
    updated = api.patch(
        f"/v1/webhook-endpoints/{created['id']}", json={"enabled_events": ["*"], "enabled": False}
    ).json()
    assert (updated["enabled_events"], updated["enabled"]) == (["*"], False)
    bad = api.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example/x", "enabled_events": ["invoice.nope"]},
    )
    assert (bad.status_code, bad.json()["error"]["param"]) == (422, "enabled_events")
    for url in ("ftp://shop.example/x", "https://user:pw@shop.example/x", "not a url"):
        refused = api.post("/v1/webhook-endpoints", json={"url": url})
        assert (refused.status_code, refused.json()["error"]["param"]) == (422, "url"), url
    assert api.delete(f"/v1/webhook-endpoints/{created['id']}").status_code == 204
    assert api.get(f"/v1/webhook-endpoints/{created['id']}").status_code == 404


def test_paid_invoice_is_delivered_signed_and_logged(api: httpx.Client, settings) -> None:
    with Receiver() as receiver:
        endpoint = register(api, receiver.url)
        invoice = open_invoice(api)
        api.post(f"/v1/invoices/{invoice['id']}/payments").raise_for_status()
        while run_sender_once(settings):
            pass
        received = receiver.wait_for(3)
    # Deliveries go out concurrently: no order is promised (the payload has the timestamp).
    types = sorted(json.loads(r.body)["type"] for r in received)
    assert types == ["invoice.created", "invoice.finalized", "invoice.paid"]
    received.sort(key=lambda r: json.loads(r.body)["timestamp"])
    verifier = Webhook(endpoint["secret"])
    for request in received:
        verified = verifier.verify(request.body, request.headers)
        assert verified["id"] == request.headers["webhook-id"]
    paid = json.loads(received[-1].body)
    assert paid["data"]["object"]["status"] == "paid"
    assert paid["data"]["object"]["id"] == invoice["id"]

    log = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"]
    assert [d["status"] for d in log] == ["succeeded"] * 3
    assert log[0]["attempts"][0]["status_code"] == 200
    assert log[0]["attempts"][0]["response_body"] == "ok"
    by_event = api.get(f"/v1/events/{paid['id']}/deliveries").json()["data"]
    assert [d["endpoint_id"] for d in by_event] == [endpoint["id"]]


def test_a_tampered_body_does_not_verify(api: httpx.Client, settings) -> None:
    from standardwebhooks.webhooks import WebhookVerificationError

    with Receiver() as receiver:
        endpoint = register(api, receiver.url)
        open_invoice(api)
        run_sender_once(settings)
        request = receiver.wait_for(1)[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(
            request.body.replace("invoice", "invoicx"), request.headers
        )


def test_during_rotation_old_and_new_secrets_both_verify(api: httpx.Client, settings) -> None:
    with Receiver() as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        rotated = api.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret").json()
        assert rotated["secret"] != endpoint["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        open_invoice(api)
        run_sender_once(settings)
        request = receiver.wait_for(1)[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


def test_an_invoice_naming_an_endpoint_notifies_that_endpoint_alone(
    api: httpx.Client, server: LiveServer, settings
) -> None:
    with Receiver() as named, Receiver() as other:
        target = register(api, named.url)
        register(api, other.url)
        invoice = open_invoice(api, webhook_id=target["id"])
        assert invoice["webhook_id"] == target["id"]
        run_sender_once(settings)
        assert len(named.wait_for(2)) == 2  # created, finalized
        assert all(
            json.loads(r.body)["data"]["object"]["id"] == invoice["id"] for r in named.requests
        )
        assert other.requests == []
    stranger = create_org(settings, name="Stranger")
    with server.client(stranger.secret_key) as stranger_api:
        foreign = stranger_api.post(
            "/v1/invoices",
            json={
                "line_items": [{"description": "x", "unit_price": "1"}],
                "webhook_id": target["id"],
            },
        )
    assert foreign.status_code == 422
    assert foreign.json()["error"]["param"] == "webhook_id"


def test_410_disables_the_endpoint_and_says_so(api: httpx.Client, settings) -> None:
    with Receiver(Reply(status=410, body="gone")) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        run_sender_once(settings)
        receiver.wait_for(1)
    after = api.get(f"/v1/webhook-endpoints/{endpoint['id']}").json()
    assert after["enabled"] is False
    assert "410" in after["disabled_reason"]
    events = api.get("/v1/events", params={"type": "webhook_endpoint.disabled"}).json()["data"]
    assert [e["object_id"] for e in events] == [endpoint["id"]]
    delivery = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"][0]
    assert (delivery["status"], delivery["last_status_code"]) == ("failed", 410)


def test_a_failure_is_retried_with_the_same_webhook_id(
    api: httpx.Client, settings, moved_clock
) -> None:
    replies = iter([Reply(status=500, body="boom" * 1000), Reply(status=200)])
    with Receiver(lambda _r: next(replies)) as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        run_sender_once(settings)
        first = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"][0]
        assert (first["status"], first["attempt_count"], first["last_status_code"]) == (
            "pending",
            1,
            500,
        )
        assert len(first["attempts"][0]["response_body"]) == 2048
        assert run_sender_once(settings) == 0  # not due yet: the next try is ~5 s later
        moved_clock[0] = 6
        assert run_sender_once(settings) == 1
        received = receiver.wait_for(2)
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    final = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"][0]
    assert (final["status"], final["attempt_count"]) == ("succeeded", 2)


def test_refused_destination_is_never_connected_to(database_url: str) -> None:
    strict = make_settings(database_url, webhook_allow_private=False)
    org = create_org(strict)
    with LiveServer(strict) as live, live.client(org.secret_key) as api, Receiver() as receiver:
        for url in (
            receiver.url,
            f"http://2130706433:{receiver.port}/",
            f"http://[::ffff:127.0.0.1]:{receiver.port}/",
            "http://localhost/",
        ):
            refused = api.post("/v1/webhook-endpoints", json={"url": url})
            assert refused.status_code == 422, url
            assert refused.json()["error"]["code"] == "invalid_webhook_url"
        # A public-looking name that resolves to loopback is refused at send time.
        endpoint = register(api, f"http://hooks.shop.test:{receiver.port}/hooks")
        open_invoice(api)
        resolved: list[str] = []

        def resolver(host: str, port: int) -> list[str]:
            resolved.append(host)
            return ["127.0.0.1"]

        run_sender_once(strict, resolver=resolver)
        delivery = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"][0]
    assert resolved == ["hooks.shop.test", "hooks.shop.test"]  # created, finalized
    assert "loopback" in delivery["last_error"]
    assert receiver.connections == 0
    assert receiver.requests == []


def test_the_checked_address_is_the_one_connected_to(api: httpx.Client, settings) -> None:
    """DNS rebinding: the resolver answers once per attempt; the request goes to that answer."""
    with Receiver() as receiver:
        register(
            api,
            f"http://rebind.shop.test:{receiver.port}/hooks",
            enabled_events=["invoice.created"],
        )
        open_invoice(api)
        answers = iter([["127.0.0.1"], ["10.255.255.1"]])
        run_sender_once(settings, resolver=lambda host, port: next(answers))
        request = receiver.wait_for(1)[0]
    assert request.headers["host"] == f"rebind.shop.test:{receiver.port}"


def test_redeliver_and_test_event(api: httpx.Client, settings) -> None:
    with Receiver() as receiver:
        endpoint = register(api, receiver.url, enabled_events=["invoice.created"])
        open_invoice(api)
        run_sender_once(settings)
        original = api.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()["data"][0]
        again = api.post(f"/v1/webhook-deliveries/{original['id']}/redeliver")
        assert again.status_code == 202
        assert again.json()["id"] != original["id"]
        test = api.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
        assert test.status_code == 202
        run_sender_once(settings)
        received = receiver.wait_for(3)
    types = sorted(json.loads(r.body)["type"] for r in received)
    assert types == ["invoice.created", "invoice.created", "webhook.test"]
    created_ids = {
        r.headers["webhook-id"] for r in received if json.loads(r.body)["type"] == "invoice.created"
    }
    assert created_ids == {original["event_id"]}  # the redelivery kept the webhook-id
    missing = api.post("/v1/webhook-deliveries/whd_000000000000000000000000/redeliver")
    assert missing.status_code == 404
