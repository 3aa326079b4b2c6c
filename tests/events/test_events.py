"""GET /v1/events: a durable, per-organization record of every state change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from invoicehub.config import Settings
from tests.conftest import LiveServer, create_org, invoice_body


def create(api: httpx.Client, **overrides: object) -> dict[str, Any]:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def events(api: httpx.Client, **params: object) -> dict[str, Any]:
    response = api.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_events(api: httpx.Client, **params: object) -> list[dict[str, Any]]:
    """Every event, oldest first, by catching up from the start."""
    page = events(api, limit=100, **params)
    assert not page["has_more"]
    return list(reversed(page["data"]))


def test_every_change_records_the_invoice_as_it_was_right_after(api: httpx.Client) -> None:
    states: list[tuple[str, dict[str, Any]]] = []

    def step(type_: str, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        states.append((type_, response.json()))
        return response.json()

    invoice = step("invoice.created", api.post("/v1/invoices", json=invoice_body()))
    url = f"/v1/invoices/{invoice['id']}"
    step("invoice.updated", api.patch(url, json={"notes": "first", "shipping": "10"}))
    step("invoice.finalized", api.post(f"{url}/finalize"))
    step("invoice.partially_paid", api.post(f"{url}/payments", json={"amount": "10.00"}))
    step("invoice.paid", api.post(f"{url}/payments"))
    step("invoice.partially_refunded", api.post(f"{url}/refunds", json={"amount": "1.00"}))
    step("invoice.refunded", api.post(f"{url}/refunds"))

    recorded = all_events(api)
    assert [e["type"] for e in recorded] == [t for t, _ in states]
    for event, (_, answered) in zip(recorded, states, strict=True):
        assert event["object"] == "event"
        assert event["id"].startswith("evt_")
        assert (event["object_type"], event["object_id"]) == ("invoice", invoice["id"])
        assert event["data"]["object"] == answered, event["type"]
        assert event["created_at"]
    # The snapshots differ: each is the invoice of its moment, not a live reference.
    statuses = [e["data"]["object"]["status"] for e in recorded]
    assert statuses == [
        "draft",
        "draft",
        "open",
        "open",
        "paid",
        "partially_refunded",
        "refunded",
    ]
    assert recorded[-1]["data"]["object"] == api.get(url).json()
    assert recorded[1]["data"]["changed"] == ["notes", "shipping"]
    assert recorded[3]["data"]["payment"]["amount"] == "10.00"
    assert recorded[5]["data"]["refund"]["amount"] == "1.00"


def test_create_open_records_the_draft_then_the_finalized_invoice(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    recorded = all_events(api, object_id=invoice["id"])
    assert [e["type"] for e in recorded] == ["invoice.created", "invoice.finalized"]
    assert recorded[0]["data"]["object"]["status"] == "draft"
    assert recorded[0]["data"]["object"]["finalized_at"] is None
    assert recorded[1]["data"]["object"] == invoice


def test_cancel_and_duplicate_record_events(api: httpx.Client) -> None:
    original = create(api)
    cancelled = api.post(f"/v1/invoices/{original['id']}/cancel").json()
    copy = api.post(f"/v1/invoices/{original['id']}/duplicate").json()
    recorded = all_events(api)
    assert [(e["type"], e["object_id"]) for e in recorded] == [
        ("invoice.created", original["id"]),
        ("invoice.cancelled", original["id"]),
        ("invoice.created", copy["id"]),
    ]
    assert recorded[1]["data"]["object"] == cancelled
    assert recorded[2]["data"]["object"] == copy


def test_failed_requests_record_nothing(api: httpx.Client) -> None:
    invoice = create(api)
    before = all_events(api)
    assert api.post(f"/v1/invoices/{invoice['id']}/payments").status_code == 409
    assert api.post("/v1/invoices", json=invoice_body(currency="XYZ")).status_code == 422
    assert api.post(f"/v1/invoices/{invoice['id']}/cancel").status_code == 200
    assert api.post(f"/v1/invoices/{invoice['id']}/cancel").status_code == 409
    after = all_events(api)
    assert [e["type"] for e in after] == [e["type"] for e in before] + ["invoice.cancelled"]


def test_paging_newest_first(api: httpx.Client) -> None:
    made = [create(api)["id"] for _ in range(5)]
    newest_first = [e["id"] for e in events(api, limit=100)["data"]]
    assert len(newest_first) == 5
    assert [e["object_id"] for e in events(api, limit=100)["data"]] == made[::-1]

    first = events(api, limit=2)
    assert [e["id"] for e in first["data"]] == newest_first[:2]
    assert first["has_more"] is True
    assert first["next_cursor"] == newest_first[1]
    second = events(api, limit=2, starting_after=first["next_cursor"])
    assert [e["id"] for e in second["data"]] == newest_first[2:4]
    assert second["has_more"] is True
    last = events(api, limit=2, starting_after=second["next_cursor"])
    assert [e["id"] for e in last["data"]] == newest_first[4:]
    assert last["has_more"] is False

    exact = events(api, limit=5)
    assert exact["has_more"] is False
    assert [e["id"] for e in exact["data"]] == newest_first
    assert events(api, limit=4)["has_more"] is True
    assert events(api)["has_more"] is False  # default limit 10 > 5 events
    assert events(api, starting_after=newest_first[-1])["data"] == []


def test_catch_up_after_an_event_is_oldest_first(api: httpx.Client) -> None:
    invoice = create(api)
    url = f"/v1/invoices/{invoice['id']}"
    api.post(f"{url}/finalize").raise_for_status()
    seen = events(api, limit=100)["data"]
    cursor = seen[0]["id"]  # the newest so far: invoice.finalized

    nothing_new = events(api, after=cursor)
    assert nothing_new["data"] == []
    assert nothing_new["has_more"] is False
    assert nothing_new["next_cursor"] == cursor  # a poller keeps its place

    api.post(f"{url}/payments", json={"amount": "1"}).raise_for_status()
    api.post(f"{url}/payments", json={"amount": "2"}).raise_for_status()
    api.post(f"{url}/payments").raise_for_status()

    page = events(api, after=cursor, limit=2)
    assert [e["type"] for e in page["data"]] == ["invoice.partially_paid", "invoice.partially_paid"]
    assert [e["data"]["payment"]["amount"] for e in page["data"]] == ["1.00", "2.00"]
    assert page["has_more"] is True
    rest = events(api, after=page["next_cursor"], limit=2)
    assert [e["type"] for e in rest["data"]] == ["invoice.paid"]
    assert rest["has_more"] is False

    caught_up = [e["id"] for e in page["data"] + rest["data"]]
    newest_first = [e["id"] for e in events(api, limit=100)["data"]]
    assert caught_up == newest_first[:3][::-1]

    from_start = events(api, after=seen[-1]["id"], limit=100)["data"]
    assert [e["type"] for e in from_start] == [
        "invoice.finalized",
        "invoice.partially_paid",
        "invoice.partially_paid",
        "invoice.paid",
    ]


def test_type_and_object_filters(api: httpx.Client) -> None:
    a = create(api, status="open")
    b = create(api)
    api.post(f"/v1/invoices/{a['id']}/payments").raise_for_status()
    api.post(f"/v1/invoices/{b['id']}/cancel").raise_for_status()

    def types(**params: object) -> list[tuple[str, str]]:
        return [(e["type"], e["object_id"]) for e in events(api, limit=100, **params)["data"]]

    assert types(type="invoice.created") == [
        ("invoice.created", b["id"]),
        ("invoice.created", a["id"]),
    ]
    assert types(type=["invoice.paid", "invoice.cancelled"]) == [
        ("invoice.cancelled", b["id"]),
        ("invoice.paid", a["id"]),
    ]
    assert types(object_id=a["id"]) == [
        ("invoice.paid", a["id"]),
        ("invoice.finalized", a["id"]),
        ("invoice.created", a["id"]),
    ]
    assert types(object_id=b["id"], type="invoice.created") == [("invoice.created", b["id"])]
    assert types(type="invoice.refunded") == []
    assert types(object_id="inv_000000000000000000000000") == []

    page = events(api, type="invoice.created", limit=1)
    assert page["has_more"] is True
    following = events(api, type="invoice.created", limit=1, starting_after=page["next_cursor"])
    assert [e["object_id"] for e in following["data"]] == [a["id"]]
    assert following["has_more"] is False


def test_another_organization_sees_none_of_them(
    server: LiveServer, api: httpx.Client, settings: Settings
) -> None:
    invoice = create(api)
    mine = events(api)["data"]
    assert len(mine) == 1
    other = create_org(settings, name="Nosy Org")
    with server.client(other.secret_key) as intruder:
        assert events(intruder)["data"] == []
        assert events(intruder, object_id=invoice["id"])["data"] == []
        assert events(intruder, type="invoice.created")["data"] == []
        # Our event ids are unknown cursors to them, never a way in.
        for param in ("starting_after", "after"):
            refused = intruder.get("/v1/events", params={param: mine[0]["id"]})
            assert refused.status_code == 422
            assert refused.json()["error"]["param"] == param


@pytest.mark.parametrize("param", ["starting_after", "after"])
def test_unknown_cursor_is_422_naming_the_param(api: httpx.Client, param: str) -> None:
    create(api)
    response = api.get("/v1/events", params={param: "evt_000000000000000000000000"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_bad_paging_parameters_are_422(api: httpx.Client) -> None:
    create(api)
    event_id = events(api)["data"][0]["id"]
    both = api.get("/v1/events", params={"starting_after": event_id, "after": event_id})
    assert both.status_code == 422
    assert both.json()["error"]["param"] == "after"
    for limit in (0, 101, "x"):
        bad = api.get("/v1/events", params={"limit": limit})
        assert bad.status_code == 422, limit
        assert bad.json()["error"]["param"] == "limit"


def test_events_need_a_key(server: LiveServer) -> None:
    with server.client() as anonymous:
        response = anonymous.get("/v1/events")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
