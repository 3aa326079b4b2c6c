"""Conformance: seed 002 (Bots.Business web-app invoices), the document's example and every
rule it states, plus the reading and paying a bot needs (docs/compat/botsbusiness.md),
through the real server at /compat/botsbusiness."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import hypothesis
import pytest
import schemathesis
import zxingcpp
from PIL import Image
from sqlalchemy import select

from invoicehub.accounts import repository
from invoicehub.accounts import service as accounts
from invoicehub.config import Settings
from invoicehub.kit.money import currency, from_minor
from invoicehub.models import Invoice, Transfer
from tests.compat.test_wallet import core_session, refused_before_the_api
from tests.conftest import LiveServer, make_settings

PREFIX = "/compat/botsbusiness"
INVOICE_ID = re.compile(r"^invoice-[A-Z0-9]{8}$")
INVOICE_KEYS = [
    "qrCode",
    "invoiceId",
    "title",
    "amount",
    "userId",
    "payLink",
    "description",
    "status",
    "paidBy",
]
EXAMPLE = {
    "amount": 150,
    "userId": 123456789,
    "pin": "123456",
    "description": "Payment for premium subscription",
    "title": "Premium Plan",
    "payload": "user123-payment",
}


# ------------------------------------------------------------------ bots and users, via the core


@dataclass(frozen=True)
class BotUser:
    bot: int
    user_id: int
    pin: str

    def sign(self, **fields: object) -> dict[str, object]:
        return {"userId": self.user_id, "pin": self.pin} | fields


def make_bot(settings: Settings, *, number: int | None = None, username: str | None = None) -> int:
    with core_session(settings) as session:
        bot = accounts.create_bot(
            session,
            name="Test bot",
            username=username or f"test_{secrets.token_hex(4)}_bot",
            number=number,
        )
        return bot.number


def make_user(
    settings: Settings,
    bot: int,
    *,
    balance: str | None = None,
    user_id: int | None = None,
    pin: str | None = None,
) -> BotUser:
    user = BotUser(
        bot,
        user_id or 1_000_000 + secrets.randbelow(10**10),
        pin or f"{secrets.randbelow(10**6):06d}",
    )
    with core_session(settings) as session:
        accounts.create_bot_user(
            session,
            bot_number=bot,
            telegram_user_id=user.user_id,
            pin=user.pin,
            settings=settings,
            balance=Decimal(balance) if balance else None,
        )
    return user


def balance_of(settings: Settings, user: BotUser) -> Decimal:
    with core_session(settings) as session:
        bot = accounts.require_bot(session, user.bot)
        account = repository.bot_user(session, bot.id, str(user.user_id))
        assert account is not None
        return from_minor(accounts.balance_of(session, account), currency("KZT"))


def transfers_of(settings: Settings, invoice_id: str) -> list[Transfer]:
    with core_session(settings) as session:
        invoice = accounts.find_by_short_code(session, invoice_id)
        return list(session.scalars(select(Transfer).where(Transfer.invoice_id == invoice.id)))


# ------------------------------------------------------------------ the wire


@pytest.fixture
def bb(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def doc_bot(settings: Settings) -> int:
    """The document's bot: 1914078, whose pay links go to @bbp_app_bot."""
    return make_bot(settings, number=1914078, username="bbp_app_bot")


@pytest.fixture
def bot(settings: Settings) -> int:
    return make_bot(settings)


def url(bot: int | str, action: str) -> str:
    return f"{PREFIX}/v2/bots/{bot}/web-app/{action}"


