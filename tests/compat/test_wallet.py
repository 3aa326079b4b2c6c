"""Conformance: seed 001 (BW wallet invoices), every example and every listed error code,
through the real server at /compat/wallet."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import httpx
import hypothesis
import pytest
import schemathesis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from invoicehub.accounts import service as accounts
from invoicehub.api.runtime import Runtime
from invoicehub.compat import CompatMountError
from invoicehub.config import Settings
from invoicehub.invoices import service as invoices
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Invoice, LedgerEntry, Transfer
from tests.conftest import LiveServer, make_settings

BASE = "/compat/wallet/v1/invoices"
WALLET_ID = re.compile(r"^[0-9a-f]{24}$")
MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ITEM_KEYS = ["_id", "payer", "amount", "recipient", "message", "status", "payment_id"]


# ------------------------------------------------------------------ people, via the core


@contextmanager
def core_session(settings: Settings) -> Iterator[Session]:
    runtime = Runtime.build(settings)
    try:
        with runtime.database.session(write=True) as session:
            yield session
            session.commit()
    finally:
        runtime.database.dispose()


def new_phone() -> str:
    return f"+7701{secrets.randbelow(10**7):07d}"


@dataclass(frozen=True)
class Wallet:
    phone: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.phone, self.password)


def make_wallet(
    settings: Settings, *, balance: str | None = None, phone: str | None = None
) -> Wallet:
    wallet = Wallet(phone or new_phone(), "pw-" + secrets.token_hex(6))
    with core_session(settings) as session:
        accounts.create_wallet_account(
            session,
            phone=wallet.phone,
            password=wallet.password,
            settings=settings,
            balance=Decimal(balance) if balance else None,
        )
    return wallet


def balance_of(settings: Settings, wallet: Wallet) -> Decimal:
    with core_session(settings) as session:
        account = accounts.wallet_by_phone(session, wallet.phone, region="KZ")
        return from_minor(accounts.balance_of(session, account), currency("KZT"))


def transfers_of(settings: Settings, wallet_id: str) -> list[Transfer]:
    with core_session(settings) as session:
        invoice = accounts.find_p2p_invoice(session, "inv_" + wallet_id)
        return list(session.scalars(select(Transfer).where(Transfer.invoice_id == invoice.id)))


def ledger_balances(settings: Settings) -> tuple[int, int, int]:
    """(sum of all entries, sum of top-ups, the lowest account balance)."""
    with core_session(settings) as session:
        total = accounts.ledger_total(session)
        topups = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.reason == "topup"
            )
        )
        per_account = (
            select(func.sum(LedgerEntry.amount_minor).label("balance"))
            .group_by(LedgerEntry.account_id)
            .subquery()
        )
        lowest = session.scalar(select(func.coalesce(func.min(per_account.c.balance), 0)))
        return total, int(topups or 0), int(lowest or 0)


# ------------------------------------------------------------------ the wire


@pytest.fixture
def wallet(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def bill(
    client: httpx.Client, creator: Wallet, payer: Wallet, amount: object = 350, **fields: object
) -> dict:
    body = {"payer": payer.phone, "amount": amount} | fields
    response = client.post(BASE, json=body, auth=creator.auth)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["meta"], body
    assert list(body["meta"]) == ["code", "error", "message"], body
    assert (body["meta"]["code"], body["meta"]["error"]) == (status, code), body
    assert body["meta"]["message"]


def listed(client: httpx.Client, who: Wallet, path: str = "") -> dict[str, dict]:
    response = client.get(BASE + path, auth=who.auth)
    assert response.status_code == 200, response.text
    assert response.json()["meta"] == {"code": 200}
    return {item["_id"]: item for item in response.json()["data"]}


# ------------------------------------------------------------------ the document's examples


def test_the_documents_examples(wallet: httpx.Client, settings: Settings) -> None:
    """The document's people and invoices, one example after another."""
    me = make_wallet(settings, phone="+12345675578", balance="1000")
    recipient = make_wallet(settings, phone="+12345678102")
    other = make_wallet(settings, phone="+12345671157")
    # Создание инвойса: the document's curl, as JSON.
    created = wallet.post(
        BASE,
        auth=me.auth,
        headers={"Content-type": "application/json"},
        content=b'{"payer": "+12345678102", "amount": 350, "message": "Test invoice"}',
    )
    assert created.status_code == 200, created.text
    assert created.json()["meta"] == {"code": 200}
    item = created.json()["data"]
    assert list(item) == ITEM_KEYS
    assert WALLET_ID.match(item["_id"])
    assert item | {"_id": None} == {
        "_id": None,
        "payer": "+12345678102",
        "amount": 350,
        "recipient": "+12345675578",
        "message": "Test invoice",
        "status": "created",
        "payment_id": None,
    }
    assert '"amount":350,' in created.text  # a JSON number, as the document shows

    # Список инвойсов выставленных пользователю: billed to +12345675578 by +12345678102.
    first = bill(wallet, recipient, me, 200)
    second = bill(wallet, recipient, me, 300, message="Test invoice")
    third = bill(wallet, recipient, me, 300, message="Test invoice")
    paid = wallet.post(f"{BASE}/{second['_id']}/pay", auth=me.auth)
    assert paid.status_code == 200, paid.text
    mine = listed(wallet, me)
    assert set(mine) == {first["_id"], second["_id"], third["_id"]}
    assert all(list(entry) == ITEM_KEYS for entry in mine.values())
    assert mine[first["_id"]] | {"_id": None} == {
        "_id": None,
        "payer": "+12345675578",
        "amount": 200,
        "recipient": "+12345678102",
        "message": None,
        "status": "created",
        "payment_id": None,
    }
    assert mine[second["_id"]]["status"] == "completed"
    assert mine[second["_id"]]["payment_id"] == paid.json()["data"]["data"]["id"]
    assert len(str(mine[second["_id"]]["payment_id"])) == 13
    assert (mine[third["_id"]]["status"], mine[third["_id"]]["payment_id"]) == ("created", None)

    # Список инвойсов, которые выставил пользователь: +12345675578 bills +12345671157.
    small = bill(wallet, me, other, 100)
    large = bill(wallet, me, other, 1050)
    cancelled = wallet.get(f"{BASE}/{large['_id']}/cancel", auth=me.auth)
    assert (cancelled.status_code, cancelled.json()) == (200, {"meta": {"code": 200}})
    issued = listed(wallet, me, "/created")
    assert set(issued) == {item["_id"], small["_id"], large["_id"]}
    assert issued[small["_id"]] | {"_id": None} == {
        "_id": None,
        "payer": "+12345671157",
        "amount": 100,
        "recipient": "+12345675578",
        "message": None,
        "status": "created",
        "payment_id": None,
    }
    assert (issued[large["_id"]]["status"], issued[large["_id"]]["amount"]) == ("canceled", 1050)

    # Повторить инвойс: the document's curl is a GET.
    duplicated = wallet.get(f"{BASE}/{large['_id']}/duplicate", auth=me.auth)
    assert duplicated.status_code == 200, duplicated.text
    copy = duplicated.json()["data"]
    assert list(copy) == ITEM_KEYS
    assert copy["_id"] != large["_id"]
    assert (copy["payer"], copy["amount"], copy["recipient"], copy["message"]) == (
        "+12345671157",
        1050,
        "+12345675578",
        None,
    )
    assert (copy["status"], copy["payment_id"]) == ("created", None)  # a new invoice

    # Отменить инвойс: GET, and the answer is meta alone.
    cancel = wallet.get(f"{BASE}/{small['_id']}/cancel", auth=me.auth)
    assert (cancel.status_code, cancel.json()) == (200, {"meta": {"code": 200}})

    # Оплатить инвойс: POST, the p2p payment inside the envelope.
    paying = wallet.post(f"{BASE}/{third['_id']}/pay", auth=me.auth)
    assert paying.status_code == 200, paying.text
    body = paying.json()
    assert list(body) == ["meta", "data"]
    assert body["meta"] == {"code": 200}
    assert list(body["data"]) == ["meta", "data"]
    assert list(body["data"]["meta"]) == ["code", "next_action", "time"]
    assert body["data"]["meta"]["code"] == 200
    assert body["data"]["meta"]["next_action"] is None
    assert isinstance(body["data"]["meta"]["time"], float)
    payment = body["data"]["data"]
    assert list(payment) == [
        "id",
        "client_payment_id",
        "amount",
        "total",
        "created_at",
        "status",
        "type",
        "wallet",
        "destination",
        "direction",
        "message",
    ]
    assert isinstance(payment["id"], int)
    assert len(str(payment["id"])) == 13
    assert re.match(r"^[0-9a-f-]{36}$", payment["client_payment_id"])
    assert MILLIS.match(payment["created_at"])
    assert payment | {"id": None, "client_payment_id": None, "created_at": None} == {
        "id": None,
        "client_payment_id": None,
        "amount": 300,
        "total": 300,
        "created_at": None,
        "status": "completed",
        "type": "p2p",
        "wallet": {"phone": "+12345675578"},
        "destination": {"phone": "+12345678102"},
        "direction": "out",
        "message": "Test invoice",
    }
    assert balance_of(settings, me) == Decimal(400)
    assert balance_of(settings, recipient) == Decimal(600)


