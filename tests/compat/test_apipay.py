"""Conformance: seed 000 (ApiPay.kz invoices), every example and every listed error,
through the real server at /compat/apipay."""

from __future__ import annotations

import re

import httpx
import pytest

from invoicehub.compat import CompatMountError, mount_compat_apis
from tests.conftest import LiveServer, OrgKeys, create_org, make_settings

BASE = "/compat/apipay/api"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def apipay(server: LiveServer, org: OrgKeys) -> httpx.Client:
    with server.client() as client:
        client.headers["X-API-Key"] = org.secret_key
        yield client


def create(client: httpx.Client, **fields: object) -> dict:
    body = {
        "amount": 10000,
        "phone_number": "87001234567",
        "description": "Payment for order #123",
    } | fields
    response = client.post(f"{BASE}/invoices", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_invoice_as_documented(apipay: httpx.Client, api: httpx.Client) -> None:
    endpoint = api.post("/v1/webhook-endpoints", json={"url": "https://shop.example/hooks"}).json()
    response = apipay.post(
        f"{BASE}/invoices",
        json={
            "amount": 10000,
            "phone_number": "87001234567",
            "description": "Payment for order #123",
            "external_order_id": "order_123",
            "webhook_id": endpoint["number"],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == [
        "id",
        "kaspi_invoice_id",
        "kaspi_qr_token",
        "payment_url",
        "amount",
        "status",
        "description",
        "external_order_id",
        "created_at",
    ]
    assert isinstance(body["id"], int)
    assert body["kaspi_invoice_id"].isdigit()
    assert (body["amount"], body["status"]) == ("10000.00", "pending")
    assert (body["description"], body["external_order_id"]) == (
        "Payment for order #123",
        "order_123",
    )
    assert TIMESTAMP.match(body["created_at"])
    assert body["payment_url"].endswith(f"/pay/{body['kaspi_qr_token']}")
    # The core knows it as a KZT invoice routed to that endpoint, with a pay page.
    native = api.get("/v1/invoices", params={"external_order_id": "order_123"}).json()["data"][0]
    assert (native["currency"], native["total"], native["webhook_id"]) == (
        "KZT",
        "10000.00",
        endpoint["id"],
    )
    assert native["customer"]["phone"] == "+77001234567"


def test_the_code_examples_minimal_body(apipay: httpx.Client) -> None:
    body = create(apipay)
    assert body["external_order_id"] is None
    assert body["payment_url"]


def test_amounts_in_tiyn_and_bounds(apipay: httpx.Client) -> None:
    assert create(apipay, amount=0.01)["amount"] == "0.01"
    assert create(apipay, amount=99999999.99)["amount"] == "99999999.99"
    assert create(apipay, amount="150.5")["amount"] == "150.50"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": None}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 100000000}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"phone_number": None}, "phone_number"),
        ({"phone_number": "+77001234567"}, "phone_number"),
        ({"phone_number": "8700123456"}, "phone_number"),
        ({"description": "x" * 501}, "description"),
        ({"external_order_id": "x" * 256}, "external_order_id"),
        ({"webhook_id": 999999}, "webhook_id"),
    ],
)
def test_validation_names_the_field(apipay: httpx.Client, fields: dict, field: str) -> None:
    body = {"amount": 10000, "phone_number": "87001234567"} | fields
    body = {k: v for k, v in body.items() if v is not None}
    response = apipay.post(f"{BASE}/invoices", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert field in error["errors"], error
    assert error["message"]


def test_unverified_organization_is_told_to_verify(server: LiveServer, settings) -> None:
    unverified = create_org(settings, verified=False)
    with server.client() as client:
        response = client.post(
            f"{BASE}/invoices",
            json={"amount": 100, "phone_number": "87001234567"},
            headers={"X-API-Key": unverified.secret_key},
        )
    assert response.status_code == 403
    assert "Complete verification in Dashboard → Verification" in response.json()["message"]


def test_authentication(server: LiveServer) -> None:
    with server.client() as client:
        missing = client.get(f"{BASE}/invoices")
        wrong = client.get(f"{BASE}/invoices", headers={"X-API-Key": "sk_wrong"})
    assert (missing.status_code, missing.json()["message"]) == (401, "Unauthenticated.")
    assert wrong.status_code == 401


def test_list_invoices_as_documented(apipay: httpx.Client, api: httpx.Client) -> None:
    first = create(apipay, description="Order #1")
    second = create(apipay, description="Order #2", external_order_id="shop-2")
    api.post(
        f"/v1/invoices/{_native_id(api, second)}/simulate-payment", json={"outcome": "succeeded"}
    ).raise_for_status()
    response = apipay.get(
        f"{BASE}/invoices", params={"page": 1, "per_page": 20, "status[]": "paid"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {"current_page": 1, "per_page": 20, "total": 1}
    item = body["data"][0]
    assert list(item) == ["id", "amount", "status", "description", "created_at", "paid_at"]
    assert (item["id"], item["status"], item["amount"]) == (second["id"], "paid", "10000.00")
    assert TIMESTAMP.match(item["paid_at"])
    both = apipay.get(
        f"{BASE}/invoices", params=[("status[]", "paid"), ("status[]", "pending")]
    ).json()
    assert [i["id"] for i in both["data"]] == [second["id"], first["id"]]
    assert both["meta"] == {
        "current_page": 1,
        "per_page": 10,
        "total": 2,
    }  # per_page defaults to 10
    assert [
        i["id"] for i in apipay.get(f"{BASE}/invoices", params={"search": "shop-2"}).json()["data"]
    ] == [second["id"]]
    assert [
        i["id"]
        for i in apipay.get(f"{BASE}/invoices", params={"search": "Order #1"}).json()["data"]
    ] == [first["id"]]
    paged = apipay.get(f"{BASE}/invoices", params={"per_page": 1, "page": 2}).json()
    assert [i["id"] for i in paged["data"]] == [first["id"]]
    today = first["created_at"][:10]
    assert (
        apipay.get(f"{BASE}/invoices", params={"date_from": today, "date_to": today}).json()[
            "meta"
        ]["total"]
        == 2
    )
    assert (
        apipay.get(
            f"{BASE}/invoices", params={"date_from": "2000-01-01", "date_to": "2000-01-02"}
        ).json()["data"]
        == []
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"page": 0}, "page"),
        ({"search": "x" * 101}, "search"),
        ({"status[]": "unknown"}, "status"),
        ({"date_from": "31.01.2025"}, "date_from"),
        ({"date_from": "2025-02-01", "date_to": "2025-01-31"}, "date_to"),
    ],
)
def test_list_validation(apipay: httpx.Client, params: dict, field: str) -> None:
    response = apipay.get(f"{BASE}/invoices", params=params)
    assert response.status_code == 422, response.text
    assert any(key.startswith(field) for key in response.json()["errors"]), response.json()


def test_get_invoice_as_documented(apipay: httpx.Client, api: httpx.Client) -> None:
    made = create(apipay, external_order_id="order_123")
    api.patch(
        f"/v1/invoices/{_native_id(api, made)}",
        json={"customer": {"name": "John Doe", "phone": "87001234567"}},
    ).raise_for_status()
    body = apipay.get(f"{BASE}/invoices/{made['id']}").json()
    assert list(body) == [
        "id",
        "kaspi_invoice_id",
        "amount",
        "status",
        "description",
        "external_order_id",
        "client_name",
        "client_phone",
        "created_at",
        "paid_at",
    ]
    assert (body["client_name"], body["client_phone"], body["paid_at"]) == (
        "John Doe",
        "87001234567",
        None,
    )
    assert body["kaspi_invoice_id"] == made["kaspi_invoice_id"]
    missing = apipay.get(f"{BASE}/invoices/999999999")
    assert missing.status_code == 404
    assert missing.json()["message"]


def test_another_organizations_invoice_is_not_found(
    apipay: httpx.Client, server: LiveServer, settings
) -> None:
    made = create(apipay)
    other = create_org(settings, name="Other")
    with server.client() as client:
        response = client.get(
            f"{BASE}/invoices/{made['id']}", headers={"X-API-Key": other.secret_key}
        )
    assert response.status_code == 404


def test_cancel_only_a_pending_invoice(apipay: httpx.Client, api: httpx.Client) -> None:
    made = create(apipay)
    cancelled = apipay.post(f"{BASE}/invoices/{made['id']}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (list(body), body["id"], body["status"]) == (
        ["id", "status", "cancelled_at"],
        made["id"],
        "cancelled",
    )
    assert TIMESTAMP.match(body["cancelled_at"])
    again = apipay.post(f"{BASE}/invoices/{made['id']}/cancel")
    assert again.status_code == 400
    paid = create(apipay)
    api.post(
        f"/v1/invoices/{_native_id(api, paid)}/simulate-payment", json={"outcome": "succeeded"}
    ).raise_for_status()
    assert apipay.post(f"{BASE}/invoices/{paid['id']}/cancel").status_code == 400
    assert apipay.post(f"{BASE}/invoices/999999999/cancel").status_code == 404


def test_status_flow_paid_refunded_expired(
    apipay: httpx.Client, api: httpx.Client, settings, moved_clock
) -> None:
    made = create(apipay)
    assert (
        apipay.post(f"{BASE}/invoices/{made['id']}/refund").status_code == 400
    )  # pending cannot be refunded
    api.post(
        f"/v1/invoices/{_native_id(api, made)}/simulate-payment", json={"outcome": "succeeded"}
    ).raise_for_status()
    assert apipay.get(f"{BASE}/invoices/{made['id']}").json()["status"] == "paid"
    refunded = apipay.post(f"{BASE}/invoices/{made['id']}/refund")
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "refunded"
    assert apipay.get(f"{BASE}/invoices/{made['id']}").json()["status"] == "refunded"

    expiring = create(apipay)
    native_id = _native_id(api, expiring)
    soon = api.get(f"/v1/invoices/{native_id}").json()["created_at"]
    api.patch(
        f"/v1/invoices/{native_id}", json={"expires_at": _plus_seconds(soon, 30)}
    ).raise_for_status()
    moved_clock[0] = 120
    from invoicehub.invoices.service import expire_due_invoices
    from tests.payments.test_links_and_sandbox import _in_session

    _in_session(settings, expire_due_invoices)
    assert apipay.get(f"{BASE}/invoices/{expiring['id']}").json()["status"] == "expired"
    assert (
        apipay.get(f"{BASE}/invoices", params={"status[]": "expired"}).json()["meta"]["total"] == 1
    )


def test_rate_limit_answers_429(database_url: str) -> None:
    limited = make_settings(database_url, rate_limit_per_minute=2)
    org = create_org(limited)
    with LiveServer(limited) as live, live.client() as client:
        client.headers["X-API-Key"] = org.secret_key
        answers = [client.get(f"{BASE}/invoices") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {"message": "Too Many Attempts."}
    assert answers[2].headers["retry-after"].isdigit()
    assert answers[0].headers["x-ratelimit-limit"] == "2"


def test_prefix_is_configurable_and_mounts_at_the_root(database_url: str) -> None:
    at_root = make_settings(database_url, compat_apipay_prefix="")
    org = create_org(at_root)
    with LiveServer(at_root) as live, live.client() as client:
        response = client.get("/api/invoices", headers={"X-API-Key": org.secret_key})
        native = client.get("/v1/invoices", headers={"Authorization": f"Bearer {org.secret_key}"})
    assert response.status_code == 200
    assert native.status_code == 200


def test_colliding_mounts_refuse_to_start(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import invoicehub.compat as compat
    from invoicehub.app import create_app

    original = compat.registered_apis()
    monkeypatch.setattr(
        compat, "registered_apis", lambda: [*original, compat.CompatApi("clone", original[0].build)]
    )
    settings = make_settings(database_url)
    object.__setattr__(settings, "compat_clone_prefix", settings.compat_apipay_prefix)
    with pytest.raises(CompatMountError, match=r"clone API .* already answered by the apipay API"):
        create_app(settings)
    both_at_root = make_settings(database_url, compat_apipay_prefix="")
    object.__setattr__(both_at_root, "compat_clone_prefix", "")
    with pytest.raises(CompatMountError, match="only one API can be mounted at the root"):
        create_app(both_at_root)
    bad = make_settings(database_url, compat_apipay_prefix="compat")
    with pytest.raises(CompatMountError, match="must start with /"):
        create_app(bad)
    assert mount_compat_apis  # the function the app uses


def _native_id(api: httpx.Client, apipay_invoice: dict) -> str:
    """The native id of an ApiPay invoice: the one whose payment link token it shows."""
    for invoice in api.get("/v1/invoices", params={"limit": 100}).json()["data"]:
        if invoice["qr_token"] == apipay_invoice["kaspi_qr_token"]:
            return invoice["id"]
    raise AssertionError("no native invoice for that ApiPay invoice")


def _plus_seconds(iso: str, seconds: int) -> str:
    import datetime as dt

    return (
        dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) + dt.timedelta(seconds=seconds)
    ).isoformat()
