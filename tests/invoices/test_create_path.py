"""The create path written for fewer statements: an invoice created open is inserted open,
its two events come from the invoice in memory, the unique constraint guards the number;
and the SQL shapes chosen for speed (list pages, the worker's scans) keep their meaning."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy.orm import Session

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.invoices import service
from invoicehub.kit import clock
from invoicehub.models import Event, Invoice, InvoiceLineItem
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body


def create(api: httpx.Client, **overrides: object) -> dict[str, Any]:
    response = api.post("/v1/invoices", json=invoice_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def events_of(api: httpx.Client, public_id: str) -> list[dict[str, Any]]:
    page = api.get("/v1/events", params={"object_id": public_id, "limit": 100}).json()
    return list(reversed(page["data"]))


def test_open_create_answers_and_records_what_get_reads_back(api: httpx.Client) -> None:
    lines = [
        {"description": "Half", "quantity": "1.50", "unit_price": "10.05", "tax_rate": "7.50"},
        {"description": "Fee", "quantity": 2, "unit_price": "3", "type": "fee", "sku": "F-1"},
    ]
    answer = create(api, status="open", line_items=lines, metadata={"k": "v"}, notes="n")
    assert answer["status"] == "open"
    assert answer["finalized_at"] is not None
    assert [li["quantity"] for li in answer["line_items"]] == ["1.5", "2"]

    created, finalized = events_of(api, answer["id"])
    assert (created["type"], finalized["type"]) == ("invoice.created", "invoice.finalized")
    assert finalized["data"]["object"] == answer
    assert created["data"]["object"] == answer | {
        "status": "draft",
        "overdue": False,
        "finalized_at": None,
    }
    assert api.get(f"/v1/invoices/{answer['id']}").json() == answer


def test_an_open_create_past_due_is_overdue_at_once_but_its_draft_was_not(
    api: httpx.Client,
) -> None:
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    before = (clock.today() - dt.timedelta(days=2)).isoformat()
    answer = create(api, status="open", issue_date=before, due_date=yesterday)
    created, finalized = events_of(api, answer["id"])
    assert answer["overdue"] is True
    assert finalized["data"]["object"]["overdue"] is True
    assert created["data"]["object"]["overdue"] is False


@pytest.mark.parametrize("past_due", [False, True])
def test_the_draft_payload_of_an_open_create_is_the_draft_rendered_from_scratch(
    api: httpx.Client, runtime: Runtime, past_due: bool
) -> None:
    """invoice.created of an invoice created open patches the open rendering instead of
    rendering twice; any field that finalizing changes must be patched too."""
    dates = {}
    if past_due:
        dates = {
            "issue_date": (clock.today() - dt.timedelta(days=3)).isoformat(),
            "due_date": (clock.today() - dt.timedelta(days=1)).isoformat(),
        }
    answer = create(api, status="open", **dates)
    with runtime.database.session(write=False) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.public_id == answer["id"])).one()
        view = service.get_invoice(session, invoice.organization_id, answer["id"])
        rendered = service.present(view)
        assert rendered == answer
        invoice.status = "draft"
        invoice.finalized_at = None
        invoice.version = 1
        from_scratch = service.present(service.InvoiceView(invoice, view.lines))
        session.rollback()
    assert service.as_draft_payload(rendered) == from_scratch
    assert from_scratch["overdue"] is False


def test_draft_create_records_its_answer(api: httpx.Client) -> None:
    answer = create(api)
    (created,) = events_of(api, answer["id"])
    assert created["type"] == "invoice.created"
    assert created["data"]["object"] == answer
    assert answer["status"] == "draft"
    assert answer["finalized_at"] is None


def test_the_created_invoice_object_is_the_row_and_later_changes_to_it_are_saved(
    org: OrgKeys, runtime: Runtime
) -> None:
    """The create inserts with Core and attaches an object built from its values; it must
    equal the row as the database reads it back (defaults included), and a change made to
    it in the same transaction (as the seed APIs do after creating) must be written."""
    body = service.InvoiceCreate.model_validate(invoice_body(status="open"))
    with runtime.database.session(write=True) as session:
        view = service.create_invoice(session, org.internal_id, body)
        made = view.invoice
        assert made in session
        made.notes = "changed after create"
        session.commit()
        public_id, snapshot = (
            made.public_id,
            {attr: getattr(made, attr) for attr in ("id", "number", "status", "version")},
        )
        kept = (made.metadata_, made.amount_paid_minor, made.amount_refunded_minor)
    with runtime.database.session(write=False) as session:
        row = session.scalars(select(Invoice).where(Invoice.public_id == public_id)).one()
        assert row.notes == "changed after create"
        assert {attr: getattr(row, attr) for attr in snapshot} == snapshot
        assert (row.metadata_, row.amount_paid_minor, row.amount_refunded_minor) == kept
        assert row.version == 2  # created open: the draft and its finalizing


def test_line_items_built_without_events_are_written_whole_by_create_and_by_update(
    org: OrgKeys, runtime: Runtime
) -> None:
    """build_lines makes its objects with kit.db.unevented: the create writes them with a
    Core INSERT, a draft's update adds them to the session as new. Both must store every
    value the caller gave."""

    def stored(invoice_id: int) -> list[tuple[Any, ...]]:
        with runtime.database.session(write=False) as session:
            rows = session.scalars(
                select(InvoiceLineItem)
                .where(InvoiceLineItem.invoice_id == invoice_id)
                .order_by(InvoiceLineItem.position)
            )
            return [
                (
                    r.position,
                    r.description,
                    r.sku,
                    r.type,
                    r.quantity,
                    r.unit_price_minor,
                    r.tax_rate,
                    r.amount_minor,
                    r.tax_minor,
                    r.public_id[:3],
                )
                for r in rows
            ]

    body = service.InvoiceCreate.model_validate(invoice_body(status="draft"))
    with runtime.database.session(write=True) as session:
        view = service.create_invoice(session, org.internal_id, body)
        invoice_id, public_id = view.invoice.id, view.invoice.public_id
        session.commit()
    assert stored(invoice_id) == [
        (0, "Website Development", None, "service", Decimal(1), 500000, 10, 500000, 50000, "li_"),
        (1, "Hosting Setup", None, "fee", Decimal(1), 50000, 0, 50000, 0, "li_"),
    ]
    change = service.InvoiceUpdate.model_validate(
        {
            "line_items": [
                {
                    "description": "Audit",
                    "sku": "AUD-1",
                    "type": "fee",
                    "quantity": "2.5",
                    "unit_price": "10.01",
                    "tax_rate": "12",
                }
            ]
        }
    )
    with runtime.database.session(write=True) as session:
        service.update_invoice(session, org.internal_id, public_id, change)
        session.commit()
    assert stored(invoice_id) == [
        (0, "Audit", "AUD-1", "fee", Decimal("2.5"), 1001, 12, 2503, 300, "li_")
    ]


def test_a_taken_number_writes_nothing_and_uses_no_sequence_value(
    api: httpx.Client, org: OrgKeys, runtime: Runtime
) -> None:
    first = create(api, number="HAND-1")
    generated = create(api)["number"]

    def counts() -> tuple[int, int]:
        with runtime.database.session(write=False) as session:
            invoices = session.scalar(
                select(func.count()).where(Invoice.organization_id == org.internal_id)
            )
            events = session.scalar(
                select(func.count()).where(Event.organization_id == org.internal_id)
            )
            return int(invoices or 0), int(events or 0)

    before = counts()
    for status in ("draft", "open"):
        taken = api.post("/v1/invoices", json=invoice_body(number="HAND-1", status=status))
        assert taken.status_code == 409, taken.text
        assert taken.json()["error"]["code"] == "invoice_number_taken"
        assert taken.json()["error"]["param"] == "number"
    assert counts() == before
    assert first["number"] == "HAND-1"
    year, seq = generated.split("-")[1], int(generated.split("-")[2])
    assert create(api)["number"] == f"INV-{year}-{seq + 1:04d}"


def test_pages_of_an_organization_behind_a_newer_tenant(
    server: LiveServer, api: httpx.Client, settings: Settings
) -> None:
    """The page's ids come from a subquery (and, with filters, below the organization's
    newest id): the pages are the same as a plain newest-first walk."""
    mine = [create(api, status="open" if i % 3 else "draft")["id"] for i in range(7)]
    newer = create_org(settings, name="Newer tenant")
    with server.client(newer.secret_key) as other:
        for _ in range(5):
            create_via = other.post("/v1/invoices", json=invoice_body())
            assert create_via.status_code == 201
    newest_first = list(reversed(mine))
    opened = [i for n, i in enumerate(mine) if n % 3][::-1]

    def walk(**params: object) -> list[str]:
        seen: list[str] = []
        query: dict[str, object] = {"limit": 2, **params}
        while True:
            page = api.get("/v1/invoices", params=query).json()
            seen += [row["id"] for row in page["data"]]
            if not page["has_more"]:
                return seen
            query["starting_after"] = page["next_starting_after"]

    assert walk() == newest_first
    assert walk(status="open") == opened
    back = api.get("/v1/invoices", params={"limit": 2, "ending_before": newest_first[4]}).json()
    assert [row["id"] for row in back["data"]] == newest_first[2:4]
    paged = api.get("/v1/invoices", params={"page": 2, "per_page": 3}).json()
    assert [row["id"] for row in paged["data"]] == newest_first[3:6]
    assert paged["total"] == 7
    filtered = api.get("/v1/invoices", params={"page": 1, "per_page": 10, "status": "draft"})
    assert [row["id"] for row in filtered.json()["data"]] == [
        i for n, i in enumerate(mine) if not n % 3
    ][::-1]


def _job_scan(engine: Engine, job: Any) -> tuple[str, Any]:
    """The job's UPDATE, as sent (run in a transaction that is rolled back)."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE invoices"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as connection, Session(connection) as session:
            job(session)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(
    ("job", "index"),
    [
        (service.expire_due_invoices, "ix_invoices_expiry_candidates"),
        (service.mark_overdue_invoices, "ix_invoices_overdue_candidates"),
    ],
)
def test_the_worker_scans_can_use_their_partial_indexes(
    runtime: Runtime, job: Any, index: str
) -> None:
    """A partial index serves a query only when the query states its predicate with the
    same constants; a bound parameter would hide it and the job would read the table."""
    engine = runtime.database.engine
    statement, params = _job_scan(engine, job)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                row[-1]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            )
        else:
            # The test tables are small, so a sequential scan would win on cost; forbid it to
            # see whether the index can serve the query at all.
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(
                row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", params)
            )
        connection.rollback()
    assert index in plan, plan