# ------------------------------------------------------------------ create


def test_create_takes_a_form_and_numbers_as_text(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings)
    # curl -d without a Content-type sends a form.
    form = wallet.post(
        BASE, auth=creator.auth, data={"payer": payer.phone, "amount": "10.5", "message": "Лимонад"}
    )
    assert form.status_code == 200, form.text
    assert (form.json()["data"]["amount"], form.json()["data"]["message"]) == (10.5, "Лимонад")
    assert '"amount":10.5,' in form.text
    as_text = bill(wallet, creator, payer, "2500.00")
    assert as_text["amount"] == 2500
    # A JSON body sent as a form (curl -d '{...}' without the header) is read as JSON.
    sloppy = wallet.post(
        BASE,
        auth=creator.auth,
        content=f'{{"payer": "{payer.phone}", "amount": 7}}'.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sloppy.status_code == 200, sloppy.text
    # The payer's phone in another common form names the same wallet.
    national = bill(wallet, creator, Wallet("8" + payer.phone[2:], ""), 1)
    assert national["payer"] == payer.phone
    # Unknown fields are ignored, as the original does.
    assert bill(wallet, creator, payer, 3, currency="USD")["amount"] == 3


@pytest.fixture(scope="module")
def two_wallets(settings: Settings) -> tuple[Wallet, Wallet]:
    """A creator who never manages to create anything, and a payer."""
    return make_wallet(settings), make_wallet(settings)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 350}, "missing_payer"),
        ({"payer": "", "amount": 350}, "missing_payer"),
        ({"payer": None, "amount": 350}, "missing_payer"),
        ({"payer": "+77779999999x", "amount": 350}, "payer_not_exists"),
        ({"payer": "not a phone", "amount": 350}, "payer_not_exists"),
        ({"payer": ["+77010000000"], "amount": 350}, "payer_not_exists"),
        ({"payer": "PAYER"}, "missing_amount"),
        ({"payer": "PAYER", "amount": None}, "missing_amount"),
        ({"payer": "PAYER", "amount": ""}, "missing_amount"),
        ({"payer": "SELF", "amount": 350}, "invalid_payer"),
        ({"payer": "PAYER", "amount": 0}, "invalid_amount"),
        ({"payer": "PAYER", "amount": -5}, "invalid_amount"),
        ({"payer": "PAYER", "amount": "ten"}, "invalid_amount"),
        ({"payer": "PAYER", "amount": 1.234}, "invalid_amount"),
        ({"payer": "PAYER", "amount": 1e20}, "invalid_amount"),
        ({"payer": "PAYER", "amount": True}, "invalid_amount"),
        ({"payer": "PAYER", "amount": "NaN"}, "invalid_amount"),
        ({"payer": "PAYER", "amount": 5, "message": "x" * 1001}, "invalid_message"),
        ({"payer": "PAYER", "amount": 5, "message": 5}, "invalid_message"),
    ],
)
def test_create_errors(
    wallet: httpx.Client, two_wallets: tuple[Wallet, Wallet], body: dict, code: str
) -> None:
    creator, payer = two_wallets
    names = {"PAYER": payer.phone, "SELF": creator.phone}
    if isinstance(body.get("payer"), str):
        body = body | {"payer": names.get(body["payer"], body["payer"])}
    assert_error(wallet.post(BASE, json=body, auth=creator.auth), 400, code)
    assert listed(wallet, creator, "/created") == {}  # nothing was made


