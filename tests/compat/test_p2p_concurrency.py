"""Person-to-person payments under concurrency, through the real server with threads: one
invoice paid once whatever the crowd, a balance never overdrawn, and the ledger (a sum of
entries) always equal to what was topped up. For the wallet (001) and the bots (002).

Nothing here depends on time, so the server waits as long as it takes for SQLite's one
writer: every request signs in with an argon2 check that the core's Authenticator runs
inside a write transaction, so on SQLite 50 simultaneous sign-ins queue one after another
(docs/compat/wallet.md, "Known limits"), and on a slow machine the default 30 s busy
timeout could run out before the last one's turn.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from invoicehub.config import Settings
from tests.compat.test_botsbusiness import BotUser, make_bot, make_user, new_invoice
from tests.compat.test_botsbusiness import balance_of as bot_balance
from tests.compat.test_botsbusiness import transfers_of as bot_transfers
from tests.compat.test_botsbusiness import url as bot_url
from tests.compat.test_wallet import BASE, bill, ledger_balances, make_wallet
from tests.compat.test_wallet import balance_of as wallet_balance
from tests.compat.test_wallet import transfers_of as wallet_transfers
from tests.conftest import LiveServer, make_settings


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, sqlite_busy_timeout_seconds=600)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        yield live


def all_at_once(
    server: LiveServer, requests: list[Callable[[httpx.Client], httpx.Response]]
) -> list[httpx.Response]:
    """Sends every request from its own thread and connection, released together."""
    start = threading.Barrier(len(requests))

    def send(request: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=300) as client:
            client.get("/healthz")  # the connection is open before the start
            start.wait()
            return request(client)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def assert_ledger_balances(settings: Settings) -> None:
    total, topups, lowest = ledger_balances(settings)
    assert total == topups
    assert lowest >= 0


def meta_error(response: httpx.Response) -> str:
    return str(response.json()["meta"].get("error"))


# ------------------------------------------------------------------ the wallet


def test_fifty_simultaneous_pays_of_one_invoice_make_one_transfer(
    server: LiveServer, settings: Settings
) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="10000")
    with server.client() as client:
        invoice = bill(client, creator, payer, 150)
    path = f"{BASE}/{invoice['_id']}/pay"
    answers = all_at_once(server, [lambda c: c.post(path, auth=payer.auth)] * 50)

    succeeded = [a for a in answers if a.status_code == 200]
    assert len(succeeded) == 1, [a.text for a in succeeded]
    assert succeeded[0].json()["data"]["data"]["status"] == "completed"
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {409}
    assert {meta_error(a) for a in refused} <= {"invoice_is_processing", "invoice_is_completed"}
    assert len(wallet_transfers(settings, invoice["_id"])) == 1
    assert wallet_balance(settings, payer) == Decimal(9850)
    assert wallet_balance(settings, creator) == Decimal(150)
    assert_ledger_balances(settings)


def test_one_payer_paying_many_invoices_at_once_never_overdraws(
    server: LiveServer, settings: Settings
) -> None:
    payer = make_wallet(settings, balance="500")
    creators = [make_wallet(settings) for _ in range(3)]
    with server.client() as client:
        invoices = [bill(client, creators[n % 3], payer, 100) for n in range(12)]
    answers = all_at_once(
        server,
        [
            (lambda c, i=invoice: c.post(f"{BASE}/{i['_id']}/pay", auth=payer.auth))
            for invoice in invoices
        ],
    )

    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    outcomes = Counter(a.json()["data"]["data"]["status"] for a in answers)
    assert outcomes == {"completed": 5, "declined": 7}
    assert wallet_balance(settings, payer) == Decimal(0)
    assert sum(wallet_balance(settings, c) for c in creators) == Decimal(500)
    for invoice in invoices:
        assert len(wallet_transfers(settings, invoice["_id"])) == 1
    assert_ledger_balances(settings)


def test_simultaneous_pay_and_cancel_one_wins(server: LiveServer, settings: Settings) -> None:
    creator, payer = make_wallet(settings), make_wallet(settings, balance="1000")
    with server.client() as client:
        invoices = [bill(client, creator, payer, 10) for _ in range(8)]
    requests: list[Callable[[httpx.Client], httpx.Response]] = []
    for invoice in invoices:
        requests.append(lambda c, i=invoice: c.post(f"{BASE}/{i['_id']}/pay", auth=payer.auth))
        requests.append(lambda c, i=invoice: c.get(f"{BASE}/{i['_id']}/cancel", auth=creator.auth))
    answers = all_at_once(server, requests)

    paid = 0
    for pay, cancel in zip(answers[::2], answers[1::2], strict=True):
        if pay.status_code == 200:
            paid += 1
            assert (cancel.status_code, meta_error(cancel)) == (409, "invoice_is_completed")
        else:
            assert (pay.status_code, meta_error(pay)) == (409, "invoice_is_canceled")
            assert cancel.status_code == 200
    assert wallet_balance(settings, payer) == Decimal(1000 - 10 * paid)
    assert wallet_balance(settings, creator) == Decimal(10 * paid)
    assert_ledger_balances(settings)


# ------------------------------------------------------------------ the bots


def test_fifty_simultaneous_bot_pays_of_one_invoice_make_one_transfer(
    server: LiveServer, settings: Settings
) -> None:
    bot = make_bot(settings)
    creator = make_user(settings, bot)
    payers = [make_user(settings, bot, balance="1000") for _ in range(5)]
    with server.client() as client:
        invoice = new_invoice(client, creator, amount=250)
    code = invoice["invoiceId"]

    def pay(user: BotUser) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.post(bot_url(bot, "pay-invoice"), json=user.sign(invoiceId=code))

    answers = all_at_once(server, [pay(payers[n % 5]) for n in range(50)])

    succeeded = [a for a in answers if a.status_code == 200]
    assert len(succeeded) == 1, [a.text for a in succeeded]
    paid_by = succeeded[0].json()["invoice"]["paidBy"]
    refused = [a for a in answers if a.status_code != 200]
    assert {a.status_code for a in refused} == {409}
    assert {a.json()["msg"] for a in refused} <= {
        "Invoice is already paid",
        "A payment of this invoice is in progress",
    }
    assert len(bot_transfers(settings, code)) == 1
    balances = {str(p.user_id): bot_balance(settings, p) for p in payers}
    assert balances == {
        user_id: Decimal(750) if user_id == paid_by else Decimal(1000) for user_id in balances
    }
    assert bot_balance(settings, creator) == Decimal(250)
    assert_ledger_balances(settings)


def test_one_bot_user_paying_many_invoices_at_once_never_overdraws(
    server: LiveServer, settings: Settings
) -> None:
    bot = make_bot(settings)
    payer = make_user(settings, bot, balance="500")
    creators = [make_user(settings, bot) for _ in range(3)]
    with server.client() as client:
        codes = [new_invoice(client, creators[n % 3], amount=100)["invoiceId"] for n in range(12)]
    answers = all_at_once(
        server,
        [
            (
                lambda c, code=code: c.post(
                    bot_url(bot, "pay-invoice"), json=payer.sign(invoiceId=code)
                )
            )
            for code in codes
        ],
    )

    assert Counter(a.status_code for a in answers) == {200: 5, 402: 7}
    assert bot_balance(settings, payer) == Decimal(0)
    assert sum(bot_balance(settings, c) for c in creators) == Decimal(500)
    assert sum(len(bot_transfers(settings, code)) for code in codes) == 5  # refusals leave none
    assert_ledger_balances(settings)
