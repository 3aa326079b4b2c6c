"""Pulling orders and invoices from a Magento 2 store's REST API, page by page.

Each resource is read in two steps, both through Magento's searchCriteria:

1. the newest ``updated_at`` at the start (one record, sorted by updated_at descending):
   this sync's cut-off;
2. every record with ``since <= updated_at <= cut-off``, ordered by entity_id, one page at a
   time, each page asking for ``entity_id > the last id seen`` (keyset paging), until a
   page holds all that still matches (its ``total_count``) or comes back empty.

Keyset paging keeps the walk exact while the shop keeps working: a record updated during
the sync leaves the window (its new updated_at is past the cut-off) without shifting the
pages after it, as ``currentPage`` offsets would, and it is read by the next sync, which
starts from the newest updated_at stored, at or before this cut-off. Records on the
boundary second are read again next time; the import is keyed by entity_id, so a record
read twice is updated, never duplicated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.orm import Session

from invoicehub.compat.magento.importer import (
    SOURCE,
    MagentoDataError,
    load_json,
    magento_time,
    parse_timestamp,
)
from invoicehub.errors import AppError, ValidationFailed
from invoicehub.invoices import service as invoices
from invoicehub.invoices.service import ListQuery
from invoicehub.orders import service as orders

RESOURCES = ("orders", "invoices")  # orders first: invoices link to them
DEFAULT_PAGE_SIZE = 100
_SCAN_PAGE = 500


class MagentoUnavailable(AppError):
    """Magento could not be reached, refused the token, or answered something unreadable."""

    status_code = 502
    error_type = "api_error"
    default_code = "magento_unavailable"


@dataclass(slots=True)
class Pulled:
    """What one sync read: the pages (named for error messages) and how far it went."""

    documents: list[tuple[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, str | None] = field(default_factory=dict)
    requests: int = 0


def rest_root(base_url: str) -> str:
    """https://shop.example -> https://shop.example/rest; a URL that already names the REST
    root (…/rest or …/rest/<store code>) is kept."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed(
            f"--base-url must be the store's http(s) address, like https://shop.example; got {base_url!r}",
            param="base_url",
        )
    segments = [s for s in parts.path.split("/") if s]
    return url if "rest" in segments else f"{url}/rest"


def search_params(
    *,
    page_size: int,
    filters: list[tuple[str, str, str]],
    sort: tuple[str, str],
    current_page: int = 1,
) -> list[tuple[str, str]]:
    """Magento's searchCriteria as query parameters; each filter is its own filter group,
    so they are ANDed."""
    params = [
        ("searchCriteria[pageSize]", str(page_size)),
        ("searchCriteria[currentPage]", str(current_page)),
    ]
    for group, (name, value, condition) in enumerate(filters):
        prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
        params += [
            (f"{prefix}[field]", name),
            (f"{prefix}[value]", value),
            (f"{prefix}[condition_type]", condition),
        ]
    params += [
        ("searchCriteria[sortOrders][0][field]", sort[0]),
        ("searchCriteria[sortOrders][0][direction]", sort[1]),
    ]
    return params


class MagentoClient:
    """GETs against a store's REST API with an integration's access token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.root = rest_root(base_url)
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token.strip()}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport or httpx.HTTPTransport(retries=2),
        )
        self.requests = 0

    def __enter__(self) -> MagentoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def search(self, resource: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        where = f"GET {urlsplit(self.root).path}/V1/{resource}"
        self.requests += 1
        try:
            response = self._http.get(f"{self.root}/V1/{resource}", params=tuple(params))
        except httpx.HTTPError as exc:
            raise MagentoUnavailable(
                f"cannot reach Magento at {self.root}: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code == 401:
            raise MagentoUnavailable(
                f"Magento refused the token (401 at {where}): "
                f"{_magento_message(response).rstrip('.')}. Use the access token of an "
                "integration allowed to read sales (Magento_Sales::sales)"
            )
        if response.status_code != 200:
            raise MagentoUnavailable(
                f"Magento answered {response.status_code} to {where}: {_magento_message(response)}"
            )
        try:
            data = load_json(response.content, name=where)
        except MagentoDataError as exc:
            raise MagentoUnavailable(f"Magento's answer is unreadable: {exc.message}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list | None):
            raise MagentoUnavailable(f"Magento's answer to {where} is not a search result")
        return data


def _magento_message(response: httpx.Response) -> str:
    """Magento's {"message": "… %1 …", "parameters": [...]} as one line of text."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip().splitlines() or [response.reason_phrase])[0][:200]
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return response.reason_phrase
    message: str = body["message"]
    parameters = body.get("parameters")
    if isinstance(parameters, list):
        for index, value in enumerate(parameters, start=1):
            message = message.replace(f"%{index}", str(value))
    elif isinstance(parameters, dict):
        for key, value in parameters.items():
            message = message.replace(f"%{key}", str(value))
    return " ".join(message.split())[:300]