def test_unknown_payer_is_payer_not_exists(wallet: httpx.Client, settings: Settings) -> None:
    creator = make_wallet(settings)
    response = wallet.post(BASE, json={"payer": new_phone(), "amount": 5}, auth=creator.auth)
    assert_error(response, 400, "payer_not_exists")


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'"text"'], ids=["broken", "array", "string"]
)
def test_a_body_that_is_not_an_object(
    wallet: httpx.Client, settings: Settings, content: bytes
) -> None:
    creator = make_wallet(settings)
    response = wallet.post(
        BASE, content=content, auth=creator.auth, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


# ------------------------------------------------------------------ lists


def test_lists_show_each_side_only_its_own(wallet: httpx.Client, settings: Settings) -> None:
    alice, bob, carol = make_wallet(settings), make_wallet(settings), make_wallet(settings)
    to_bob = bill(wallet, alice, bob, 10)
    to_alice = bill(wallet, carol, alice, 20)
    assert set(listed(wallet, alice, "/created")) == {to_bob["_id"]}
    assert set(listed(wallet, alice)) == {to_alice["_id"]}
    assert set(listed(wallet, bob)) == {to_bob["_id"]}
    assert listed(wallet, bob, "/created") == {}
    assert set(listed(wallet, carol, "/created")) == {to_alice["_id"]}
    newest_first = [bill(wallet, alice, bob, n)["_id"] for n in (1, 2, 3)]
    ids = list(listed(wallet, bob))
    assert ids[:3] == newest_first[::-1]


def test_statuses_map_the_core_state_machine(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="100")
    created = bill(wallet, creator, payer, 10)
    processing = bill(wallet, creator, payer, 10)
    completed = bill(wallet, creator, payer, 10)
    canceled = bill(wallet, creator, payer, 10)
    declined = bill(wallet, creator, payer, 1000)
    with core_session(settings) as session:  # a payment started elsewhere and not finished
        invoice = accounts.find_p2p_invoice(session, "inv_" + processing["_id"])
        invoices.start_payment_attempt(
            session, invoice.organization_id, invoice.public_id, provider="balance"
        )
    assert wallet.post(f"{BASE}/{completed['_id']}/pay", auth=payer.auth).status_code == 200
    assert wallet.post(f"{BASE}/{canceled['_id']}/cancel", auth=creator.auth).status_code == 200
    assert wallet.post(f"{BASE}/{declined['_id']}/pay", auth=payer.auth).status_code == 200
    for side in (listed(wallet, payer), listed(wallet, creator, "/created")):
        assert {
            key: side[item["_id"]]["status"]
            for key, item in {
                "created": created,
                "processing": processing,
                "completed": completed,
                "canceled": canceled,
                "declined": declined,
            }.items()
        } == {
            "created": "created",
            "processing": "processing",
            "completed": "completed",
            "canceled": "canceled",
            "declined": "declined",
        }
        assert side[processing["_id"]]["payment_id"] is None
        assert side[completed["_id"]]["payment_id"] is not None
        assert side[declined["_id"]]["payment_id"] is not None  # the declined attempt
        assert side[declined["_id"]]["payment_id"] != side[completed["_id"]]["payment_id"]


# ------------------------------------------------------------------ duplicate


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_duplicate(wallet: httpx.Client, settings: Settings, method: str) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="50")
    original = bill(wallet, creator, payer, 42, message="Обед")
    assert wallet.post(f"{BASE}/{original['_id']}/pay", auth=payer.auth).status_code == 200
    response = wallet.request(method, f"{BASE}/{original['_id']}/duplicate", auth=creator.auth)
    assert response.status_code == 200, response.text
    assert response.json()["meta"] == {"code": 200}
    copy = response.json()["data"]
    assert WALLET_ID.match(copy["_id"])
    assert copy["_id"] != original["_id"]
    assert copy | {"_id": None} == original | {"_id": None}  # same payer, amount, message
    assert listed(wallet, payer)[copy["_id"]]["status"] == "created"


