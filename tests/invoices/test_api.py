"""The native invoice API through real HTTP: the shape scripts rely on, and every move."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body


def create(api: httpx.Client, **overrides: object) -> dict:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_computes_tax_per_line_as_004_says(api: httpx.Client) -> None:
    invoice = create(api)
    assert invoice["subtotal"] == "5500.00"
    assert invoice["tax"] == "500.00"
    assert invoice["total"] == "6000.00"
    assert invoice["amount_due"] == "6000.00"
    assert invoice["status"] == "draft"
    assert [line["tax"] for line in invoice["line_items"]] == ["500.00", "0.00"]
    assert invoice["number"].startswith("INV-")
    assert invoice["id"].startswith("inv_")
    for field in (
        "discount",
        "shipping",
        "amount_paid",
        "amount_refunded",
        "created_at",
        "customer",
        "currency",
    ):
        assert field in invoice


def test_create_open_then_pay_in_parts_then_refund(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    assert invoice["status"] == "open"
    url = f"/v1/invoices/{invoice['id']}"

    partial = api.post(f"{url}/payments", json={"amount": "1000.00"}).json()
    assert (partial["status"], partial["amount_paid"], partial["amount_due"]) == (
        "open",
        "1000.00",
        "5000.00",
    )

    paid = api.post(f"{url}/payments", json={"amount": "5000"}).json()
    assert (paid["status"], paid["amount_due"]) == ("paid", "0.00")
    assert paid["paid_at"] is not None

    part_refund = api.post(f"{url}/refunds", json={"amount": "100.00"}).json()
    assert (part_refund["status"], part_refund["amount_refunded"]) == (
        "partially_refunded",
        "100.00",
    )

    full_refund = api.post(f"{url}/refunds").json()
    assert (full_refund["status"], full_refund["amount_refunded"]) == ("refunded", "6000.00")

    payments = api.get(f"{url}/payments").json()
    assert [(p["kind"], p["amount"]) for p in payments] == [
        ("payment", "1000.00"),
        ("payment", "5000.00"),
        ("refund", "100.00"),
        ("refund", "5900.00"),
    ]
    events = api.get("/v1/events", params={"object_id": invoice["id"], "limit": 20}).json()["data"]
    assert [e["type"] for e in reversed(events)] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.partially_paid",
        "invoice.paid",
        "invoice.partially_refunded",
        "invoice.refunded",
    ]


def test_overpayment_and_over_refund_are_refused_naming_amount(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    url = f"/v1/invoices/{invoice['id']}"
    too_much = api.post(f"{url}/payments", json={"amount": "6000.01"})
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "amount_exceeds_due"
    assert too_much.json()["error"]["param"] == "amount"
    api.post(f"{url}/payments").raise_for_status()
    over_refund = api.post(f"{url}/refunds", json={"amount": "6000.01"})
    assert over_refund.status_code == 422
    assert over_refund.json()["error"]["code"] == "amount_exceeds_refundable"


def test_illegal_transitions_are_409_with_a_code(api: httpx.Client) -> None:
    draft = create(api)
    url = f"/v1/invoices/{draft['id']}"
    pay_draft = api.post(f"{url}/payments")
    assert pay_draft.status_code == 409
    assert pay_draft.json()["error"]["code"] == "invoice_not_payable"
    refund_draft = api.post(f"{url}/refunds")
    assert refund_draft.status_code == 409
    assert refund_draft.json()["error"]["code"] == "invoice_not_refundable"

    assert api.post(f"{url}/cancel").json()["status"] == "cancelled"
    again = api.post(f"{url}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invoice_not_cancellable"
    finalize = api.post(f"{url}/finalize")
    assert finalize.status_code == 409
    assert finalize.json()["error"]["code"] == "invoice_not_finalizable"


def test_cancel_refuses_an_invoice_with_payments(api: httpx.Client) -> None:
    invoice = create(api, status="open")
    url = f"/v1/invoices/{invoice['id']}"
    api.post(f"{url}/payments", json={"amount": "1"}).raise_for_status()
    refused = api.post(f"{url}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invoice_has_payments"


def test_patch_money_only_while_draft(api: httpx.Client) -> None:
    invoice = create(api)
    url = f"/v1/invoices/{invoice['id']}"
    changed = api.patch(url, json={"discount": "500", "shipping": "25.50", "notes": "thanks"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["discount"], body["shipping"], body["total"], body["notes"]) == (
        "500.00",
        "25.50",
        "5525.50",
        "thanks",
    )

    new_lines = [
        {"description": "One thing", "quantity": "2.5", "unit_price": "10.01", "tax_rate": "7.5"}
    ]
    too_big_discount = api.patch(url, json={"line_items": new_lines})
    assert too_big_discount.status_code == 422
    assert too_big_discount.json()["error"]["code"] == "discount_too_large"
    relined = api.patch(url, json={"line_items": new_lines, "discount": "0"}).json()
    # 2.5 x 10.01 = 25.025 -> 25.03 (half-up); tax 25.03 x 7.5% = 1.87725 -> 1.88
    assert (relined["subtotal"], relined["tax"]) == ("25.03", "1.88")
    assert len(relined["line_items"]) == 1

    api.post(f"{url}/finalize").raise_for_status()
    refused = api.patch(url, json={"shipping": "1"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invoice_not_editable"
    allowed = api.patch(
        url,
        json={"notes": "still editable", "customer": {"name": "Jane", "phone": "+7 700 123 45 67"}},
    )
    assert allowed.status_code == 200
    assert allowed.json()["customer"]["phone"] == "+77001234567"


def test_duplicate_makes_a_new_draft_with_a_new_number(api: httpx.Client) -> None:
    original = create(api, status="open", description="Monthly retainer")
    copy = api.post(f"/v1/invoices/{original['id']}/duplicate")
    assert copy.status_code == 201
    body = copy.json()
    assert body["id"] != original["id"]
    assert body["number"] != original["number"]
    assert (body["status"], body["total"], body["description"]) == (
        "draft",
        "6000.00",
        "Monthly retainer",
    )
    assert [li["description"] for li in body["line_items"]] == [
        li["description"] for li in original["line_items"]
    ]


def test_currency_minor_units(api: httpx.Client) -> None:
    jpy = create(
        api,
        currency="JPY",
        line_items=[{"description": "tea", "quantity": 3, "unit_price": "333", "tax_rate": 10}],
    )
    assert (jpy["subtotal"], jpy["tax"], jpy["total"]) == ("999", "100", "1099")
    kwd = create(
        api, currency="KWD", line_items=[{"description": "x", "quantity": 1, "unit_price": "1.005"}]
    )
    assert kwd["total"] == "1.005"
    bad = api.post(
        "/v1/invoices",
        json=invoice_body(currency="JPY", line_items=[{"description": "x", "unit_price": "1.5"}]),
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "line_items.0.unit_price"
    unknown = api.post("/v1/invoices", json=invoice_body(currency="XYZ"))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["param"] == "currency"


def test_kazakh_phone_is_stored_in_e164(api: httpx.Client) -> None:
    invoice = create(
        api, customer={"name": "Aigerim", "phone": "87001234567", "telegram_user_id": 7378059553}
    )
    assert invoice["customer"]["phone"] == "+77001234567"
    assert invoice["customer"]["telegram_user_id"] == 7378059553
    bad = api.post("/v1/invoices", json=invoice_body(customer={"phone": "12"}))
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "customer.phone"


def test_bad_inputs_name_the_field_and_are_never_500(api: httpx.Client) -> None:
    cases = [
        ({"line_items": []}, "line_items"),
        (
            {"line_items": [{"description": "x", "quantity": 0, "unit_price": "1"}]},
            "line_items.0.quantity",
        ),
        ({"line_items": [{"description": "x", "unit_price": "-1"}]}, "line_items.0.unit_price"),
        (
            {"line_items": [{"description": "x", "unit_price": "1", "tax_rate": 101}]},
            "line_items.0.tax_rate",
        ),
        ({"line_items": [{"description": "x", "unit_price": "NaN"}]}, "line_items.0.unit_price"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"due_date": "2020-01-01", "issue_date": "2021-01-01"}, "due_date"),
        ({"discount": "999999"}, "discount"),
        ({"status": "paid"}, "status"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ]
    for overrides, param in cases:
        response = api.post("/v1/invoices", json=invoice_body(**overrides))
        assert response.status_code == 422, (overrides, response.text)
        error = response.json()["error"]
        assert error["param"] == param, (overrides, error)
        assert error["message"]
    not_json = api.post(
        "/v1/invoices", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422


def test_caller_number_is_checked_for_uniqueness(api: httpx.Client) -> None:
    create(api, number="CUSTOM-1")
    taken = api.post("/v1/invoices", json=invoice_body(number="CUSTOM-1"))
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "invoice_number_taken"


def test_generated_numbers_skip_numbers_taken_by_hand(api: httpx.Client) -> None:
    first = create(api)["number"]
    year = first.split("-")[1]
    create(api, number=f"INV-{year}-0002")
    assert create(api)["number"] == f"INV-{year}-0003"


def test_another_organizations_invoice_answers_as_missing(
    server: LiveServer, api: httpx.Client, settings
) -> None:
    invoice = create(api)
    other = create_org(settings, name="Other")
    with server.client(other.secret_key) as intruder:
        for method, path in (
            ("GET", f"/v1/invoices/{invoice['id']}"),
            ("POST", f"/v1/invoices/{invoice['id']}/cancel"),
            ("POST", f"/v1/invoices/{invoice['id']}/finalize"),
            ("PATCH", f"/v1/invoices/{invoice['id']}"),
        ):
            response = intruder.request(method, path, json={} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path, response.text)
        missing = intruder.get("/v1/invoices/inv_000000000000000000000000")
        assert missing.json()["error"] == intruder.get(f"/v1/invoices/{invoice['id']}").json()[
            "error"
        ] | {"message": missing.json()["error"]["message"]}
        assert intruder.get("/v1/invoices").json()["data"] == []


def test_authentication(server: LiveServer, org: OrgKeys) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/v1/invoices").status_code == 401
        assert (
            anonymous.get("/v1/invoices", headers={"Authorization": "Bearer sk_wrong"}).status_code
            == 401
        )
        assert (
            anonymous.get("/v1/invoices", headers={"X-API-Key": org.secret_key}).status_code == 200
        )
        assert (
            anonymous.get(
                "/v1/invoices", headers={"Authorization": f"Bearer {org.public_key}"}
            ).status_code
            == 401
        )
        error = anonymous.get("/v1/invoices").json()["error"]
        assert error["type"] == "authentication_error"


def test_list_filters(api: httpx.Client) -> None:
    a = create(
        api,
        customer={"email": "alice@shop.example"},
        external_order_id="order-a",
        description="Red widget",
    )
    b = create(
        api, customer={"email": "bob@shop.example"}, external_order_id="order-b", status="open"
    )
    c = create(api, customer={"email": "carol@else.example"}, status="open")
    api.post(f"/v1/invoices/{c['id']}/cancel").raise_for_status()

    def ids(**params: object) -> list[str]:
        response = api.get("/v1/invoices", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    assert ids() == [c["id"], b["id"], a["id"]]
    assert ids(status="open") == [b["id"]]
    assert ids(status=["open", "cancelled"]) == [c["id"], b["id"]]
    assert ids(customer_email="SHOP.example") == [b["id"], a["id"]]
    assert ids(external_order_id="order-a") == [a["id"]]
    assert ids(q="widget") == [a["id"]]
    assert ids(q="%") == []
    assert api.get("/v1/invoices", params={"status": "nope"}).json()["error"]["param"] == "status"
    listed = api.get("/v1/invoices", params={"include": "line_items", "limit": 1}).json()["data"][0]
    assert len(listed["line_items"]) == 2
    assert api.get("/v1/invoices", params={"limit": 1}).json()["data"][0]["line_items"] is None


def test_a_bad_list_parameter_is_a_422_naming_it(api: httpx.Client) -> None:
    """The list reads its query string as one model (InvoiceListQuery); each refusal still
    names the parameter."""
    for params, name in [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"per_page": "many"}, "per_page"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"starting_after": "x" * 41}, "starting_after"),
        ({"due_from": "2026-02-01", "due_to": "2026-01-01"}, "due_to"),
        ({"include": "payments"}, "include"),
    ]:
        answer = api.get("/v1/invoices", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["param"] == name, (params, answer.text)


def test_overdue_is_derived_and_filterable(api: httpx.Client) -> None:
    late = create(api, issue_date="2020-01-01", due_date="2020-01-31", status="open")
    create(api, status="open")
    assert late["overdue"] is True
    listed = api.get("/v1/invoices", params={"status": "overdue"}).json()["data"]
    assert [i["id"] for i in listed] == [late["id"]]


def test_cursor_and_page_pagination(api: httpx.Client) -> None:
    made = [create(api)["id"] for _ in range(7)][::-1]  # newest first
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"starting_after": cursor} if cursor else {})
        page = api.get("/v1/invoices", params=params).json()
        seen += [i["id"] for i in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_starting_after"]
    assert seen == made
    back = api.get("/v1/invoices", params={"limit": 2, "ending_before": made[4]}).json()
    assert [i["id"] for i in back["data"]] == made[2:4]
    page2 = api.get("/v1/invoices", params={"page": 2, "per_page": 3}).json()
    assert [i["id"] for i in page2["data"]] == made[3:6]
    assert (page2["total"], page2["page"], page2["has_more"]) == (7, 2, True)
    unknown = api.get("/v1/invoices", params={"starting_after": "inv_nope"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["param"] == "starting_after"


def test_nul_characters_are_refused_never_a_500(api: httpx.Client) -> None:
    in_query = api.get("/v1/invoices", params={"q": "a\x00b"})
    assert (in_query.status_code, in_query.json()["error"]["code"]) == (400, "invalid_characters")
    in_path = api.get("/v1/invoices/inv_%00")
    assert in_path.status_code == 400
    in_body = api.post("/v1/invoices", json=invoice_body(description="a\x00b"))
    assert (in_body.status_code, in_body.json()["error"]["param"]) == (422, "description")
    in_line = api.post(
        "/v1/invoices", json=invoice_body(line_items=[{"description": "x\x00", "unit_price": "1"}])
    )
    assert (in_line.status_code, in_line.json()["error"]["param"]) == (
        422,
        "line_items.0.description",
    )


def test_moving_the_due_date_into_the_future_clears_overdue(api: httpx.Client, settings) -> None:
    from invoicehub.invoices.service import mark_overdue_invoices
    from tests.payments.test_links_and_sandbox import _in_session

    late = create(api, status="open", issue_date="2020-01-01", due_date="2020-01-10")
    _in_session(settings, mark_overdue_invoices)
    assert api.get(f"/v1/invoices/{late['id']}").json()["overdue"] is True
    redated = api.patch(f"/v1/invoices/{late['id']}", json={"due_date": "2099-01-01"}).json()
    assert redated["overdue"] is False