def new_invoice(client: httpx.Client, user: BotUser, **fields: object) -> dict:
    body = {
        "amount": 10,
        "description": "Payment for test",
        "title": "Test Payment",
        "payload": "p-1",
    } | user.sign(**fields)
    response = client.post(url(user.bot, "new-invoice"), json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    return response.json()["invoice"]


def assert_error(response: httpx.Response, status: int, msg: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"status": "error", "msg": msg}


def local(server: LiveServer, absolute: str) -> str:
    """The path of a URL built from INVOICEHUB_PUBLIC_URL, to fetch it from the test server."""
    parts = urlsplit(absolute)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ------------------------------------------------------------------ the document's example


def test_the_documents_example(
    bb: httpx.Client, server: LiveServer, settings: Settings, doc_bot: int
) -> None:
    make_user(settings, doc_bot, user_id=123456789, pin="123456")
    response = bb.post("/compat/botsbusiness/v2/bots/1914078/web-app/new-invoice", json=EXAMPLE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["status", "invoice"]
    assert body["status"] == "success"
    invoice = body["invoice"]
    assert list(invoice) == INVOICE_KEYS
    assert INVOICE_ID.match(invoice["invoiceId"])
    assert invoice | {"qrCode": None, "invoiceId": None, "payLink": None} == {
        "qrCode": None,
        "invoiceId": None,
        "title": "Premium Plan",
        "amount": "150",
        "userId": "123456789",
        "payLink": None,
        "description": "Payment for premium subscription",
        "status": "unpaid",
        "paidBy": None,
    }
    assert invoice["payLink"] == f"https://t.me/bbp_app_bot?start={invoice['invoiceId']}"
    # The QR code is ours, an absolute URL from INVOICEHUB_PUBLIC_URL and the mount prefix.
    assert invoice["qrCode"] == (
        f"{settings.public_url}/compat/botsbusiness/v2/bots/1914078/web-app/invoices/"
        f"{invoice['invoiceId']}/qr.png"
    )
    image = bb.get(local(server, invoice["qrCode"]))
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.content)))
    assert [(code.format, code.text) for code in decoded] == [
        (zxingcpp.BarcodeFormat.QRCode, invoice["payLink"])
    ]
    # The core knows it: an open KZT invoice with the title, description and payload.
    with core_session(settings) as session:
        stored = session.scalar(select(Invoice).where(Invoice.short_code == invoice["invoiceId"]))
        assert stored is not None
        assert (stored.status, stored.currency, stored.total_minor) == ("open", "KZT", 15000)
        assert (stored.title, stored.description) == (
            "Premium Plan",
            "Payment for premium subscription",
        )
        assert stored.metadata_ == {"payload": "user123-payment"}
        assert stored.payer_account_id is None  # whoever pays it


def test_get_form_and_query_string(bb: httpx.Client, settings: Settings, bot: int) -> None:
    user = make_user(settings, bot)
    fields = {"amount": "12.5", "description": "d", "title": "t", "payload": "p"} | user.sign()
    by_get = bb.get(url(bot, "new-invoice"), params=fields)
    by_form = bb.post(url(bot, "new-invoice"), data=fields)
    by_query = bb.post(url(bot, "new-invoice"), params=fields)
    for response in (by_get, by_form, by_query):
        assert response.status_code == 200, response.text
        assert response.json()["invoice"]["amount"] == "12.5"
        assert response.json()["invoice"]["userId"] == str(user.user_id)
    codes = {r.json()["invoice"]["invoiceId"] for r in (by_get, by_form, by_query)}
    assert len(codes) == 3  # three invoices, each its own id
    # The body wins over the query string.
    mixed = bb.post(url(bot, "new-invoice"), params=fields, json=fields | {"title": "from body"})
    assert mixed.json()["invoice"]["title"] == "from body"


def test_numbers_as_the_document_types_them(bb: httpx.Client, settings: Settings, bot: int) -> None:
    user = make_user(settings, bot, pin="0042")
    made = new_invoice(bb, user, amount=99.99, userId=str(user.user_id))
    assert made["amount"] == "99.99"
    assert new_invoice(bb, user, amount="1000.00")["amount"] == "1000"
    assert new_invoice(bb, user, payload=12345)["amount"] == "10"  # a number as payload is text


# ------------------------------------------------------------------ errors


def test_missing_parameters_as_documented(bb: httpx.Client, bot: int) -> None:
    body = dict(EXAMPLE)
    del body["amount"], body["pin"]
    assert_error(
        bb.post(url(bot, "new-invoice"), json=body), 400, "Missing parameters: amount, pin"
    )
    assert_error(
        bb.get(url(bot, "new-invoice")),
        400,
        "Missing parameters: amount, userId, pin, description, title, payload",
    )


