"""The dashboard over real HTTP: logins and sessions, CSRF, tenancy, escaping, and that each
page and action calls the same services as the API (checked through the API)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.models import DashboardSession
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body, make_settings
from tests.test_cli import invoicehub
from tests.web.dashboard_support import (
    PASSWORD,
    Person,
    add_person,
    csrf_of,
    log_in,
    new_person,
)

LINES = {
    "line_description": ["Website Development", "Hosting Setup"],
    "line_quantity": ["1", "1"],
    "line_unit_price": ["5000", "500"],
    "line_tax_rate": ["10", "0"],
}


def totals_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-total="(\w+)">([^<]+)<', html))


def status_of(html: str) -> str:
    found = re.search(r'data-status="(\w+)"', html)
    assert found, "the page shows no invoice status"
    return found.group(1)


def post_form(client: httpx.Client, page_path: str, action: str, **data: object) -> httpx.Response:
    """Opens ``page_path``, takes its CSRF token, posts ``data`` to ``action``."""
    page = client.get(page_path)
    assert page.status_code == 200, page.text
    return client.post(action, data={"csrf_token": csrf_of(page.text), **data})


def create_invoice(client: httpx.Client, **fields: object) -> str:
    data: dict[str, object] = {"customer_name": "John Smith", "currency": "USD", **LINES}
    data.update(fields)
    answer = post_form(client, "/dashboard/invoices/new", "/dashboard/invoices", **data)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.endswith("?done=created")
    return location.split("/")[-1].split("?")[0]


@pytest.fixture
def person(settings: Settings) -> Person:
    return new_person(settings, "Dashboard Shop")


@pytest.fixture
def logins(server: LiveServer) -> Iterator[Callable[[Person], httpx.Client]]:
    """Logs people in; their clients are closed after the test."""
    opened: list[httpx.Client] = []

    def login(who: Person) -> httpx.Client:
        opened.append(log_in(server, who))
        return opened[-1]

    yield login
    for client in opened:
        client.close()


@pytest.fixture
def browser(logins: Callable[[Person], httpx.Client], person: Person) -> httpx.Client:
    return logins(person)


# ------------------------------------------------------------------ logging in


def test_anonymous_visitors_are_sent_to_the_login_page(server: LiveServer) -> None:
    with server.client(follow_redirects=False) as client:
        for path in ("/dashboard", "/dashboard/invoices", "/dashboard/invoices/inv_x"):
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == f"/dashboard/login?next={path}"
        # an action without a session changes nothing and goes to the login page too
        answer = client.post("/dashboard/invoices/inv_x/cancel", data={"csrf_token": "x"})
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/dashboard/login")


def test_login_sets_a_signed_httponly_samesite_cookie_and_logout_ends_it(
    logins: Callable[[Person], httpx.Client], server: LiveServer, person: Person
) -> None:
    client = logins(person)
    cookie = next(c for c in client.cookies.jar if c.name == "invoicehub_session")
    assert cookie.path == "/dashboard"
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "lax"
    assert client.get("/dashboard").status_code == 200

    # a cookie whose signature does not match is no session
    token, _, signature = cookie.value.partition(".")
    with server.client(follow_redirects=False) as forger:
        forger.cookies.set("invoicehub_session", f"{token}.{signature[::-1]}", path="/dashboard")
        assert forger.get("/dashboard").status_code == 303

    stolen = cookie.value
    answer = post_form(client, "/dashboard", "/dashboard/logout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login"
    # the session ended in the database: the old cookie no longer works anywhere
    with server.client(follow_redirects=False) as replay:
        replay.cookies.set("invoicehub_session", stolen, path="/dashboard")
        assert replay.get("/dashboard").status_code == 303


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(
    server: LiveServer, person: Person
) -> None:
    with server.client(follow_redirects=False) as client:
        for asked, expected in (
            ("/dashboard/reports", "/dashboard/reports"),
            ("https://evil.example/", "/dashboard"),
            ("//evil.example/dashboard", "/dashboard"),
        ):
            client.cookies.clear()
            page = client.get("/dashboard/login")
            answer = client.post(
                "/dashboard/login",
                data={
                    "email": person.email.upper(),  # emails are matched case-blind
                    "password": person.password,
                    "csrf_token": csrf_of(page.text),
                    "next": asked,
                },
            )
            assert answer.status_code == 303
            assert answer.headers["location"] == expected


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    server: LiveServer, person: Person
) -> None:
    with server.client(follow_redirects=False) as client:
        for email, password in ((person.email, "wrong password"), ("nobody@example.com", PASSWORD)):
            page = client.get("/dashboard/login")
            answer = client.post(
                "/dashboard/login",
                data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
            )
            assert answer.status_code == 401
            assert "Wrong email or password." in answer.text
            assert "invoicehub_session" not in answer.cookies


def test_repeated_failed_logins_lock_the_email_for_a_while(tmp_path: Path) -> None:
    from tests.conftest import fresh_database

    with fresh_database(str(tmp_path)) as url:
        settings = make_settings(
            url, login_max_failures=3, login_lock_minutes=10, dashboard_login_delay_seconds=0.01
        )
        with LiveServer(settings) as server:
            person = new_person(settings, "Locked Shop")
            with server.client(follow_redirects=False) as client:

                def attempt(password: str) -> httpx.Response:
                    page = client.get("/dashboard/login")
                    return client.post(
                        "/dashboard/login",
                        data={
                            "email": person.email,
                            "password": password,
                            "csrf_token": csrf_of(page.text),
                        },
                    )

                assert [attempt("nope").status_code for _ in range(3)] == [401, 401, 401]
                # locked now: even the right password is refused, and the page says for how long
                locked = attempt(PASSWORD)
                assert locked.status_code == 429
                assert "try again in 10 minute(s)" in locked.text
                assert "invoicehub_session" not in locked.cookies


def test_the_login_form_needs_its_csrf_token(server: LiveServer, person: Person) -> None:
    with server.client(follow_redirects=False) as client:
        client.get("/dashboard/login")
        answer = client.post(
            "/dashboard/login",
            data={"email": person.email, "password": person.password, "csrf_token": "forged"},
        )
        assert answer.status_code == 403
        assert "invoicehub_session" not in answer.cookies


# ------------------------------------------------------------------ CSRF, escaping, tenancy


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    logins: Callable[[Person], httpx.Client],
    browser: httpx.Client,
    person: Person,
    server: LiveServer,
) -> None:
    invoice_id = create_invoice(browser)
    for data in ({}, {"csrf_token": "not-the-token"}):
        answer = browser.post(f"/dashboard/invoices/{invoice_id}/finalize", data=data)
        assert answer.status_code == 403
        assert "security token" in answer.text
    with server.client(person.org.secret_key) as api:
        assert api.get(f"/v1/invoices/{invoice_id}").json()["status"] == "draft"
    # another session's token is not this session's token
    other = logins(person)
    foreign_token = csrf_of(other.get(f"/dashboard/invoices/{invoice_id}").text)
    answer = browser.post(
        f"/dashboard/invoices/{invoice_id}/finalize", data={"csrf_token": foreign_token}
    )
    assert answer.status_code == 403


def test_html_typed_into_an_invoice_is_shown_as_text(browser: httpx.Client) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    invoice_id = create_invoice(browser, customer_name=evil, description=evil, title=evil)
    for path in (f"/dashboard/invoices/{invoice_id}", "/dashboard/invoices"):
        html = browser.get(path).text
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_another_organizations_invoice_is_a_404_for_every_page_and_action(
    logins: Callable[[Person], httpx.Client],
    settings: Settings,
    server: LiveServer,
    browser: httpx.Client,
) -> None:
    stranger = new_person(settings, "Other Shop", role="member")
    with server.client(stranger.org.secret_key) as api:
        theirs = api.post("/v1/invoices", json=invoice_body(status="open")).json()["id"]
    mine = create_invoice(browser)
    token = csrf_of(browser.get(f"/dashboard/invoices/{mine}").text)
    for path in (f"/dashboard/invoices/{theirs}", f"/dashboard/invoices/{theirs}/invoice.pdf",
                 f"/dashboard/invoices/{theirs}/edit"):  # fmt: skip
        answer = browser.get(path)
        assert answer.status_code == 404, path
        assert "no invoice" in answer.text
    for action in ("finalize", "cancel", "duplicate", "payments", "refunds", "payment-link"):
        answer = browser.post(f"/dashboard/invoices/{theirs}/{action}", data={"csrf_token": token})
        assert answer.status_code == 404, action
    with server.client(stranger.org.secret_key) as api:
        after = api.get(f"/v1/invoices/{theirs}").json()
    assert (after["status"], after["amount_paid"]) == ("open", "0.00")
    # and the stranger's own session sees theirs but not mine
    theirs_browser = logins(stranger)
    assert theirs_browser.get(f"/dashboard/invoices/{theirs}").status_code == 200
    assert theirs_browser.get(f"/dashboard/invoices/{mine}").status_code == 404
    listed = theirs_browser.get("/dashboard/invoices").text
    assert mine not in listed
    assert theirs in listed


def test_a_member_works_with_invoices_but_not_keys_webhooks_or_settings(
    logins: Callable[[Person], httpx.Client], settings: Settings, server: LiveServer, person: Person
) -> None:
    member = add_person(settings, person.org, f"member-{person.org.org_id}@example.com",
                        role="member")  # fmt: skip
    client = logins(member)
    create_invoice(client)
    for path in ("/dashboard/api-keys", "/dashboard/webhooks"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "only an owner" in answer.text
    answer = post_form(client, "/dashboard/settings", "/dashboard/settings", name="Renamed")
    assert answer.status_code == 403
    answer = post_form(client, "/dashboard/settings", "/dashboard/api-keys")
    assert answer.status_code == 403
    nav = client.get("/dashboard").text
    assert "/dashboard/api-keys" not in nav


def test_a_person_in_two_organizations_switches_between_them(
    logins: Callable[[Person], httpx.Client], settings: Settings, server: LiveServer, person: Person
) -> None:
    second = create_org(settings, name="Second Shop")
    add_person(settings, second, person.email, role="member")
    client = logins(person)
    first_invoice = create_invoice(client)
    answer = post_form(client, "/dashboard", "/dashboard/organization/switch",
                       organization=second.org_id)  # fmt: skip
    assert answer.status_code == 303
    overview = client.get("/dashboard").text
    assert "Second Shop" in overview
    assert client.get(f"/dashboard/invoices/{first_invoice}").status_code == 404
    # an organization the person is not in cannot be switched to
    outsider = create_org(settings, name="Not Mine")
    answer = post_form(client, "/dashboard", "/dashboard/organization/switch",
                       organization=outsider.org_id)  # fmt: skip
    assert answer.status_code == 404


# ------------------------------------------------------------------ invoices


def test_invoice_totals_agree_with_the_api_to_the_cent(
    browser: httpx.Client, server: LiveServer, person: Person
) -> None:
    refused = post_form(
        browser,
        "/dashboard/invoices/new",
        "/dashboard/invoices",
        currency="USD",
        line_description=["Consulting"],
        line_quantity=["3"],
        line_unit_price=["0.335"],
        line_tax_rate=["7.5"],
    )
    assert refused.status_code == 422
    assert "line_items.0.unit_price" in refused.text
    assert 'value="0.335"' in refused.text  # what was typed is kept

    invoice_id = create_invoice(
        browser,
        currency="USD",
        line_description=["Consulting", "Bolts", ""],  # the empty spare row is ignored
        line_quantity=["3", "1.5", ""],
        line_unit_price=["33.35", "19.99", ""],
        line_tax_rate=["7.5", "12", ""],
        discount="1.01",
        shipping="4.50",
    )
    page = browser.get(f"/dashboard/invoices/{invoice_id}")
    with server.client(person.org.secret_key) as api:
        stored = api.get(f"/v1/invoices/{invoice_id}").json()
    # 3 x 33.35 = 100.05, tax 7.50375 -> 7.50; 1.5 x 19.99 = 29.985 -> 29.99, tax 3.5988 -> 3.60
    assert (stored["subtotal"], stored["tax"], stored["total"]) == ("130.04", "11.10", "144.63")
    assert totals_of(page.text) == {
        "subtotal": "$130.04",
        "discount": "−$1.01",
        "shipping": "$4.50",
        "tax": "$11.10",
        "total": "$144.63",
        "due": "$144.63",
    }


def test_create_finalize_link_pay_and_refund_from_the_pages(
    browser: httpx.Client, server: LiveServer, person: Person
) -> None:
    invoice_id = create_invoice(browser)
    page_path = f"/dashboard/invoices/{invoice_id}"
    page = browser.get(page_path).text
    assert status_of(page) == "draft"
    assert totals_of(page)["total"] == "$6,000.00"
    assert f"{page_path}/edit" in page  # drafts can be edited

    assert post_form(browser, page_path, f"{page_path}/finalize").status_code == 303
    assert post_form(browser, page_path, f"{page_path}/payment-link").status_code == 303
    page = browser.get(page_path).text
    assert status_of(page) == "open"
    link = re.search(r'id="pay-link" readonly value="([^"]+)"', page)
    assert link
    assert link.group(1).startswith("http://127.0.0.1:8000/pay/")
    assert "<svg" in page  # the QR code

    answer = post_form(browser, page_path, f"{page_path}/payments", amount="1000", reference="cash")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("?done=payment_recorded")
    page = browser.get(page_path).text
    assert status_of(page) == "open"
    assert totals_of(page)["due"] == "$5,000.00"
    post_form(browser, page_path, f"{page_path}/payments", amount="")
    page = browser.get(page_path).text
    assert status_of(page) == "paid"

    # an action the state forbids is refused with the reason, and nothing changes
    refused = post_form(browser, page_path, f"{page_path}/cancel")
    assert refused.status_code == 409
    assert "invoice_not_cancellable" in refused.text

    assert post_form(browser, page_path, f"{page_path}/refunds", amount="100.00",
                     reason="goodwill").status_code == 303  # fmt: skip
    with server.client(person.org.secret_key) as api:
        stored = api.get(f"/v1/invoices/{invoice_id}").json()
        events = api.get("/v1/events", params={"limit": 50}).json()["data"]
    assert (stored["status"], stored["amount_refunded"]) == ("partially_refunded", "100.00")
    page = browser.get(page_path).text
    timeline = re.findall(r'data-event="([\w.]+)"', page)
    assert timeline == [e["type"] for e in reversed(events) if e["object_id"] == invoice_id]
    assert timeline[:2] == ["invoice.created", "invoice.finalized"]
    assert timeline[-2:] == ["invoice.paid", "invoice.partially_refunded"]


def test_edit_a_draft_and_duplicate_it(browser: httpx.Client, server: LiveServer,
                                       person: Person) -> None:  # fmt: skip
    invoice_id = create_invoice(browser)
    edit = f"/dashboard/invoices/{invoice_id}/edit"
    form = browser.get(edit).text
    assert 'value="Website Development"' in form
    assert 'value="5000.00"' in form
    answer = post_form(browser, edit, edit, customer_name="Jane Roe", currency="EUR",
                       line_description=["Audit"], line_quantity=["2"],
                       line_unit_price=["150.25"], line_tax_rate=["20"])  # fmt: skip
    assert answer.status_code == 303
    with server.client(person.org.secret_key) as api:
        stored = api.get(f"/v1/invoices/{invoice_id}").json()
    assert (stored["currency"], stored["total"], stored["customer"]["name"]) == (
        "EUR", "360.60", "Jane Roe")  # fmt: skip
    copy = post_form(browser, f"/dashboard/invoices/{invoice_id}",
                     f"/dashboard/invoices/{invoice_id}/duplicate")  # fmt: skip
    assert copy.status_code == 303
    copy_id = copy.headers["location"].split("/")[-1].split("?")[0]
    assert copy_id != invoice_id
    assert totals_of(browser.get(f"/dashboard/invoices/{copy_id}").text)["total"] == "€360.60"
    # an open invoice's money cannot be edited
    post_form(browser, f"/dashboard/invoices/{copy_id}", f"/dashboard/invoices/{copy_id}/finalize")
    refused = browser.get(f"/dashboard/invoices/{copy_id}/edit")
    assert refused.status_code == 422
    assert "only drafts can be edited" in refused.text


def test_list_filters_paging_and_csv_export(browser: httpx.Client, server: LiveServer,
                                            person: Person) -> None:  # fmt: skip
    with server.client(person.org.secret_key) as api:
        created = [
            api.post(
                "/v1/invoices",
                json=invoice_body(
                    status="open" if n % 2 else "draft",
                    customer={"name": f'=HYPERLINK("x") {n}', "email": f"buyer{n}@example.com"},
                ),
            ).json()["id"]
            for n in range(30)
        ]
    first = browser.get("/dashboard/invoices").text
    shown = re.findall(r'<tr data-id="(inv_\w+)"', first)
    assert shown == list(reversed(created))[:25]
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older
    second = browser.get(older.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-id="(inv_\w+)"', second) == list(reversed(created))[25:]
    newer = re.search(r'rel="prev" href="([^"]+)"', second)
    assert newer
    back = browser.get(newer.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-id="(inv_\w+)"', back) == shown

    drafts = browser.get("/dashboard/invoices", params={"status": "draft"}).text
    assert set(re.findall(r'<tr data-id="(inv_\w+)"', drafts)) == set(created[0::2])
    one = browser.get("/dashboard/invoices", params={"customer": "buyer7@"}).text
    assert re.findall(r'<tr data-id="(inv_\w+)"', one) == [created[7]]
    bad = browser.get("/dashboard/invoices", params={"due_from": "soon"})
    assert bad.status_code == 422
    assert "due_from: &#39;soon&#39; is not a date" in bad.text

    export = browser.get("/dashboard/invoices.csv", params={"status": "open"})
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert {r["id"] for r in rows} == set(created[1::2])
    assert all(r["total"] == "6000.00" and r["status"] == "open" for r in rows)
    # a customer name that a spreadsheet would run as a formula is defused
    assert all(r["customer_name"].startswith("'=HYPERLINK") for r in rows)


# ------------------------------------------------------------------ overview and reports


def test_overview_totals_per_currency_never_added_together(
    browser: httpx.Client, server: LiveServer, person: Person
) -> None:
    with server.client(person.org.secret_key) as api:
        usd = api.post("/v1/invoices", json=invoice_body(status="open")).json()["id"]
        api.post("/v1/invoices", json=invoice_body(status="open", currency="EUR"))
        api.post(f"/v1/invoices/{usd}/payments", json={"amount": "1000"})
        late = invoice_body(status="open", currency="KZT",
                            issue_date=str(dt.date.today() - dt.timedelta(days=40)),
                            due_date=str(dt.date.today() - dt.timedelta(days=10)))  # fmt: skip
        api.post("/v1/invoices", json=late)
    html = browser.get("/dashboard").text
    sections = dict(re.findall(r'data-currency="(\w+)">(.*?)</section>', html, re.S))
    assert set(sections) == {"EUR", "KZT", "USD"}

    def figure(code: str, name: str) -> str:
        found = re.search(rf'data-figure="{name}">([^<]+)<', sections[code])
        assert found
        return found.group(1)

    assert figure("USD", "outstanding") == "$5,000.00"
    assert figure("USD", "paid_this_month") == "$1,000.00"
    assert figure("EUR", "outstanding") == "€6,000.00"
    assert figure("KZT", "overdue").replace("\xa0", "") == "KZT6,000.00"
    assert figure("USD", "overdue") == "$0.00"
    assert sections["USD"].count('class="bar"') == 13  # thirteen weeks in the chart


def test_reports_page_and_its_csv_files(browser: httpx.Client, server: LiveServer,
                                        person: Person) -> None:  # fmt: skip
    with server.client(person.org.secret_key) as api:
        paid = api.post("/v1/invoices", json=invoice_body(status="open")).json()["id"]
        api.post(f"/v1/invoices/{paid}/payments", json={})
        api.post("/v1/invoices", json=invoice_body(status="open"))
        via_api = api.get("/v1/reports/revenue", params={"interval": "week", "format": "csv"})
    html = browser.get("/dashboard/reports", params={"interval": "week"}).text
    assert 'data-figure="collected-USD">$6,000.00<' in html
    assert 'data-bucket="current"' in html
    assert "John Smith" in html  # top customers
    revenue = browser.get("/dashboard/reports/revenue.csv", params={"interval": "week"})
    assert revenue.status_code == 200
    assert revenue.text == via_api.text  # the same CSV as the API's
    for name in ("aging", "days-to-pay", "customers"):
        answer = browser.get(f"/dashboard/reports/{name}.csv")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
    bad = browser.get("/dashboard/reports", params={"from": "2026-13-01"})
    assert bad.status_code == 422
    assert "from must be a date" in bad.text


# ------------------------------------------------------------------ keys, webhooks, settings


def test_api_keys_created_shown_once_and_revoked(browser: httpx.Client, server: LiveServer) -> None:
    answer = post_form(browser, "/dashboard/api-keys", "/dashboard/api-keys", name="shop")
    assert answer.status_code == 200
    secret = re.search(r'id="new-sk" readonly value="(sk_[^"]+)"', answer.text)
    assert secret
    with server.client(secret.group(1)) as api:
        assert api.get("/v1/invoices").status_code == 200
    listing = browser.get("/dashboard/api-keys").text
    assert secret.group(1) not in listing  # shown once only
    assert f"sk_…{secret.group(1)[-4:]}" in listing
    key_id = re.search(r'<tr data-key="(key_\w+)"', listing)
    assert key_id
    revoke = post_form(browser, "/dashboard/api-keys",
                       f"/dashboard/api-keys/{key_id.group(1)}/revoke")  # fmt: skip
    assert revoke.status_code == 303
    with server.client(secret.group(1)) as api:
        assert api.get("/v1/invoices").status_code == 401


def test_webhook_endpoint_secret_shown_once_and_test_event_queued(
    browser: httpx.Client, server: LiveServer, person: Person
) -> None:
    made = post_form(
        browser,
        "/dashboard/webhooks",
        "/dashboard/webhooks",
        url="http://127.0.0.1:9/hook",
        events=["invoice.paid"],
    )
    # redirect after the POST: a reload cannot register the endpoint twice
    assert made.status_code == 303
    assert made.headers["location"] == "/dashboard/webhooks"
    answer = browser.get("/dashboard/webhooks")
    secret = re.search(r'id="new-secret" readonly value="(whsec_[^"]+)"', answer.text)
    endpoint = re.search(r'href="/dashboard/webhooks/(we_\w+)"', answer.text)
    assert secret
    assert endpoint
    assert "new-secret" not in browser.get("/dashboard/webhooks").text  # shown once
    page = f"/dashboard/webhooks/{endpoint.group(1)}"
    assert secret.group(1) not in browser.get(page).text
    assert post_form(browser, page, f"{page}/test").status_code == 303
    with server.client(person.org.secret_key) as api:
        log = api.get(f"/v1/webhook-endpoints/{endpoint.group(1)}/deliveries").json()["data"]
    assert [d["event_type"] for d in log] == ["webhook.test"]
    assert f'data-delivery="{log[0]["id"]}"' in browser.get(page).text
    refused = post_form(browser, "/dashboard/webhooks", "/dashboard/webhooks", url="ftp://x")
    assert refused.status_code == 422
    assert "url" in refused.text


def test_settings_saved_and_a_sandbox_organization_verifies_itself(
    browser: httpx.Client, server: LiveServer, person: Person
) -> None:
    answer = post_form(browser, "/dashboard/settings", "/dashboard/settings", name="Renamed Shop",
                       default_currency="KZT", invoice_number_pattern="S-{seq:05}",
                       default_due_days="14", allow_partial_payments="",
                       payment_provider="sandbox", late_payment_policy="refund")  # fmt: skip
    assert answer.status_code == 303
    assert 'data-verified="false"' in browser.get("/dashboard/settings").text
    assert (
        post_form(browser, "/dashboard/settings", "/dashboard/settings/verify").status_code == 303
    )
    with server.client(person.org.secret_key) as api:
        org = api.get("/v1/organization").json()
    assert (org["name"], org["default_currency"], org["invoice_number_pattern"]) == (
        "Renamed Shop", "KZT", "S-{seq:05}")  # fmt: skip
    assert (org["default_due_days"], org["allow_partial_payments"], org["verified"]) == (
        14,
        False,
        True,
    )
    bad = post_form(browser, "/dashboard/settings", "/dashboard/settings", name="X",
                    default_currency="KZT", invoice_number_pattern="no sequence",
                    default_due_days="14", payment_provider="sandbox",
                    late_payment_policy="accept")  # fmt: skip
    assert bad.status_code == 422
    assert "invoice_number_pattern" in bad.text


def test_pages_speak_russian_when_asked(browser: httpx.Client) -> None:
    answer = post_form(browser, "/dashboard", "/dashboard/language", language="ru",
                       back="/dashboard/invoices")  # fmt: skip
    assert answer.headers["location"] == "/dashboard/invoices"
    html = browser.get("/dashboard/invoices").text
    assert '<html lang="ru">' in html
    assert "Счета" in html
    assert "Новый счёт" in html


def test_unknown_dashboard_pages_are_a_404_page(browser: httpx.Client) -> None:
    answer = browser.get("/dashboard/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in answer.headers


# ------------------------------------------------------------------ the operator's command


def test_user_create_command_makes_a_login(
    logins: Callable[[Person], httpx.Client],settings: Settings, server: LiveServer,
                                           tmp_path: Path) -> None:  # fmt: skip
    org: OrgKeys = create_org(settings, name="CLI Shop")
    email = f"owner-{org.org_id}@example.com"
    done = invoicehub("user", "create", "--email", email, "--password", "s3cret-pass",
                      "--org", org.org_id, "--role", "owner", "--json",
                      database_url=settings.database_url, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done
    assert '"role": "owner"' in done.stdout
    assert '"created": true' in done.stdout
    logins(Person(email=email, password="s3cret-pass", org=org))
    wrong = invoicehub("user", "create", "--email", email, "--password", "other-pass",
                       "--org", org.org_id, database_url=settings.database_url, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 1
    assert "already has an account" in wrong.stderr
    short = invoicehub("user", "create", "--email", "x@example.com", "--password", "short",
                       "--org", org.org_id, database_url=settings.database_url, cwd=tmp_path)  # fmt: skip
    assert short.returncode == 1
    assert "password must be 8" in short.stderr


def test_sessions_live_in_the_database(
    logins: Callable[[Person], httpx.Client],settings: Settings, server: LiveServer,
                                       person: Person) -> None:  # fmt: skip
    """Any process finds a session: nothing about a login is kept in one process's memory."""
    logins(person)
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=False) as session:
            from sqlalchemy import func, select

            count = session.scalar(select(func.count()).select_from(DashboardSession))
    finally:
        runtime.database.dispose()
    assert count
    assert count >= 1