def test_duplicate_errors(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer, stranger = (make_wallet(settings) for _ in range(3))
    original = bill(wallet, creator, payer, 5)
    for who, invoice_id in (
        (creator, "5422cf7cb7f47b54010041a7"),  # the document's id: no such invoice here
        (creator, "not-an-id"),
        (payer, original["_id"]),  # billed to them, not theirs to repeat
        (stranger, original["_id"]),
    ):
        assert_error(
            wallet.get(f"{BASE}/{invoice_id}/duplicate", auth=who.auth), 404, "invalid_invoice"
        )


# ------------------------------------------------------------------ cancel


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cancel_and_its_errors(wallet: httpx.Client, settings: Settings, method: str) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="10")
    invoice = bill(wallet, creator, payer, 5)
    url = f"{BASE}/{invoice['_id']}/cancel"
    done = wallet.request(method, url, auth=creator.auth)
    assert (done.status_code, done.json()) == (200, {"meta": {"code": 200}})
    assert listed(wallet, payer)[invoice["_id"]]["status"] == "canceled"
    assert_error(wallet.request(method, url, auth=creator.auth), 409, "invoice_is_already_canceled")

    completed = bill(wallet, creator, payer, 5)
    assert wallet.post(f"{BASE}/{completed['_id']}/pay", auth=payer.auth).status_code == 200
    assert_error(
        wallet.request(method, f"{BASE}/{completed['_id']}/cancel", auth=creator.auth),
        409,
        "invoice_is_completed",
    )
    assert_error(
        wallet.request(method, f"{BASE}/5422cebeb7f47b53010041a7/cancel", auth=creator.auth),
        404,
        "invoice_not_found",
    )
    other = bill(wallet, creator, payer, 5)
    for who in (payer, make_wallet(settings)):  # only its creator cancels it
        assert_error(
            wallet.request(method, f"{BASE}/{other['_id']}/cancel", auth=who.auth),
            404,
            "invoice_not_found",
        )


