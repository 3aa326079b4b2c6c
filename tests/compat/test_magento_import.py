"""``invoicehub magento import`` and ``invoicehub magento sync``: the installed command, run
as a real subprocess against the test database, reading Magento 2 REST JSON from files or
from a local fake Magento store; the results are judged through the hub's own API."""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from invoicehub.cli.magento import run_sync
from invoicehub.cli.main import app
from invoicehub.compat.magento.sync import MagentoClient, pull_store
from invoicehub.config import Settings, get_settings
from invoicehub.errors import AppError
from tests.compat.fake_magento import (
    TOKEN,
    FakeMagento,
    catalogue,
    filters_of,
    magento_invoice,
    magento_order,
    search_result,
)
from tests.conftest import LiveServer, OrgKeys, create_org

INVOICEHUB = Path(sys.executable).parent / "invoicehub"
BASE = "/compat/magento/api/v1"


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # what a failed assertion shows
        return f"invoicehub {' '.join(self.args)} -> {self.returncode}\nstdout: {self.stdout!r}\nstderr: {self.stderr!r}"

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def invoicehub(*args: str, database_url: str) -> Run:
    # Only the test database; no proxy between the command and the fake store on 127.0.0.1.
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INVOICEHUB_") and "proxy" not in k.lower()
    }
    environment["INVOICEHUB_DATABASE_URL"] = database_url
    done = subprocess.run(
        [str(INVOICEHUB), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(args, done.returncode, done.stdout, done.stderr)


def invoicehub_in_process(*args: str, database_url: str) -> Run:
    """The same command through its typer app in this process: quicker to start, for the
    cases whose subprocess twin already shows the real command's behaviour."""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env={"INVOICEHUB_DATABASE_URL": database_url})
    finally:
        get_settings.cache_clear()
    return Run(args, result.exit_code, result.stdout, result.stderr)


def write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def hub_get(server: LiveServer, org: OrgKeys, path: str, **params: Any) -> dict[str, Any]:
    with server.client(org.secret_key) as http:
        response = http.get(f"{BASE}{path}", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def invoices(server: LiveServer, org: OrgKeys) -> dict[str, dict[str, Any]]:
    """Every invoice of ``org`` by increment id, with items (at most 100 in these tests)."""
    data = hub_get(server, org, "/invoices", per_page=100, include="items")
    assert data["pagination"]["total"] <= 100
    return {row["increment_id"]: row for row in data["invoices"]}


def stored_counts(server: LiveServer, org: OrgKeys) -> tuple[int, int]:
    return (
        hub_get(server, org, "/orders")["pagination"]["total"],
        hub_get(server, org, "/invoices")["pagination"]["total"],
    )


def small_shop() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The document's order and invoice, the order invoiced twice, and three more."""
    orders, invoices_ = catalogue()
    keep_orders = {"000000123", "000000777", "000001000", "000001001", "000001086"}
    chosen_orders = [o for o in orders if o["increment_id"] in keep_orders]
    ids = {o["entity_id"] for o in chosen_orders}
    return chosen_orders, [i for i in invoices_ if i["order_id"] in ids]


# ------------------------------------------------------------------ import


def test_import_twice_updates_and_never_duplicates(
    server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    org = create_org(settings, name="Import twice")
    orders, invoices_ = small_shop()
    files = [
        str(write(tmp_path / "orders.json", search_result(orders))),
        str(write(tmp_path / "invoices.json", search_result(invoices_))),
    ]
    first = invoicehub(
        "magento",
        "import",
        "--org",
        org.org_id,
        "--json",
        *files,
        database_url=settings.database_url,
    )
    assert first.returncode == 0, first
    assert first.json == {
        "orders_created": 5, "orders_updated": 0, "invoices_created": 6, "invoices_updated": 0,
        "latest_update": "2024-02-03T09:00:00Z",
    }  # fmt: skip
    assert first.stderr == ""
    before = invoices(server, org)
    assert len(before) == 6
    assert before["100000777"]["order"]["increment_id"] == "000000777"

    again = invoicehub(
        "magento", "import", "--org", org.org_id, *files, database_url=settings.database_url
    )
    assert again.returncode == 0, again
    assert again.stdout == "orders: 0 new, 5 updated; invoices: 0 new, 6 updated\n"
    after = invoices(server, org)
    assert stored_counts(server, org) == (5, 6)
    strip = lambda row: {k: v for k, v in row.items() if k not in ("items", "updated_at")}  # noqa: E731
    assert {n: strip(r) for n, r in after.items()} == {n: strip(r) for n, r in before.items()}
    assert {n: len(r["items"]) for n, r in after.items()} == {
        n: len(r["items"]) for n, r in before.items()
    }

    # Magento moved on: the open invoice was paid with a new total, the customer's email
    # changed, an item's quantity changed. Order and invoice come in separate files.
    changed_orders, changed_invoices = copy.deepcopy(orders), copy.deepcopy(invoices_)
    split = next(o for o in changed_orders if o["increment_id"] == "000000777")
    split["customer_email"] = "jane@new.example"
    split["updated_at"] = "2024-03-01 10:00:00"
    rest = next(i for i in changed_invoices if i["increment_id"] == "100000778")
    rest.update(state=2, shipping_amount=4.5, grand_total=34.5, updated_at="2024-03-01 10:00:00")
    doc = next(i for i in changed_invoices if i["increment_id"] == "100000123")
    doc["items"][0].update(qty=3, row_total=134.97)
    third = invoicehub(
        "magento",
        "import",
        "--org",
        org.org_id,
        "--json",
        str(write(tmp_path / "invoices-march.json", search_result(changed_invoices))),
        str(write(tmp_path / "orders-march.json", search_result(changed_orders))),
        database_url=settings.database_url,
    )
    assert third.returncode == 0, third
    assert (third.json["invoices_created"], third.json["invoices_updated"]) == (0, 6)
    assert third.json["latest_update"] == "2024-03-01T10:00:00Z"
    updated = invoices(server, org)
    assert stored_counts(server, org) == (5, 6)
    assert (
        updated["100000778"]["state"],
        updated["100000778"]["shipping_amount"],
        updated["100000778"]["grand_total"],
    ) == ("paid", "4.50", "34.50")
    # Shown as the later of Magento's change and the hub's first copy of the record.
    rest_row = updated["100000778"]
    assert rest_row["updated_at"] == max(rest_row["created_at"], "2024-03-01T10:00:00Z")
    assert updated["100000778"]["customer_email"] == "jane@new.example"
    assert (
        updated["100000123"]["items"][0]["qty"],
        updated["100000123"]["items"][0]["row_total"],
    ) == (3, "134.97")
    order = hub_get(server, org, "/orders/000000777")["order"]
    assert order["customer_email"] == "jane@new.example"


BAD_INVOICE_CASES: dict[str, tuple[Any, str]] = {
    # name -> (how to spoil the second invoice, or the file's whole text; what stderr says)
    "grand-total-not-the-sum": (
        {"grand_total": 110.0},
        "{file} items[{index}] (invoice 100000777): grand_total: 110.0 is not subtotal + tax + shipping - discount",
    ),
    "missing-increment-id": (
        {"increment_id": None},
        "{file} items[{index}]: increment_id: missing",
    ),
    "qty-not-a-number": (
        {
            "items": [
                {"sku": "LAMP-01", "name": "Desk lamp", "qty": "two", "price": 30, "row_total": 60}
            ]
        },
        "{file} items[{index}] (invoice 100000777): items[0].qty: must be a number, got 'two'",
    ),
    "unknown-state": (
        {"state": 7},
        "{file} items[{index}] (invoice 100000777): state: must be 1 (open), 2 (paid) or 3 (canceled), got 7",
    ),
    "unknown-currency": (
        {"order_currency_code": "XYZ"},
        "{file} items[{index}] (invoice 100000777): order_currency_code: 'XYZ' is not an ISO 4217 currency code",
    ),
    "too-many-decimals": (
        {"subtotal": 60.001, "grand_total": 60.001},
        "{file} items[{index}] (invoice 100000777): subtotal: USD amounts take at most 2 decimals",
    ),
    "truncated-json": ('{"items": [{"entity_id": 1', "{file}: is not valid JSON"),
    "not-a-search-result": (
        '{"message": "The consumer isn\'t authorized to access %resources."}',
        "{file}: is not a Magento search result",
    ),
}


# The issue's own examples run as the installed command; the rest through its typer app.
AS_SUBPROCESS = (
    "grand-total-not-the-sum",
    "missing-increment-id",
    "qty-not-a-number",
    "missing-file",
)


@dataclass(frozen=True)
class Rejection:
    org: OrgKeys
    run: Run
    expected: str


@pytest.fixture(scope="module")
def rejections(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Rejection]:
    """Every bad file, each beside a good orders file, imported at once (subprocesses are
    slow to start), each into its own organization."""
    orders, invoices_ = small_shop()
    jobs = {}
    for name, (spoil, message) in BAD_INVOICE_CASES.items():
        directory = tmp_path_factory.mktemp(name)
        org = create_org(settings, name=name)
        index = next(n for n, i in enumerate(invoices_) if i["increment_id"] == "100000777")
        if isinstance(spoil, str):
            bad: Any = spoil
        else:
            spoiled = copy.deepcopy(invoices_)
            spoiled[index].update(spoil)
            spoiled[index] = {k: v for k, v in spoiled[index].items() if v is not None}
            bad = search_result(spoiled)
        good_file = write(directory / "orders.json", search_result(orders))
        bad_file = write(directory / "invoices.json", bad)
        expected = message.format(file=bad_file, index=index)
        jobs[name] = (org, [str(good_file), str(bad_file)], expected)
    jobs["missing-file"] = (
        create_org(settings, name="missing"),
        ["/no/such/invoices.json"],
        "cannot read /no/such/invoices.json: No such file or directory",
    )
    jobs["unknown-org"] = (
        jobs["missing-file"][0],
        [jobs["truncated-json"][1][0]],
        "no organization org_000000000000000000000000",
    )

    def run(name: str) -> Rejection:
        org, files, expected = jobs[name]
        target = "org_000000000000000000000000" if name == "unknown-org" else org.org_id
        command = invoicehub if name in AS_SUBPROCESS else invoicehub_in_process
        args = ("magento", "import", "--org", target, *files)
        return Rejection(org, command(*args, database_url=settings.database_url), expected)

    with ThreadPoolExecutor(max_workers=len(AS_SUBPROCESS)) as pool:
        done = dict(zip(AS_SUBPROCESS, pool.map(run, AS_SUBPROCESS), strict=True))
    return done | {name: run(name) for name in jobs if name not in AS_SUBPROCESS}


@pytest.mark.parametrize("case", [*BAD_INVOICE_CASES, "missing-file", "unknown-org"])
def test_a_malformed_file_is_rejected_whole(
    rejections: dict[str, Rejection], server: LiveServer, case: str
) -> None:
    rejected = rejections[case]
    assert rejected.run.returncode == 1, rejected.run
    assert rejected.run.stdout == ""
    lines = rejected.run.stderr.splitlines()
    assert len(lines) == 1, rejected.run
    assert lines[0].startswith(f"error: {rejected.expected}"), rejected.run
    # Not even the good orders file, nor the invoice before the bad one, was stored.
    assert stored_counts(server, rejected.org) == (0, 0)


# ------------------------------------------------------------------ sync


@pytest.fixture
def shop() -> Iterator[FakeMagento]:
    with FakeMagento() as fake:
        fake.orders, fake.invoices = (copy.deepcopy(part) for part in small_shop())
        yield fake


def sync(
    settings: Settings,
    org: OrgKeys,
    shop: FakeMagento,
    *extra: str,
    token: str = TOKEN,
    command: Callable[..., Run] = invoicehub,
) -> Run:
    return command(
        "magento",
        "sync",
        "--org",
        org.org_id,
        "--base-url",
        shop.base_url,
        "--token",
        token,
        "--json",
        *extra,
        database_url=settings.database_url,
    )


def test_sync_page_by_page_then_incrementally(
    server: LiveServer, settings: Settings, shop: FakeMagento
) -> None:
    org = create_org(settings, name="Synced shop")
    first = sync(settings, org, shop, "--page-size", "2")
    assert first.returncode == 0, first
    assert first.stderr == ""  # no progress bar litter off a terminal
    assert first.json["since"] == {"orders": None, "invoices": None}
    assert first.json["pulled"] == {"orders": 5, "invoices": 6}
    assert (first.json["orders_created"], first.json["invoices_created"]) == (5, 6)

    # Page by page: the cut-off first, then keyset pages of two, ordered by entity_id.
    orders_searched = shop.searches_of("orders")
    assert orders_searched[0]["pageSize"] == "1"
    assert orders_searched[0]["sortOrders"]["0"] == {"field": "updated_at", "direction": "DESC"}
    newest_order = max(o["updated_at"] for o in shop.orders)
    pages = orders_searched[1:]
    assert [p["pageSize"] for p in pages] == ["2", "2", "2"]
    assert [filters_of(p) for p in pages] == [
        [("updated_at", newest_order, "lteq")],
        [("updated_at", newest_order, "lteq"), ("entity_id", "777", "gt")],
        [("updated_at", newest_order, "lteq"), ("entity_id", "1001", "gt")],
    ]
    assert all(p["sortOrders"]["0"] == {"field": "entity_id", "direction": "ASC"} for p in pages)
    assert len(shop.searches_of("invoices")) == 1 + 3  # the cut-off, then 2 + 2 + 2
    stored = invoices(server, org)
    assert sorted(stored) == sorted(i["increment_id"] for i in shop.invoices)
    assert all(row["order"] is not None and row["magento_store"] for row in stored.values())

    # The shop moves on: an open invoice is paid, and a new order is invoiced.
    newest_invoice = max(i["updated_at"] for i in shop.invoices)
    rest = next(i for i in shop.invoices if i["increment_id"] == "100000778")
    rest.update(state=2, updated_at="2024-03-01 10:00:00")
    new_order = magento_order(
        5000,
        "000005000",
        email="new@example.com",
        firstname="New",
        lastname="Buyer",
        items=[("NEW-1", "New thing", 1, "12.00")],
        grand_total="12.00",
        created_at="2024-03-01 11:00:00",
    )
    shop.orders.append(new_order)
    shop.invoices.append(
        magento_invoice(
            5001,
            "100005000",
            new_order,
            state=1,
            subtotal="12.00",
            items=[("NEW-1", "New thing", 1, "12.00", "12.00")],
            created_at="2024-03-01 11:00:00",
        )
    )
    shop.searches.clear()
    second = sync(settings, org, shop, "--page-size", "2")
    assert second.returncode == 0, second
    # It starts where the first one ended: the newest updated_at stored, per resource.
    assert second.json["since"] == {
        "orders": newest_order.replace(" ", "T") + "Z",
        "invoices": newest_invoice.replace(" ", "T") + "Z",
    }
    assert ("updated_at", newest_order, "gteq") in filters_of(shop.searches_of("orders")[0])
    assert ("updated_at", newest_invoice, "gteq") in filters_of(shop.searches_of("invoices")[1])
    boundary = sum(1 for i in shop.invoices if i["updated_at"] == newest_invoice)
    assert second.json["pulled"]["invoices"] == boundary + 2  # read again on the boundary second
    assert (second.json["invoices_created"], second.json["invoices_updated"]) == (1, boundary + 1)
    stored = invoices(server, org)
    assert len(stored) == 7
    assert stored["100000778"]["state"] == "paid"
    assert stored["100005000"]["order"]["increment_id"] == "000005000"

    explicit = sync(
        settings, org, shop, "--since", "2024-03-01T10:30:00Z", command=invoicehub_in_process
    )
    assert explicit.returncode == 0, explicit
    assert explicit.json["pulled"] == {"orders": 1, "invoices": 1}
    assert ("updated_at", "2024-03-01 10:30:00", "gteq") in filters_of(
        shop.searches_of("invoices")[-2]
    )
    everything = sync(settings, org, shop, "--full", command=invoicehub_in_process)
    assert everything.returncode == 0, everything
    assert everything.json["pulled"] == {"orders": 6, "invoices": 7}
    assert everything.json["invoices_created"] == 0
    assert stored_counts(server, org) == (6, 7)


def test_sync_stays_exact_while_the_shop_changes(
    server: LiveServer, settings: Settings, shop: FakeMagento
) -> None:
    """Records updated during a sync, before or after their page was read, are all there
    after the next sync; none is skipped by pages shifting under the walk."""
    org = create_org(settings, name="Busy shop")
    by_number = {i["increment_id"]: i for i in shop.invoices}
    read_early, read_late = by_number["100000123"], by_number["200000001"]
    assert read_early["state"] == 2
    assert read_late["state"] == 2

    def meanwhile(resource: str, criteria: dict[str, Any]) -> None:
        first_page = (
            resource == "invoices"
            and criteria.get("pageSize") == "2"
            and not any(f[0] == "entity_id" for f in filters_of(criteria))
        )
        if first_page:  # Magento cancels one invoice already read and one not read yet
            with shop.lock:
                read_early.update(state=3, updated_at="2024-04-01 09:00:00")
                read_late.update(state=3, updated_at="2024-04-01 09:00:01")

    shop.after_answer = meanwhile
    first = run_sync(
        settings,
        org=org.org_id,
        base_url=shop.base_url,
        token=TOKEN,
        page_size=2,
        show_progress=False,
    )
    shop.after_answer = None
    stored = invoices(server, org)
    assert stored["100000123"]["state"] == "paid"  # read before Magento changed it
    assert "200000001" not in stored  # left this sync's window; the next one reads it
    assert first.pulled["invoices"] == len(shop.invoices) - 1
    run_sync(
        settings,
        org=org.org_id,
        base_url=shop.base_url,
        token=TOKEN,
        page_size=2,
        show_progress=False,
    )
    stored = invoices(server, org)
    assert len(stored) == len(shop.invoices)
    assert (stored["100000123"]["state"], stored["200000001"]["state"]) == ("canceled", "canceled")


def test_progress_bar_on_a_terminal(shop: FakeMagento) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with MagentoClient(shop.base_url, TOKEN) as client:
        pulled = pull_store(
            client, since={"orders": None, "invoices": None}, page_size=2, console=console
        )
    assert pulled.counts == {"orders": 5, "invoices": 6}
    drawn = screen.getvalue()
    assert "orders" in drawn
    assert "invoices" in drawn
    assert "6/6" in drawn


def test_a_store_that_serves_smaller_pages_is_still_read_whole(shop: FakeMagento) -> None:
    shop.page_size_cap = 2
    with MagentoClient(shop.base_url, TOKEN) as client:
        pulled = pull_store(
            client, since={"orders": None, "invoices": None}, page_size=100, show_progress=False
        )
    assert pulled.counts == {"orders": 5, "invoices": 6}
    assert [len(data["items"]) for name, data in pulled.documents if name.startswith("invoices")] == [2, 2, 2]  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sync_failures_are_one_line_and_store_nothing(
    server: LiveServer, settings: Settings, shop: FakeMagento
) -> None:
    org = create_org(settings, name="Failing sync")
    broken = next(i for i in shop.invoices if i["increment_id"] == "100000777")
    del broken["increment_id"]
    base = ("magento", "sync", "--org", org.org_id, "--token", TOKEN)
    store = ("--base-url", shop.base_url)
    # name -> (command line, what stderr starts with); the first three as the installed
    # command (in parallel), the others through the typer app, one after another.
    cases = {
        "token": (
            (*base, *store, "--token", "wrong"),
            "error: Magento refused the token (401 at GET /rest/V1/orders): The consumer "
            "isn't authorized to access Magento_Sales::actions_view. Use the access token",
        ),
        "record": ((*base, *store), "error: invoices page 1 items["),
        "unreachable": (
            (*base, "--base-url", f"http://127.0.0.1:{_closed_port()}"),
            "error: cannot reach Magento at http://127.0.0.1:",
        ),
        "since": ((*base, *store, "--since", "yesterday"), "error: --since must be a date-time"),
        "both": (
            (*base, *store, "--since", "2024-01-01", "--full"),
            "error: use --since or --full, not both",
        ),
        "bad-url": (
            (*base, "--base-url", "shop.example"),
            "error: --base-url must be the store's http(s) address",
        ),
    }
    installed = ("token", "record", "unreachable")
    with ThreadPoolExecutor(max_workers=len(installed)) as pool:
        futures = {
            name: pool.submit(invoicehub, *cases[name][0], database_url=settings.database_url)
            for name in installed
        }
        results = {name: future.result() for name, future in futures.items()}
    for name, (args, _) in cases.items():
        if name not in installed:
            results[name] = invoicehub_in_process(*args, database_url=settings.database_url)
    for name, run in results.items():
        assert run.returncode == 1, run
        assert len(run.stderr.splitlines()) == 1, run
        assert run.stderr.startswith(cases[name][1]), run
    assert ": increment_id: missing" in results["record"].stderr
    assert stored_counts(server, org) == (0, 0)  # the good orders pulled with it are not kept


# ------------------------------------------------------------------ translation rules


def test_translation_rules_where_magento_is_loose() -> None:
    """Pure checks of importer.py (no database): the silent places docs/compat/magento.md
    describes."""
    from decimal import Decimal

    from invoicehub.compat.magento.importer import load_json, records_from, store_name

    assert (
        store_name("Main Website\nMain Website Store\nDefault Store View") == "Default Store View"
    )
    assert store_name("  Solo store \n") == "Solo store"
    order = magento_order(
        1, "000000001", email="Guest@Example.com", firstname=None, lastname=None,
        items=[("CFG", "Configurable shirt", 1, "20.00")], grand_total="20.00",
        created_at="2024-01-01 10:00:00",
    )  # fmt: skip
    child = dict(
        order["items"][0], item_id=99, parent_item_id=10, sku="CFG-RED", price=0, row_total=0
    )
    order["items"].append(child)
    invoice = magento_invoice(
        2, "100000001", order, state=1, subtotal="20.00",
        items=[("CFG", "Configurable shirt", 1, "19.9951", "20.00"), ("CFG-RED", "Shirt red", 0, "0", "0")],
        created_at="2024-01-01 10:00:00",
    )  # fmt: skip
    del invoice["order_currency_code"]
    invoice["tax_amount"] = "0"  # a numeric string, as some extensions write
    text = json.dumps(search_result([invoice, order]))
    records = records_from([("mixed.json", load_json(text, name="mixed.json"))])
    (imported_order,), (imported_invoice,) = records.orders, records.invoices
    assert imported_order.customer_name == "Guest Buyer"  # from the billing address
    assert [item["sku"] for item in imported_order.items] == ["CFG"]  # the child row is left out
    assert imported_invoice.currency == "USD"  # from its order in the same import
    assert [line.sku for line in imported_invoice.lines] == ["CFG"]  # the qty-0 row is left out
    assert imported_invoice.lines[0].unit_price == Decimal("20.00")  # 19.9951, to the cent
    assert imported_invoice.store is not None
    assert imported_invoice.store.name == "Main Store"

    twice = search_result([order, invoice, dict(invoice)])
    with pytest.raises(
        AppError,
        match=r"twice\.json items\[2\] \(invoice 100000001\): entity_id: 2 appears twice in this import \(also twice\.json items\[1\]",
    ):
        records_from([("twice.json", twice)])
    alone = search_result([invoice])
    with pytest.raises(AppError, match=r"order_currency_code: missing, and order 1 is not in this"):
        records_from([("alone.json", alone)])
    with pytest.raises(
        AppError, match=r"odd\.json items\[0\] \(increment_id 7\): order_id: missing: cannot tell"
    ):
        records_from([("odd.json", {"items": [{"entity_id": 1, "increment_id": "7"}]})])
    with pytest.raises(AppError, match=r"nan\.json: is not valid JSON"):
        load_json('{"items": [{"grand_total": NaN}]}', name="nan.json")
