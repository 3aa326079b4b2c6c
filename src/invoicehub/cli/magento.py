"""``invoicehub magento``: bring a Magento 2 store's orders and invoices in (seed 003).

``import`` reads files saved from Magento's REST API; ``sync`` pulls the same from a store.
Either stores everything or nothing, in one transaction, through the orders service.

cli.main imports this module to register it, so cli.main's helpers are imported inside
the commands, once both modules exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from invoicehub.errors import AppError

if TYPE_CHECKING:
    import httpx

    from invoicehub.config import Settings
    from invoicehub.orders.schemas import ImportResult

magento_app = typer.Typer(
    help="Magento 2 stores (seed 003): import or sync their orders and invoices.",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    result: ImportResult
    since: dict[str, dt.datetime | None]
    pulled: dict[str, int]
    requests: int


def run_import(settings: Settings, *, org: str, files: Sequence[Path]) -> ImportResult:
    """Reads Magento search results from ``files`` and stores them for organization ``org``.
    Raises AppError naming the file, record and field before anything is stored."""
    from invoicehub.cli.main import transaction
    from invoicehub.compat.magento.importer import SOURCE, load_json, records_from
    from invoicehub.orders.service import import_records
    from invoicehub.orgs.service import get_organization

    documents: list[tuple[str, Any]] = []
    for path in files:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise AppError(f"cannot read {path}: {exc.strerror or exc}") from exc
        documents.append((str(path), load_json(content, name=str(path))))
    records = records_from(documents)
    with transaction(settings) as session:
        organization = get_organization(session, org)
        return import_records(
            session,
            organization.id,
            source=SOURCE,
            orders=records.orders,
            invoices=records.invoices,
        )


def run_sync(
    settings: Settings,
    *,
    org: str,
    base_url: str,
    token: str,
    since: dt.datetime | None = None,
    full: bool = False,
    page_size: int = 100,
    show_progress: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> SyncOutcome:
    """Pulls what changed in the store since the last sync (or ``since``) and stores it.

    The starting point is read first and the pull happens outside any transaction, so the
    database is not held while Magento answers; everything pulled is then stored in one."""
    from invoicehub.cli.main import transaction
    from invoicehub.compat.magento.importer import SOURCE, records_from
    from invoicehub.compat.magento.sync import MagentoClient, newest_synced, pull_store
    from invoicehub.orders.service import import_records
    from invoicehub.orgs.service import get_organization

    with MagentoClient(base_url, token, transport=transport) as client:
        with transaction(settings) as session:
            organization_id = get_organization(session, org).id
            if full or since is not None:
                starts: dict[str, dt.datetime | None] = {"orders": since, "invoices": since}
            else:
                starts = newest_synced(session, organization_id)
        pulled = pull_store(client, since=starts, page_size=page_size, show_progress=show_progress)
    records = records_from(pulled.documents)
    with transaction(settings) as session:
        result = import_records(
            session,
            organization_id,
            source=SOURCE,
            orders=records.orders,
            invoices=records.invoices,
        )
    return SyncOutcome(result, starts, pulled.counts, pulled.requests)


def _iso(value: dt.datetime | None) -> str | None:
    from invoicehub.compat.wire import iso_z

    return iso_z(value)


def _summary(result: ImportResult) -> dict[str, Any]:
    return {
        "orders_created": result.orders_created,
        "orders_updated": result.orders_updated,
        "invoices_created": result.invoices_created,
        "invoices_updated": result.invoices_updated,
        "latest_update": _iso(result.latest_update),
    }


def _say(result: ImportResult) -> None:
    typer.echo(
        f"orders: {result.orders_created} new, {result.orders_updated} updated; "
        f"invoices: {result.invoices_created} new, {result.invoices_updated} updated"
    )


@magento_app.command("import")
def import_files(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Saved answers of GET /rest/V1/orders and /rest/V1/invoices "
            '({"items": [...], "total_count": N}); orders and invoices may be in any files.',
            show_default=False,
        ),
    ],
    org: Annotated[str, typer.Option("--org", help="Organization id (org_…).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Import Magento 2 orders and invoices from files: all of them, or nothing."""
    from invoicehub.cli.main import emit, fail, load_settings

    settings = load_settings()
    try:
        result = run_import(settings, org=org, files=files)
    except AppError as exc:
        fail(exc.message)
    emit(_summary(result), as_json=as_json, human=lambda: _say(result))


@magento_app.command("sync")
def sync_store(
    org: Annotated[str, typer.Option("--org", help="Organization id (org_…).")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="The store's address, e.g. https://shop.example.")
    ],
    token: Annotated[
        str, typer.Option("--token", help="A Magento integration's access token (Bearer).")
    ],
    since: Annotated[
        str | None,
        typer.Option(
            help="Pull records updated at or after this time (UTC unless it says otherwise), "
            "instead of after the newest one already synced.",
            show_default=False,
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Pull everything, whatever was synced before.")
    ] = False,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, help="Records per request.")
    ] = 100,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar (on a terminal).")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Pull orders and invoices changed since the last sync from a Magento 2 store."""
    from invoicehub.cli.main import emit, fail, load_settings
    from invoicehub.compat.magento.sync import parse_since

    settings = load_settings()
    if since is not None and full:
        fail("use --since or --full, not both")
    try:
        outcome = run_sync(
            settings,
            org=org,
            base_url=base_url,
            token=token,
            since=parse_since(since) if since is not None else None,
            full=full,
            page_size=page_size,
            show_progress=progress,
        )
    except AppError as exc:
        fail(exc.message)
    payload = {
        **_summary(outcome.result),
        "since": {name: _iso(value) for name, value in outcome.since.items()},
        "pulled": outcome.pulled,
        "requests": outcome.requests,
    }

    def human() -> None:
        starts = ", ".join(
            f"{name} since {_iso(value) or 'the beginning'}"
            for name, value in outcome.since.items()
        )
        typer.echo(
            f"pulled {outcome.pulled.get('orders', 0)} orders and "
            f"{outcome.pulled.get('invoices', 0)} invoices ({starts}) in {outcome.requests} requests"
        )
        _say(outcome.result)

    emit(payload, as_json=as_json, human=human)