def test_cancel_while_processing(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="10")
    invoice = bill(wallet, creator, payer, 5)
    with core_session(settings) as session:
        found = accounts.find_p2p_invoice(session, "inv_" + invoice["_id"])
        invoices.start_payment_attempt(
            session, found.organization_id, found.public_id, provider="balance"
        )
    assert_error(
        wallet.get(f"{BASE}/{invoice['_id']}/cancel", auth=creator.auth),
        409,
        "invoice_is_processing",
    )
    assert_error(
        wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth), 409, "invoice_is_processing"
    )


def test_invoice_cancelling_error(wallet: httpx.Client, settings: Settings) -> None:
    """Refused for a reason the document has no word for: part of it was paid elsewhere."""
    creator, payer = make_wallet(settings), make_wallet(settings)
    invoice = bill(wallet, creator, payer, 5)
    with core_session(settings) as session:
        found = accounts.find_p2p_invoice(session, "inv_" + invoice["_id"])
        invoices.record_payment(session, found.organization_id, found.public_id, amount=Decimal(1))
    assert_error(
        wallet.get(f"{BASE}/{invoice['_id']}/cancel", auth=creator.auth),
        409,
        "invoice_cancelling_error",
    )


def test_a_declined_invoice_can_still_be_cancelled(
    wallet: httpx.Client, settings: Settings
) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings)
    invoice = bill(wallet, creator, payer, 5)
    assert wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth).status_code == 200
    assert listed(wallet, creator, "/created")[invoice["_id"]]["status"] == "declined"
    assert wallet.get(f"{BASE}/{invoice['_id']}/cancel", auth=creator.auth).status_code == 200
    assert listed(wallet, payer)[invoice["_id"]]["status"] == "canceled"