def _entity_ids(items: list[Any], name: str) -> list[int]:
    ids = []
    for index, item in enumerate(items):
        value = item.get("entity_id") if isinstance(item, dict) else None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MagentoDataError(
                f"{name} items[{index}]", "entity_id", f"missing or not a number: {value!r}"
            )
        ids.append(value)
    return ids


def pull_resource(
    client: MagentoClient,
    resource: str,
    *,
    since: dt.datetime | None,
    page_size: int,
    pulled: Pulled,
    progress: Progress | None = None,
) -> None:
    """Adds every ``resource`` record updated since ``since`` to ``pulled``, page by page."""
    task: TaskID | None = progress.add_task(resource, total=None) if progress else None
    window: list[tuple[str, str, str]] = []
    if since is not None:
        window.append(("updated_at", magento_time(since), "gteq"))
    newest = client.search(
        resource, search_params(page_size=1, filters=window, sort=("updated_at", "DESC"))
    )
    newest_items = newest.get("items") or []
    cutoff = (
        newest_items[0].get("updated_at")
        if newest_items and isinstance(newest_items[0], dict)
        else None
    )
    if isinstance(cutoff, str) and cutoff.strip():
        window.append(("updated_at", cutoff.strip(), "lteq"))
    else:
        cutoff = None
    pulled.cutoffs[resource] = cutoff
    count, last_id, page = 0, 0, 0
    while newest_items:
        page += 1
        keyset = [("entity_id", str(last_id), "gt")] if last_id else []
        data = client.search(
            resource,
            search_params(page_size=page_size, filters=window + keyset, sort=("entity_id", "ASC")),
        )
        items = data.get("items") or []
        name = f"{resource} page {page}"
        if page == 1 and progress is not None and task is not None:
            total = data.get("total_count")
            progress.update(task, total=total if isinstance(total, int) else None)
        if not items:
            break
        pulled.documents.append((name, data))
        ids = _entity_ids(items, name)
        if min(ids) <= last_id:
            raise MagentoUnavailable(
                f"Magento ignored the entity_id filter on GET /V1/{resource} "
                f"(page {page} repeats ids up to {last_id}); cannot page through it safely"
            )
        last_id = max(ids)
        count += len(items)
        if progress is not None and task is not None:
            progress.advance(task, len(items))
        # total_count is what still matches (ids past the last page): this page took it all.
        # A short page alone does not say so: a store may cap pageSize below what was asked.
        remaining = data.get("total_count")
        if isinstance(remaining, int) and len(items) >= remaining:
            break
    pulled.counts[resource] = count
    if progress is not None and task is not None:
        progress.update(task, total=count, completed=count)


def pull_store(
    client: MagentoClient,
    *,
    since: Mapping[str, dt.datetime | None],
    page_size: int = DEFAULT_PAGE_SIZE,
    show_progress: bool = True,
    console: Console | None = None,
) -> Pulled:
    """Orders, then invoices, each from its own starting point. The progress bar goes to
    stderr and only draws on a terminal; it is cleared when the pull ends."""
    pulled = Pulled()
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # Off a terminal it would only leave an empty line behind.
        disable=not show_progress or not console.is_terminal,
    )
    with progress:
        for resource in RESOURCES:
            pull_resource(
                client,
                resource,
                since=since.get(resource),
                page_size=page_size,
                pulled=pulled,
                progress=progress,
            )
    pulled.requests = client.requests
    return pulled


def newest_synced(session: Session, organization_id: int) -> dict[str, dt.datetime | None]:
    """Where the next sync starts, per resource: the newest Magento updated_at stored.

    Orders keep it in their own column; invoices keep Magento's updated_at as their
    updated_at. The core has no aggregate read for either yet, so this walks the
    organization's synced records through the list services."""
    newest: dict[str, dt.datetime | None] = {"orders": None, "invoices": None}
    page = 1
    while True:
        order_page = orders.list_orders(session, organization_id, page=page, per_page=_SCAN_PAGE)
        for order in order_page.rows:
            if order.source == SOURCE and order.source_updated_at is not None:
                newest["orders"] = max(filter(None, (newest["orders"], order.source_updated_at)))
        if page * _SCAN_PAGE >= order_page.total:
            break
        page += 1
    page = 1
    while True:
        invoice_page = invoices.find_invoices(
            session,
            organization_id,
            ListQuery(page=page, per_page=_SCAN_PAGE, source=SOURCE),
        )
        for invoice in invoice_page.rows:
            newest["invoices"] = max(filter(None, (newest["invoices"], invoice.updated_at)))
        if not invoice_page.has_more:
            break
        page += 1
    return newest


def parse_since(value: str) -> dt.datetime:
    """--since: an ISO 8601 date or date-time, or Magento's "2024-01-15 14:40:00" (UTC)."""
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f'--since must be a date-time like "2024-01-15 14:40:00" or 2024-01-15T14:40:00Z; got {value!r}',
            param="since",
        ) from None