@pytest.mark.parametrize("name", list(EXAMPLE))
@pytest.mark.parametrize("how", ["absent", "empty", "null"])
def test_each_parameter_is_required(bb: httpx.Client, bot: int, name: str, how: str) -> None:
    body: dict[str, object] = dict(EXAMPLE)
    if how == "absent":
        del body[name]
    else:
        body[name] = "  " if how == "empty" else None
    assert_error(bb.post(url(bot, "new-invoice"), json=body), 400, f"Missing parameters: {name}")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"amount": "ten"}, "amount must be a positive number"),
        ({"amount": 0}, "amount must be a positive number"),
        ({"amount": -3}, "amount must be a positive number"),
        ({"amount": True}, "amount must be a positive number"),
        ({"amount": "Infinity"}, "amount must be a positive number"),
        ({"userId": "abc"}, "userId must be a Telegram user id"),
        ({"userId": -1}, "userId must be a Telegram user id"),
        ({"userId": 1.5}, "userId must be a Telegram user id"),
        ({"pin": ["1"]}, "pin must be text"),
        ({"title": "x" * 201}, "title must be at most 200 characters"),
        ({"description": {"a": 1}}, "description must be text"),
        ({"payload": "x" * 501}, "payload must be at most 500 characters"),
    ],
)
def test_invalid_parameters(bb: httpx.Client, bot: int, fields: dict, problem: str) -> None:
    response = bb.post(url(bot, "new-invoice"), json=EXAMPLE | fields)
    assert response.status_code == 400, response.text
    body = response.json()
    assert list(body) == ["status", "msg"]
    assert body["status"] == "error"
    assert body["msg"].startswith("Invalid parameters: ")
    assert problem in body["msg"]


def test_amounts_the_core_refuses(bb: httpx.Client, settings: Settings, bot: int) -> None:
    user = make_user(settings, bot)
    for amount in ("1.234", "100000000000000"):
        response = bb.post(url(bot, "new-invoice"), json=EXAMPLE | user.sign(amount=amount))
        assert response.status_code == 400, response.text
        assert response.json()["msg"].startswith("Invalid parameters: amount must be")