# ------------------------------------------------------------------ pay


def test_pay_moves_the_money_once(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings, balance="5"), make_wallet(settings, balance="100.50")
    invoice = bill(wallet, creator, payer, "60.25", message="За билеты")
    paid = wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth)
    assert paid.status_code == 200, paid.text
    payment = paid.json()["data"]["data"]
    assert (payment["amount"], payment["total"], payment["status"]) == (60.25, 60.25, "completed")
    assert (payment["wallet"], payment["destination"]) == (
        {"phone": payer.phone},
        {"phone": creator.phone},
    )
    assert payment["message"] == "За билеты"
    assert balance_of(settings, payer) == Decimal("40.25")
    assert balance_of(settings, creator) == Decimal("65.25")
    assert_error(
        wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth), 409, "invoice_is_completed"
    )
    assert [t.status for t in transfers_of(settings, invoice["_id"])] == ["completed"]
    assert balance_of(settings, payer) == Decimal("40.25")


def test_insufficient_funds_declines_and_declined_is_final(
    wallet: httpx.Client, settings: Settings
) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="20")
    invoice = bill(wallet, creator, payer, 30)
    declined = wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth)
    assert declined.status_code == 200, declined.text  # the attempt is recorded
    body = declined.json()
    assert body["meta"] == {"code": 200}
    assert body["data"]["meta"] | {"time": None} == {
        "code": 402,
        "error": "insufficient_funds",
        "message": "the payment was declined: your balance cannot pay this invoice",
        "next_action": None,
        "time": None,
    }
    assert body["data"]["data"]["status"] == "declined"
    assert balance_of(settings, payer) == Decimal(20)
    item = listed(wallet, payer)[invoice["_id"]]
    assert (item["status"], item["payment_id"]) == ("declined", body["data"]["data"]["id"])
    with core_session(settings) as session:
        account = accounts.wallet_by_phone(session, payer.phone, region="KZ")
        accounts.topup(session, account, Decimal(100))
    # Money arrived since, but the document makes a declined invoice final.
    assert_error(
        wallet.post(f"{BASE}/{invoice['_id']}/pay", auth=payer.auth), 409, "invoice_is_declined"
    )
    assert [t.status for t in transfers_of(settings, invoice["_id"])] == ["declined"]
    assert balance_of(settings, payer) == Decimal(120)
    # A duplicate is how the creator bills again; that one can be paid.
    copy = wallet.get(f"{BASE}/{invoice['_id']}/duplicate", auth=creator.auth).json()["data"]
    assert (
        wallet.post(f"{BASE}/{copy['_id']}/pay", auth=payer.auth).json()["data"]["data"]["status"]
        == "completed"
    )