def test_the_worker_jobs_still_move_what_is_due(
    api: httpx.Client, org: OrgKeys, runtime: Runtime
) -> None:
    expiring = create(api, status="open", expires_at=_soon())
    paid_some = create(api, status="open", expires_at=_soon())
    assert (
        api.post(f"/v1/invoices/{paid_some['id']}/payments", json={"amount": "1.00"}).status_code
        == 200
    )
    overdue = create(api, status="open")
    with runtime.database.session(write=True) as session:
        past = clock.utcnow() - dt.timedelta(seconds=1)
        session.execute(
            update(Invoice)
            .where(Invoice.public_id.in_([expiring["id"], paid_some["id"]]))
            .values(expires_at=past)
        )
        session.execute(
            update(Invoice)
            .where(Invoice.public_id == overdue["id"])
            .values(
                issue_date=clock.today() - dt.timedelta(days=3),
                due_date=clock.today() - dt.timedelta(days=1),
            )
        )
        session.commit()
    with runtime.database.session(write=True) as session:
        expired = {v.invoice.public_id for v in service.expire_due_invoices(session)}
        marked = {v.invoice.public_id for v in service.mark_overdue_invoices(session)}
        session.commit()
    assert expiring["id"] in expired
    assert paid_some["id"] not in expired
    assert overdue["id"] in marked
    assert api.get(f"/v1/invoices/{expiring['id']}").json()["status"] == "expired"
    assert api.get(f"/v1/invoices/{overdue['id']}").json()["overdue"] is True


def _soon() -> str:
    return (clock.utcnow() + dt.timedelta(hours=1)).isoformat()