def test_a_body_that_is_not_an_object(bb: httpx.Client, bot: int) -> None:
    for content in (b"{broken", b"[1]"):
        response = bb.post(
            url(bot, "new-invoice"), content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["msg"].startswith("Invalid parameters: the body")


def test_wrong_pin_or_unknown_user_say_the_same(
    bb: httpx.Client, settings: Settings, bot: int
) -> None:
    user = make_user(settings, bot)
    wrong_pin = bb.post(url(bot, "new-invoice"), json=EXAMPLE | user.sign(pin="999999999"))
    unknown = bb.post(url(bot, "new-invoice"), json=EXAMPLE | {"userId": 42, "pin": user.pin})
    assert_error(wrong_pin, 401, "Wrong userId or PIN")
    assert_error(unknown, 401, "Wrong userId or PIN")
    other_bot = make_bot(settings)  # a user of one bot is nobody in another
    assert_error(
        bb.post(url(other_bot, "new-invoice"), json=EXAMPLE | user.sign()),
        401,
        "Wrong userId or PIN",
    )
    for missing_bot in ("999999999999", "not-a-bot", "0"):
        assert_error(
            bb.post(url(missing_bot, "new-invoice"), json=EXAMPLE | user.sign()),
            404,
            "Bot not found",
        )


def test_repeated_wrong_pins_lock_the_user(bb: httpx.Client, settings: Settings, bot: int) -> None:
    user, neighbour = make_user(settings, bot), make_user(settings, bot)
    for _ in range(settings.login_max_failures):
        assert_error(
            bb.post(url(bot, "new-invoice"), json=EXAMPLE | user.sign(pin="0000")),
            401,
            "Wrong userId or PIN",
        )
    locked = bb.post(url(bot, "new-invoice"), json=EXAMPLE | user.sign())
    assert locked.status_code == 429
    assert locked.json()["status"] == "error"
    assert "minute" in locked.json()["msg"]
    # The lock is the user's, not the caller's: the same client goes on for another user.
    assert bb.post(url(bot, "new-invoice"), json=EXAMPLE | neighbour.sign()).status_code == 200


# ------------------------------------------------------------------ beyond: read and pay


def test_read_an_invoice(bb: httpx.Client, settings: Settings, bot: int) -> None:
    creator, reader = make_user(settings, bot), make_user(settings, bot)
    made = new_invoice(bb, creator, payload="order-77")
    for who in (creator, reader):
        for response in (
            bb.post(url(bot, "get-invoice"), json=who.sign(invoiceId=made["invoiceId"])),
            bb.get(url(bot, "get-invoice"), params=who.sign(invoiceId=made["invoiceId"])),
        ):
            assert response.status_code == 200, response.text
            assert response.json() == {
                "status": "success",
                "invoice": made | {"payload": "order-77"},
            }
    assert_error(
        bb.post(url(bot, "get-invoice"), json=reader.sign(invoiceId="invoice-AAAAAAAA")),
        404,
        "Invoice not found",
    )
    assert_error(
        bb.post(url(bot, "get-invoice"), json={}), 400, "Missing parameters: invoiceId, userId, pin"
    )
    assert_error(
        bb.post(url(bot, "get-invoice"), json=reader.sign(invoiceId=made["invoiceId"], pin="1")),
        401,
        "Wrong userId or PIN",
    )
    # Another bot's user, on their own bot, does not find it.
    elsewhere = make_bot(settings)
    stranger = make_user(settings, elsewhere)
    assert_error(
        bb.post(url(elsewhere, "get-invoice"), json=stranger.sign(invoiceId=made["invoiceId"])),
        404,
        "Invoice not found",
    )


def test_pay_an_invoice(bb: httpx.Client, settings: Settings, bot: int) -> None:
    creator = make_user(settings, bot, balance="1")
    payer = make_user(settings, bot, balance="100")
    made = new_invoice(bb, creator, amount="30.5", payload="sub-1")
    paid = bb.post(url(bot, "pay-invoice"), json=payer.sign(invoiceId=made["invoiceId"]))
    assert paid.status_code == 200, paid.text
    assert paid.json() == {
        "status": "success",
        "invoice": made | {"status": "paid", "paidBy": str(payer.user_id), "payload": "sub-1"},
    }
    assert balance_of(settings, payer) == Decimal("69.5")
    assert balance_of(settings, creator) == Decimal("31.5")
    seen = bb.post(url(bot, "get-invoice"), json=creator.sign(invoiceId=made["invoiceId"]))
    assert (seen.json()["invoice"]["status"], seen.json()["invoice"]["paidBy"]) == (
        "paid",
        str(payer.user_id),
    )
    # Paying twice is refused, by the payer or anyone else; money moved once.
    for who in (payer, make_user(settings, bot, balance="100")):
        assert_error(
            bb.post(url(bot, "pay-invoice"), data=who.sign(invoiceId=made["invoiceId"])),
            409,
            "Invoice is already paid",
        )
    assert [t.status for t in transfers_of(settings, made["invoiceId"])] == ["completed"]
    assert balance_of(settings, payer) == Decimal("69.5")


def test_pay_refusals(bb: httpx.Client, settings: Settings, bot: int) -> None:
    creator = make_user(settings, bot, balance="100")
    poor = make_user(settings, bot, balance="5")
    made = new_invoice(bb, creator, amount=10)
    assert_error(
        bb.post(url(bot, "pay-invoice"), json=creator.sign(invoiceId=made["invoiceId"])),
        409,
        "You cannot pay your own invoice",
    )
    assert_error(
        bb.post(url(bot, "pay-invoice"), json=poor.sign(invoiceId=made["invoiceId"])),
        402,
        "Insufficient balance to pay this invoice",
    )
    # The refusal changed nothing: still unpaid, no transfer, the balance untouched.
    seen = bb.post(url(bot, "get-invoice"), json=poor.sign(invoiceId=made["invoiceId"]))
    assert seen.json()["invoice"]["status"] == "unpaid"
    assert transfers_of(settings, made["invoiceId"]) == []
    assert balance_of(settings, poor) == Decimal(5)
    # With enough money it goes through.
    with core_session(settings) as session:
        bot_row = accounts.require_bot(session, bot)
        account = repository.bot_user(session, bot_row.id, str(poor.user_id))
        assert account is not None
        accounts.topup(session, account, Decimal(5))
    paid = bb.post(url(bot, "pay-invoice"), json=poor.sign(invoiceId=made["invoiceId"]))
    assert paid.status_code == 200, paid.text
    assert balance_of(settings, poor) == Decimal(0)
    # Money moves on POST only.
    assert_error(
        bb.get(url(bot, "pay-invoice"), params=poor.sign(invoiceId=made["invoiceId"])),
        405,
        "Method GET is not allowed here",
    )
    assert_error(
        bb.post(url(bot, "pay-invoice"), json=poor.sign(invoiceId="invoice-ZZZZZZZZ")),
        404,
        "Invoice not found",
    )
    assert_error(
        bb.post(url(bot, "pay-invoice"), json={"invoiceId": "x"}),
        400,
        "Missing parameters: userId, pin",
    )


def test_another_bots_user_cannot_pay(bb: httpx.Client, settings: Settings, bot: int) -> None:
    creator = make_user(settings, bot)
    made = new_invoice(bb, creator)
    elsewhere = make_bot(settings)
    stranger = make_user(settings, elsewhere, balance="100")
    assert_error(
        bb.post(url(elsewhere, "pay-invoice"), json=stranger.sign(invoiceId=made["invoiceId"])),
        404,
        "Invoice not found",
    )
    assert balance_of(settings, stranger) == Decimal(100)


def test_qr_code_errors(bb: httpx.Client, settings: Settings, bot: int) -> None:
    made = new_invoice(bb, make_user(settings, bot))
    assert bb.get(url(bot, f"invoices/{made['invoiceId']}/qr.png")).status_code == 200
    assert_error(bb.get(url(bot, "invoices/invoice-00000000/qr.png")), 404, "Invoice not found")
    other = make_bot(settings)
    assert_error(
        bb.get(url(other, f"invoices/{made['invoiceId']}/qr.png")), 404, "Invoice not found"
    )
    assert_error(bb.get(url(1, f"invoices/{made['invoiceId']}/qr.png")), 404, "Bot not found")


# ------------------------------------------------------------------ limits and mounting


def test_rate_limit(database_url: str) -> None:
    limited = make_settings(database_url, rate_limit_per_minute=2)
    number = make_bot(limited)
    user = make_user(limited, number)
    with LiveServer(limited) as live, live.client() as client:
        answers = [
            client.post(url(number, "new-invoice"), json=EXAMPLE | user.sign()) for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["status"] == "error"
    assert answers[2].headers["retry-after"].isdigit()


@pytest.mark.parametrize("prefix", ["/bb", ""])
def test_the_prefix_moves_the_qr_code_with_it(database_url: str, prefix: str) -> None:
    moved = make_settings(database_url, compat_botsbusiness_prefix=prefix)
    number = make_bot(moved)
    user = make_user(moved, number)
    with LiveServer(moved) as live, live.client() as client:
        made = client.post(
            f"{prefix}/v2/bots/{number}/web-app/new-invoice", json=EXAMPLE | user.sign()
        )
        assert made.status_code == 200, made.text
        qr = made.json()["invoice"]["qrCode"]
        assert qr.startswith(f"{moved.public_url}{prefix}/v2/bots/{number}/web-app/invoices/")
        assert client.get(local(live, qr)).headers["content-type"] == "image/png"


def test_docs_are_served_under_the_prefix(bb: httpx.Client) -> None:
    schema = bb.get(f"{PREFIX}/openapi.json").json()
    paths = schema["paths"]
    assert set(paths["/v2/bots/{bot_id}/web-app/new-invoice"]) == {"get", "post"}
    assert set(paths["/v2/bots/{bot_id}/web-app/pay-invoice"]) == {"post"}
    assert "/v2/bots/{bot_id}/web-app/invoices/{invoice_id}/qr.png" in paths
    assert bb.get(f"{PREFIX}/docs").status_code == 200


def test_nul_characters_are_refused_not_stored(bb: httpx.Client, bot: int) -> None:
    response = bb.post(url(bot, "new-invoice"), json=EXAMPLE | {"title": "a\x00b"})
    assert_error(response, 400, "Invalid parameters: title must be text (without NUL characters)")


def test_generated_requests_never_fail_the_server(server: LiveServer, settings: Settings) -> None:
    """schemathesis against this API's own schema: whatever a client sends, never a 5xx, and
    every JSON error is {"status": "error", "msg"}."""
    number = make_bot(settings)
    make_user(settings, number, balance="100")
    schema = schemathesis.openapi.from_url(f"{server.base_url}{PREFIX}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            if case.path_parameters and secrets.randbelow(2):
                case.path_parameters["bot_id"] = str(number)  # half of them reach a real bot
            response = case.call(base_url=f"{server.base_url}{PREFIX}")
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
            )
            content_type = (response.headers.get("content-type") or [""])[0]
            if response.status_code >= 400 and content_type.startswith("application/json"):
                if refused_before_the_api(response):
                    return
                body = response.json()
                assert list(body) == ["status", "msg"], body
                assert body["status"] == "error"

        check()