def test_pay_errors(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings, balance="10"), make_wallet(settings, balance="10")
    canceled = bill(wallet, creator, payer, 5)
    wallet.get(f"{BASE}/{canceled['_id']}/cancel", auth=creator.auth).raise_for_status()
    assert_error(
        wallet.post(f"{BASE}/{canceled['_id']}/pay", auth=payer.auth), 409, "invoice_is_canceled"
    )
    open_one = bill(wallet, creator, payer, 5)
    for who in (creator, make_wallet(settings, balance="10")):  # only its payer pays it
        assert_error(
            wallet.post(f"{BASE}/{open_one['_id']}/pay", auth=who.auth), 404, "invoice_not_found"
        )
    assert_error(
        wallet.post(f"{BASE}/5422dd02b7f47b52010041a9/pay", auth=payer.auth),
        404,
        "invoice_not_found",
    )
    # A declined invoice is told as declined to its payer only.
    declined = bill(wallet, creator, payer, 500)
    wallet.post(f"{BASE}/{declined['_id']}/pay", auth=payer.auth).raise_for_status()
    assert_error(
        wallet.post(f"{BASE}/{declined['_id']}/pay", auth=creator.auth), 404, "invoice_not_found"
    )
    # Paying moves money, so it is never a GET.
    assert_error(
        wallet.get(f"{BASE}/{open_one['_id']}/pay", auth=payer.auth), 405, "method_not_allowed"
    )
    assert balance_of(settings, payer) == Decimal(10)


# ------------------------------------------------------------------ auth, limits, mounting


def test_authentication(wallet: httpx.Client, settings: Settings) -> None:
    owner = make_wallet(settings)
    missing = wallet.get(BASE)
    assert_error(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Basic")
    wrong_password = wallet.get(BASE, auth=(owner.phone, "wrong password"))
    unknown_phone = wallet.get(BASE, auth=(new_phone(), owner.password))
    not_a_phone = wallet.get(BASE, auth=("nobody", "x"))
    for response in (wrong_password, unknown_phone, not_a_phone):
        assert_error(response, 401, "invalid_credentials")
    # The answers never say which part was wrong.
    assert wrong_password.json() == unknown_phone.json() == not_a_phone.json()
    garbled = wallet.get(BASE, headers={"Authorization": "Basic %%%"})
    assert_error(garbled, 401, "invalid_credentials")
    assert wallet.get(BASE, auth=owner.auth).status_code == 200


def test_wrong_passwords_lock_the_account_for_a_while(
    wallet: httpx.Client, settings: Settings
) -> None:
    owner, neighbour = make_wallet(settings), make_wallet(settings)
    for _ in range(settings.login_max_failures):
        assert_error(wallet.get(BASE, auth=(owner.phone, "guess")), 401, "invalid_credentials")
    locked = wallet.get(BASE, auth=owner.auth)  # even the right password now
    assert_error(locked, 429, "account_locked")
    assert "minute" in locked.json()["meta"]["message"]
    # Per account, not per client: the same client signs in as someone else.
    assert wallet.get(BASE, auth=neighbour.auth).status_code == 200


def test_rate_limit_answers_in_the_envelope(database_url: str) -> None:
    limited = make_settings(database_url, rate_limit_per_minute=2)
    owner = make_wallet(limited)
    with LiveServer(limited) as live, live.client() as client:
        answers = [client.get(BASE, auth=owner.auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert_error(answers[2], 429, "rate_limit_exceeded")
    assert answers[2].headers["retry-after"].isdigit()


def test_unknown_paths_answer_in_the_envelope(wallet: httpx.Client, settings: Settings) -> None:
    owner = make_wallet(settings)
    assert_error(wallet.get("/compat/wallet/v1/nothing", auth=owner.auth), 404, "not_found")
    assert_error(wallet.delete(BASE, auth=owner.auth), 405, "method_not_allowed")


def test_idempotency_keys_are_not_the_native_apis(wallet: httpx.Client, settings: Settings) -> None:
    """Idempotency-Key belongs to the native /v1/ paths; the wallet's are its own."""
    creator, payer = make_wallet(settings), make_wallet(settings)
    headers = {"Idempotency-Key": "same-key"}
    body = {"payer": payer.phone, "amount": 5}
    first = wallet.post(BASE, json=body, auth=creator.auth, headers=headers)
    second = wallet.post(BASE, json=body, auth=creator.auth, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "idempotent-replayed" not in second.headers
    assert first.json()["data"]["_id"] != second.json()["data"]["_id"]


def test_docs_are_served_under_the_prefix(wallet: httpx.Client) -> None:
    schema = wallet.get("/compat/wallet/openapi.json").json()
    assert {"/v1/invoices", "/v1/invoices/created", "/v1/invoices/{invoice_id}/pay"} <= set(
        schema["paths"]
    )
    assert set(schema["paths"]["/v1/invoices/{invoice_id}/cancel"]) == {"get", "post"}
    assert wallet.get("/compat/wallet/docs").status_code == 200


def test_the_root_is_refused_with_a_clear_message(database_url: str) -> None:
    from invoicehub.app import create_app

    at_root = make_settings(database_url, compat_wallet_prefix="")
    with pytest.raises(
        CompatMountError,
        match=r"cannot mount the wallet API at 'the root': GET /v1/invoices is already answered "
        r"by the native API; set INVOICEHUB_COMPAT_WALLET_PREFIX",
    ):
        create_app(at_root)


def test_the_prefix_is_configurable(database_url: str) -> None:
    moved = make_settings(database_url, compat_wallet_prefix="/bw/")
    creator, payer = make_wallet(moved), make_wallet(moved)
    with LiveServer(moved) as live, live.client() as client:
        made = client.post(
            "/bw/v1/invoices", json={"payer": payer.phone, "amount": 1}, auth=creator.auth
        )
        native = client.get("/v1/invoices")
    assert made.status_code == 200, made.text
    assert native.status_code == 401
    assert "error" in native.json()


def test_the_core_sees_a_wallet_invoice(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings)
    made = bill(wallet, creator, payer, 77, message="Чай")
    with core_session(settings) as session:
        invoice = session.scalar(select(Invoice).where(Invoice.public_id == "inv_" + made["_id"]))
        assert invoice is not None
        assert (invoice.status, invoice.currency, invoice.total_minor) == ("open", "KZT", 7700)
        assert (invoice.description, invoice.customer_phone) == ("Чай", payer.phone)


def test_nul_characters_are_refused_not_stored(wallet: httpx.Client, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings)
    response = wallet.post(
        BASE, json={"payer": payer.phone, "amount": 1, "message": "a\x00b"}, auth=creator.auth
    )
    assert_error(response, 400, "invalid_message")


def refused_before_the_api(response: httpx.Response) -> bool:
    """The app's middleware refuses a NUL in any URL before an API sees it, in the native
    envelope."""
    body = response.json()
    return isinstance(body.get("error"), dict) and body["error"].get("code") == "invalid_characters"


def test_generated_requests_never_fail_the_server(server: LiveServer, settings: Settings) -> None:
    """schemathesis against the wallet's own schema: whatever a client sends, never a 5xx,
    and every JSON error is the wallet's envelope."""
    owner = make_wallet(settings, balance="100")
    token = base64.b64encode(f"{owner.phone}:{owner.password}".encode()).decode()
    schema = schemathesis.openapi.from_url(f"{server.base_url}/compat/wallet/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(
                base_url=f"{server.base_url}/compat/wallet",
                headers={"Authorization": f"Basic {token}"},
            )
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
            )
            content_type = (response.headers.get("content-type") or [""])[0]
            if response.status_code >= 400 and content_type.startswith("application/json"):
                if refused_before_the_api(response):
                    return
                meta = response.json()["meta"]
                assert set(meta) == {"code", "error", "message"}, meta
                assert meta["code"] == response.status_code

        check()
