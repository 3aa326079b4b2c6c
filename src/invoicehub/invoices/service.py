"""Invoice rules: totals, numbering, the state machine's moves and their events.

Services take the session first, never commit (the request, task or CLI command is the
transaction), and raise ``AppError``s that name what is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import case
from sqlalchemy.orm import Session

from invoicehub.auth import service as auth_service
from invoicehub.errors import Conflict, NotFound, ValidationFailed
from invoicehub.events.service import record_events
from invoicehub.invoices import repository, states
from invoicehub.invoices.numbering import format_number, period_of
from invoicehub.invoices.repository import InvoiceFilters
from invoicehub.invoices.schemas import (
    MONEY_FIELDS,
    CustomerIn,
    InvoiceCreate,
    InvoiceUpdate,
    LineItemIn,
    invoice_json,
)
from invoicehub.invoices.states import InvoiceStatus
from invoicehub.kit import clock
from invoicehub.kit.db import unevented
from invoicehub.kit.ids import new_public_id
from invoicehub.kit.money import (
    MAX_MINOR,
    Currency,
    MoneyError,
    currency,
    format_amount,
    from_minor,
    line_amount_minor,
    line_tax_minor,
    to_minor,
)
from invoicehub.kit.phones import PhoneError, to_e164
from invoicehub.models import Invoice, InvoiceLineItem, Organization, Payment
from invoicehub.orgs import repository as orgs_repository
from invoicehub.webhooks import service as webhooks

_T = TypeVar("_T")

# How many generated numbers to skip past when callers took them by hand.
_MAX_NUMBER_SKIPS = 1000


@dataclass(slots=True)
class InvoiceView:
    invoice: Invoice
    lines: list[InvoiceLineItem] | None
    # The native JSON already made of it (for an event), and the invoice's version and
    # updated_at then: ``present`` reuses it only while the invoice has not moved since.
    _rendered: dict[str, Any] | None = None
    _rendered_at: tuple[int, dt.datetime] | None = None

    def remember(self, rendered: dict[str, Any]) -> None:
        self._rendered = rendered
        self._rendered_at = (self.invoice.version, self.invoice.updated_at)

    def rendered(self) -> dict[str, Any] | None:
        if self._rendered_at != (self.invoice.version, self.invoice.updated_at):
            return None
        return self._rendered


@dataclass(slots=True)
class Totals:
    subtotal: int
    tax: int
    discount: int
    shipping: int

    @property
    def total(self) -> int:
        return self.subtotal + self.tax + self.shipping - self.discount


# ---------------------------------------------------------------- totals and inputs


def _money(value: Decimal, cur: Currency, param: str) -> int:
    try:
        return to_minor(value, cur)
    except MoneyError as exc:
        raise ValidationFailed(f"{param}: {exc}", param=param, code="invalid_amount") from exc


def _currency(code: str, param: str = "currency") -> Currency:
    try:
        return currency(code)
    except MoneyError as exc:
        raise ValidationFailed(str(exc), param=param, code="invalid_currency") from exc


def build_lines(
    items: Sequence[LineItemIn], cur: Currency, *, now: dt.datetime
) -> list[InvoiceLineItem]:
    lines = []
    for position, item in enumerate(items):
        unit_minor = _money(item.unit_price, cur, f"line_items.{position}.unit_price")
        amount = line_amount_minor(item.quantity, unit_minor)
        tax = line_tax_minor(amount, item.tax_rate)
        if amount >= MAX_MINOR:
            raise ValidationFailed(
                f"line_items.{position}: quantity x unit_price is larger than invoicehub accepts",
                param=f"line_items.{position}.quantity",
                code="invalid_amount",
            )
        lines.append(
            unevented(
                InvoiceLineItem,
                {
                    "public_id": new_public_id("li"),
                    "position": position,
                    "description": item.description,
                    "sku": item.sku,
                    "type": item.type,
                    "quantity": item.quantity,
                    "unit_price_minor": unit_minor,
                    "tax_rate": item.tax_rate,
                    "amount_minor": amount,
                    "tax_minor": tax,
                    "created_at": now,
                },
            )
        )
    return lines


def compute_totals(lines: Sequence[InvoiceLineItem], *, discount: int, shipping: int) -> Totals:
    totals = Totals(
        subtotal=sum(line.amount_minor for line in lines),
        tax=sum(line.tax_minor for line in lines),
        discount=discount,
        shipping=shipping,
    )
    if discount > totals.subtotal + totals.tax + shipping:
        raise ValidationFailed(
            "discount is larger than the invoice's subtotal, tax and shipping together",
            param="discount",
            code="discount_too_large",
        )
    if totals.total >= MAX_MINOR:
        raise ValidationFailed(
            "the invoice total is larger than invoicehub accepts",
            param="line_items",
            code="invalid_amount",
        )
    return totals


def _customer_values(customer: CustomerIn | None, phone_region: str) -> dict[str, Any]:
    if customer is None:
        return {
            "customer_name": None,
            "customer_email": None,
            "customer_phone": None,
            "customer_telegram_user_id": None,
            "customer_locale": None,
        }
    phone = None
    if customer.phone:
        try:
            phone = to_e164(customer.phone, default_region=phone_region)
        except PhoneError as exc:
            raise ValidationFailed(str(exc), param="customer.phone", code="invalid_phone") from exc
    return {
        "customer_name": customer.name or None,
        "customer_email": str(customer.email).lower() if customer.email else None,
        "customer_phone": phone,
        "customer_telegram_user_id": str(customer.telegram_user_id)
        if customer.telegram_user_id
        else None,
        "customer_locale": customer.locale.replace("_", "-").lower()[:2]
        if customer.locale
        else None,
    }


def _organization(session: Session, organization_id: int) -> Organization:
    """The organization's settings, read only: the caller's, as its key lookup read them,
    or else loaded (the seed APIs' callbacks and the worker authenticate no key)."""
    organization = auth_service.caller_organization(
        session, organization_id
    ) or orgs_repository.get(session, organization_id)
    if organization is None:  # the key was valid a moment ago; the org was deleted since
        raise NotFound("organization not found", param=None)
    return organization


def _check_expiry(expires_at: dt.datetime | None, now: dt.datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed(
            "expires_at must be in the future", param="expires_at", code="invalid_expires_at"
        )


# ---------------------------------------------------------------- numbering


def _numbered(
    session: Session,
    organization: Organization,
    requested: str | None,
    on: dt.date,
    claim: Callable[[str], _T | None],
    *,
    pattern: str | None = None,
) -> _T:
    """Offers ``claim`` the requested number, or else the organization's next sequence numbers
    until it takes one; ``claim`` answers None for a number that is taken."""
    if requested is not None:
        claimed = claim(requested)
        if claimed is None:  # taken, also by a concurrent request that committed first
            raise Conflict(
                f"invoice number {requested} is already used in this organization",
                param="number",
                code="invoice_number_taken",
            )
        return claimed
    pattern = pattern or organization.invoice_number_pattern
    period = period_of(pattern, on)
    for _ in range(_MAX_NUMBER_SKIPS):
        number = format_number(
            pattern, on, repository.next_sequence_value(session, organization.id, period)
        )
        claimed = claim(number)
        if claimed is not None:
            return claimed
    raise Conflict(
        "could not find a free invoice number; check the number pattern",
        code="invoice_number_exhausted",
    )


def _insert_numbered(
    session: Session,
    organization: Organization,
    values: dict[str, Any],
    requested: str | None,
    on: dt.date,
    *,
    pattern: str | None = None,
) -> Invoice:
    """Writes the invoice under the requested number or the next free one of the
    organization's sequence; the unique constraint, not a SELECT before, says it is free."""
    return _numbered(
        session,
        organization,
        requested,
        on,
        lambda number: repository.insert_invoice(session, {**values, "number": number}),
        pattern=pattern,
    )


def _assign_number(
    session: Session, organization: Organization, requested: str | None, on: dt.date
) -> str:
    """A free number for an existing invoice (a draft being renumbered)."""
    return _numbered(
        session,
        organization,
        requested,
        on,
        lambda number: (
            None if repository.number_exists(session, organization.id, number) else number
        ),
    )


# ---------------------------------------------------------------- reads


def present(view: InvoiceView) -> dict[str, Any]:
    rendered = view.rendered()
    return rendered if rendered is not None else _render(view.invoice, view.lines)


def _render(invoice: Invoice, lines: list[InvoiceLineItem] | None) -> dict[str, Any]:
    return invoice_json(invoice, lines, today=clock.today())


def get_invoice(
    session: Session, organization_id: int, public_id: str, *, with_lines: bool = True
) -> InvoiceView:
    invoice = repository.get(session, organization_id, public_id)
    if invoice is None:
        raise NotFound(f"no invoice {public_id}", param="id", code="invoice_not_found")
    lines = repository.lines_of(session, [invoice.id])[invoice.id] if with_lines else None
    return InvoiceView(invoice, lines)


def read_invoice(session: Session, organization_id: int, public_id: str) -> dict[str, Any]:
    """The native JSON of one invoice, read as records: for answers that only show it."""
    record = repository.get_record(session, organization_id, public_id)
    if record is None:
        raise NotFound(f"no invoice {public_id}", param="id", code="invoice_not_found")
    lines = repository.line_records_of(session, [record.id])[record.id]
    return invoice_json(record, lines, today=clock.today())


def get_invoice_by_internal_id(
    session: Session, organization_id: int, invoice_id: int
) -> InvoiceView:
    """For the seed APIs that number invoices with integers (ApiPay, the Magento hub)."""
    public_id = repository.public_id_of(session, organization_id, invoice_id)
    if public_id is None:
        raise NotFound(f"no invoice {invoice_id}", param="id", code="invoice_not_found")
    return get_invoice(session, organization_id, public_id)


@dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    page: int | None = None
    per_page: int | None = None
    include_lines: bool = False
    statuses: tuple[str, ...] = ()
    customer_email: str | None = None
    external_order_id: str | None = None
    text: str | None = None
    created_gte: dt.datetime | None = None
    created_lt: dt.datetime | None = None
    due_gte: dt.date | None = None
    due_lte: dt.date | None = None
    source: str | None = None
    order_id: int | None = None
    invoiced_gte: dt.datetime | None = None
    invoiced_lt: dt.datetime | None = None
    # The derived states: True/False keeps only invoices that are/are not viewed (viewed_at
    # set) or overdue (``is_overdue``); None does not filter.
    viewed: bool | None = None
    overdue: bool | None = None


@dataclass(slots=True)
class InvoicePage:
    """One page of invoices as records (read-only rows with the Invoice's attribute names),
    for the native API and the seed APIs to shape."""

    rows: list[repository.InvoiceRecord]
    lines: dict[int, list[repository.LineRecord]]
    has_more: bool
    total: int | None = None
    per_page: int | None = None
    backwards: bool = False


def find_invoices(session: Session, organization_id: int, query: ListQuery) -> InvoicePage:
    unknown = [s for s in query.statuses if s not in states.FILTERABLE]
    if unknown:
        raise ValidationFailed(
            f"unknown status {unknown[0]!r}; use one of {', '.join(states.FILTERABLE)}",
            param="status",
        )
    if query.page is not None and (query.starting_after or query.ending_before):
        raise ValidationFailed(
            "page cannot be combined with starting_after or ending_before", param="page"
        )
    if query.starting_after and query.ending_before:
        raise ValidationFailed(
            "use starting_after or ending_before, not both", param="ending_before"
        )
    filters = InvoiceFilters(
        statuses=query.statuses,
        customer_email=query.customer_email,
        external_order_id=query.external_order_id,
        text=query.text,
        created_gte=query.created_gte,
        created_lt=query.created_lt,
        due_gte=query.due_gte,
        due_lte=query.due_lte,
        today=clock.today(),
        source=query.source,
        order_id=query.order_id,
        invoiced_gte=query.invoiced_gte,
        invoiced_lt=query.invoiced_lt,
        viewed=query.viewed,
        overdue=query.overdue,
    )
    if query.page is not None:
        per_page = query.per_page or query.limit
        rows = repository.list_page(
            session,
            organization_id,
            filters,
            limit=per_page + 1,
            offset=(query.page - 1) * per_page,
        )
        has_more = len(rows) > per_page
        rows = rows[:per_page]
        lines = _line_records(session, rows, query)
        total = repository.count(session, organization_id, filters)
        return InvoicePage(rows, lines, has_more, total=total, per_page=per_page)
    before_id = _cursor(session, organization_id, query.starting_after, "starting_after")
    after_id = _cursor(session, organization_id, query.ending_before, "ending_before")
    rows = repository.list_page(
        session,
        organization_id,
        filters,
        limit=query.limit + 1,
        before_id=before_id,
        after_id=after_id,
    )
    has_more = len(rows) > query.limit
    if after_id is not None:
        rows = rows[-query.limit :] if has_more else rows
    else:
        rows = rows[: query.limit]
    lines = _line_records(session, rows, query)
    return InvoicePage(rows, lines, has_more, per_page=query.limit, backwards=after_id is not None)


def _line_records(
    session: Session, rows: list[repository.InvoiceRecord], query: ListQuery
) -> dict[int, list[repository.LineRecord]]:
    if not query.include_lines:
        return {}
    return repository.line_records_of(session, [r.id for r in rows])


def list_invoices(session: Session, organization_id: int, query: ListQuery) -> dict[str, Any]:
    """A page in the native JSON (the ``InvoiceList`` schema)."""
    page = find_invoices(session, organization_id, query)
    today = clock.today()
    data = [
        invoice_json(r, page.lines.get(r.id) if query.include_lines else None, today=today)
        for r in page.rows
    ]
    numbered = query.page is not None  # page/per_page paging; else cursor paging
    more = page.has_more or page.backwards
    return {
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_starting_after": page.rows[-1].public_id
        if page.rows and more and not numbered
        else None,
        "page": query.page,
        "per_page": page.per_page if numbered else None,
        "total": page.total,
    }


def _cursor(
    session: Session, organization_id: int, public_id: str | None, param: str
) -> int | None:
    if public_id is None:
        return None
    internal = repository.get_internal_id(session, organization_id, public_id)
    if internal is None:
        raise ValidationFailed(f"no invoice {public_id} to page from", param=param)
    return internal


def list_payments(session: Session, organization_id: int, public_id: str) -> list[Payment]:
    view = get_invoice(session, organization_id, public_id, with_lines=False)
    return repository.payments_of(session, organization_id, view.invoice.id)


# ---------------------------------------------------------------- create, update, duplicate


def create_invoice(
    session: Session,
    organization_id: int,
    data: InvoiceCreate,
    *,
    phone_region: str = "KZ",
    number_pattern: str | None = None,
) -> InvoiceView:
    """Creates a draft (or an open invoice, with ``data.status``). ``number_pattern`` lets a
    seed API number in its own format (004: INV-YYYY-NNN); the organization's sequence is
    shared, so numbers never repeat whichever API made them."""
    organization = _organization(session, organization_id)
    now = clock.utcnow()
    cur = _currency(data.currency or organization.default_currency)
    lines = build_lines(data.line_items, cur, now=now)
    totals = compute_totals(
        lines,
        discount=_money(data.discount, cur, "discount"),
        shipping=_money(data.shipping, cur, "shipping"),
    )
    issue_date = data.issue_date or now.date()
    due_date = data.due_date or issue_date + dt.timedelta(days=organization.default_due_days)
    if due_date < issue_date:
        raise ValidationFailed(
            "due_date must not be before issue_date", param="due_date", code="invalid_due_date"
        )
    _check_expiry(data.expires_at, now)
    opening = data.status == "open"
    values: dict[str, Any] = dict(
        public_id=new_public_id("inv"),
        organization_id=organization.id,
        # An invoice created open is written open, as the draft-then-finalize it stands for
        # would have left it (two writes: version 2), with both events below.
        status=InvoiceStatus.OPEN.value if opening else InvoiceStatus.DRAFT.value,
        currency=cur.code,
        **_customer_values(data.customer, phone_region),
        title=data.title,
        description=data.description,
        notes=data.notes,
        payment_terms=data.payment_terms,
        external_order_id=data.external_order_id,
        metadata_=dict(data.metadata),
        webhook_endpoint_id=(
            webhooks.require_endpoint_for_invoice(session, organization.id, data.webhook_id)
            if data.webhook_id
            else None
        ),
        subtotal_minor=totals.subtotal,
        discount_minor=totals.discount,
        shipping_minor=totals.shipping,
        tax_minor=totals.tax,
        total_minor=totals.total,
        amount_paid_minor=0,
        amount_refunded_minor=0,
        issue_date=issue_date,
        due_date=due_date,
        expires_at=data.expires_at,
        version=2 if opening else 1,
        created_at=now,
        updated_at=now,
        finalized_at=now if opening else None,
    )
    invoice = _insert_numbered(
        session, organization, values, data.number, issue_date, pattern=number_pattern
    )
    repository.insert_lines(session, invoice.id, lines)
    view = InvoiceView(invoice, lines)
    # Both events come from the invoice in memory, rendered once: invoice.created shows it
    # as the draft it was born as, invoice.finalized as it is now, which is also the answer.
    current = present(view)
    if opening:
        _events(
            session,
            view,
            [
                ("invoice.created", {"object": as_draft_payload(current)}),
                ("invoice.finalized", {"object": current}),
            ],
        )
    else:
        _events(session, view, [("invoice.created", {"object": current})])
    view.remember(current)
    return view


def as_draft_payload(rendered: dict[str, Any]) -> dict[str, Any]:
    """The native JSON of a just-finalized invoice as it was a moment before, as a draft (for
    invoice.created of an invoice created open): finalizing changes only these fields, and a
    draft is never overdue. tests/invoices/test_create_path.py checks it against a draft
    rendered from scratch."""
    return {**rendered, "status": InvoiceStatus.DRAFT.value, "finalized_at": None, "overdue": False}


def update_invoice(
    session: Session,
    organization_id: int,
    public_id: str,
    data: InvoiceUpdate,
    *,
    phone_region: str = "KZ",
) -> InvoiceView:
    given = data.model_fields_set
    touches_money = bool(given & MONEY_FIELDS)
    allowed = states.EDITABLE_MONEY if touches_money else states.EDITABLE_DETAILS
    now = clock.utcnow()
    # Take the row (and its lock) first; everything below works on a row no one else moves.
    invoice = repository.transition(
        session, organization_id, public_id, from_statuses=allowed, values={}, now=now
    )
    if invoice is None:
        current = _require(session, organization_id, public_id)
        what = (
            "money fields (currency, line_items, discount, shipping, number)"
            if touches_money
            else "it"
        )
        raise Conflict(
            f"invoice {public_id} is {current.status}; {what} can be changed only while {states.names(allowed)}",
            code="invoice_not_editable",
        )
    values: dict[str, Any] = {}
    for name in ("title", "description", "notes", "payment_terms", "external_order_id"):
        if name in given:
            values[name] = getattr(data, name)
    if "metadata" in given:
        values["metadata_"] = dict(data.metadata or {})
    if "webhook_id" in given:
        values["webhook_endpoint_id"] = (
            webhooks.require_endpoint_for_invoice(session, organization_id, data.webhook_id)
            if data.webhook_id
            else None
        )
    if "customer" in given:
        values.update(_customer_values(data.customer, phone_region))
    if "expires_at" in given:
        _check_expiry(data.expires_at, now)
        values["expires_at"] = data.expires_at
    if "due_date" in given:
        if data.due_date is None:
            raise ValidationFailed(
                "due_date cannot be removed", param="due_date", code="invalid_due_date"
            )
        if data.due_date < invoice.issue_date:
            raise ValidationFailed(
                "due_date must not be before issue_date", param="due_date", code="invalid_due_date"
            )
        values["due_date"] = data.due_date
        if data.due_date >= clock.today():
            values["overdue_at"] = None  # re-dated into the future: no longer overdue
    lines: list[InvoiceLineItem] | None = None
    if touches_money:
        cur = _currency(data.currency) if data.currency else currency(invoice.currency)
        if data.line_items is not None:
            lines = build_lines(data.line_items, cur, now=now)
        else:
            lines = repository.lines_of(session, [invoice.id])[invoice.id]
            if cur.code != invoice.currency:
                lines = _reprice_lines(lines, currency(invoice.currency), cur)
        discount = (
            _money(data.discount, cur, "discount")
            if data.discount is not None
            else _rescale(invoice.discount_minor, invoice.currency, cur, "discount")
        )
        shipping = (
            _money(data.shipping, cur, "shipping")
            if data.shipping is not None
            else _rescale(invoice.shipping_minor, invoice.currency, cur, "shipping")
        )
        totals = compute_totals(lines, discount=discount, shipping=shipping)
        values.update(
            currency=cur.code,
            subtotal_minor=totals.subtotal,
            discount_minor=totals.discount,
            shipping_minor=totals.shipping,
            tax_minor=totals.tax,
            total_minor=totals.total,
        )
        if data.line_items is not None or cur.code != invoice.currency:
            repository.replace_lines(session, invoice.id, lines)
        if "number" in given and data.number and data.number != invoice.number:
            organization = _organization(session, organization_id)
            values["number"] = _assign_number(
                session, organization, data.number, invoice.issue_date
            )
    if values:
        invoice = repository.transition(
            session, organization_id, public_id, from_statuses=allowed, values=values, now=now
        )
        assert invoice is not None  # we hold the row since the first UPDATE
    view = InvoiceView(
        invoice,
        lines if lines is not None else repository.lines_of(session, [invoice.id])[invoice.id],
    )
    _event(session, view, "invoice.updated", extra={"changed": sorted(given)})
    return view


def _rescale(minor: int, old_code: str, new: Currency, param: str) -> int:
    """An amount kept as it reads when the currency changes; refuses to drop decimals."""
    old = currency(old_code)
    return minor if old.exponent == new.exponent else _money(from_minor(minor, old), new, param)


def _reprice_lines(
    lines: list[InvoiceLineItem], old: Currency, new: Currency
) -> list[InvoiceLineItem]:
    """The same lines read in a new currency (10.50 USD becomes 10.50 EUR)."""
    items = [
        LineItemIn(
            description=line.description,
            sku=line.sku,
            type=line.type,
            quantity=line.quantity,
            unit_price=from_minor(line.unit_price_minor, old),
            tax_rate=line.tax_rate,
        )
        for line in lines
    ]
    return build_lines(items, new, now=clock.utcnow())


def duplicate_invoice(
    session: Session, organization_id: int, public_id: str, *, status: str = "draft"
) -> InvoiceView:
    source = get_invoice(session, organization_id, public_id)
    src = source.invoice
    cur = currency(src.currency)
    data = InvoiceCreate(
        currency=src.currency,
        customer=CustomerIn(
            name=src.customer_name,
            email=src.customer_email,
            phone=src.customer_phone,
            telegram_user_id=int(src.customer_telegram_user_id)
            if src.customer_telegram_user_id
            else None,
            locale=src.customer_locale,
        ),
        line_items=[
            LineItemIn(
                description=line.description,
                sku=line.sku,
                type=line.type,
                quantity=line.quantity,
                unit_price=Decimal(format_amount(line.unit_price_minor, cur)),
                tax_rate=line.tax_rate,
            )
            for line in source.lines or []
        ],
        discount=Decimal(format_amount(src.discount_minor, cur)),
        shipping=Decimal(format_amount(src.shipping_minor, cur)),
        title=src.title,
        description=src.description,
        notes=src.notes,
        payment_terms=src.payment_terms,
        external_order_id=src.external_order_id,
        metadata=dict(src.metadata_),
        webhook_id=src.webhook_endpoint_id,
        status=status,
    )
    return create_invoice(session, organization_id, data)


# ---------------------------------------------------------------- the state machine's moves


def _require(session: Session, organization_id: int, public_id: str) -> Invoice:
    invoice = repository.get(session, organization_id, public_id)
    if invoice is None:
        raise NotFound(f"no invoice {public_id}", param="id", code="invoice_not_found")
    return invoice


def _event(
    session: Session,
    view: InvoiceView,
    type_: str,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    data: dict[str, Any] = {"object": present(view)}
    if extra:
        data.update(extra)
    _events(session, view, [(type_, data)])


def _events(session: Session, view: InvoiceView, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Records ``(type, data)`` events about the invoice, in order, with one fan-out."""
    record_events(
        session,
        organization_id=view.invoice.organization_id,
        object_type="invoice",
        object_id=view.invoice.public_id,
        events=events,
        route_to_endpoint=view.invoice.webhook_endpoint_id,
    )


def _moved(session: Session, invoice: Invoice) -> InvoiceView:
    return InvoiceView(invoice, repository.lines_of(session, [invoice.id])[invoice.id])


def finalize_invoice(session: Session, organization_id: int, public_id: str) -> InvoiceView:
    now = clock.utcnow()
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=states.FINALIZABLE,
        values={"status": InvoiceStatus.OPEN.value, "finalized_at": now},
        now=now,
    )
    if invoice is None:
        current = _require(session, organization_id, public_id)
        raise Conflict(
            f"invoice {public_id} is {current.status}; only a draft can be finalized",
            code="invoice_not_finalizable",
        )
    view = _moved(session, invoice)
    _event(session, view, "invoice.finalized")
    return view


def cancel_invoice(session: Session, organization_id: int, public_id: str) -> InvoiceView:
    now = clock.utcnow()
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=states.CANCELLABLE,
        extra_where=[Invoice.amount_paid_minor == 0],
        values={"status": InvoiceStatus.CANCELLED.value, "cancelled_at": now},
        now=now,
    )
    if invoice is None:
        current = _require(session, organization_id, public_id)
        if current.status in states.CANCELLABLE:
            raise Conflict(
                f"invoice {public_id} has payments; refund them instead of cancelling",
                code="invoice_has_payments",
            )
        raise Conflict(
            f"invoice {public_id} is {current.status}; only {states.names(states.CANCELLABLE)} invoices can be cancelled",
            code="invoice_not_cancellable",
        )
    view = _moved(session, invoice)
    _event(session, view, "invoice.cancelled")
    return view


def mark_viewed(session: Session, organization_id: int, public_id: str) -> InvoiceView | None:
    """Records the first view by the customer; later views change nothing (returns None)."""
    now = clock.utcnow()
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=states.VIEWABLE,
        extra_where=[Invoice.viewed_at.is_(None)],
        values={"viewed_at": now},
        now=now,
    )
    if invoice is None:
        _require(session, organization_id, public_id)
        return None
    view = _moved(session, invoice)
    _event(session, view, "invoice.viewed")
    return view


def _payment_amount(current: Invoice, amount: Decimal | None, accepted: Sequence[str]) -> int:
    """The amount to pay (what is due when omitted); a state conflict is reported first."""
    if current.status not in accepted:
        raise Conflict(
            f"invoice {current.public_id} is {current.status}; payments are accepted only while {' or '.join(accepted)}",
            code="invoice_not_payable",
        )
    cur = currency(current.currency)
    due = current.total_minor - current.amount_paid_minor
    if amount is None:
        return due
    minor = _money(amount, cur, "amount")
    if minor <= 0:
        raise ValidationFailed(
            "amount must be greater than 0", param="amount", code="invalid_amount"
        )
    return minor


def _explain_payment_refusal(
    session: Session, organization_id: int, public_id: str, minor: int, from_statuses: Sequence[str]
) -> Exception:
    current = _require(session, organization_id, public_id)
    cur = currency(current.currency)
    due = current.total_minor - current.amount_paid_minor
    if current.status not in from_statuses:
        return Conflict(
            f"invoice {public_id} is {current.status}; payments are accepted only while {' or '.join(from_statuses)}",
            code="invoice_not_payable",
        )
    if minor > due:
        return ValidationFailed(
            f"amount {format_amount(minor, cur)} is more than the {format_amount(due, cur)} {cur.code} due",
            param="amount",
            code="amount_exceeds_due",
        )
    return ValidationFailed(
        f"this organization does not accept partial payments; pay the full {format_amount(due, cur)} {cur.code} due",
        param="amount",
        code="partial_payment_not_allowed",
    )


def record_payment(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount: Decimal | None = None,
    provider: str = "manual",
    reference: str | None = None,
) -> InvoiceView:
    """A payment received outside invoicehub (cash, bank transfer): full or partial."""
    organization = _organization(session, organization_id)
    current = _require(session, organization_id, public_id)
    minor = _payment_amount(current, amount, states.PAYABLE)
    now = clock.utcnow()
    invoice = repository.apply_payment(
        session,
        organization_id,
        public_id,
        amount_minor=minor,
        from_statuses=states.PAYABLE,
        require_full=not organization.allow_partial_payments,
        now=now,
    )
    if invoice is None or minor <= 0:
        raise _explain_payment_refusal(session, organization_id, public_id, minor, states.PAYABLE)
    payment = _add_money_row(
        session,
        invoice,
        kind="payment",
        status="succeeded",
        amount_minor=minor,
        provider=provider,
        reference=reference,
        at=now,
    )
    view = _moved(session, invoice)
    paid = invoice.status == InvoiceStatus.PAID
    _event(
        session,
        view,
        "invoice.paid" if paid else "invoice.partially_paid",
        extra={"payment": _payment_data(payment)},
    )
    return view


def refund_invoice(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount: Decimal | None = None,
    reason: str | None = None,
    provider: str = "manual",
    reference: str | None = None,
) -> InvoiceView:
    current = _require(session, organization_id, public_id)
    cur = currency(current.currency)
    refundable = current.amount_paid_minor - current.amount_refunded_minor
    minor = refundable if amount is None else _money(amount, cur, "amount")
    if amount is not None and minor <= 0:
        raise ValidationFailed(
            "amount must be greater than 0", param="amount", code="invalid_amount"
        )
    now = clock.utcnow()
    invoice = None
    if minor > 0:
        invoice = repository.apply_refund(
            session,
            organization_id,
            public_id,
            amount_minor=minor,
            from_statuses=states.REFUNDABLE,
            now=now,
        )
    if invoice is None:
        current = _require(session, organization_id, public_id)
        if current.status not in states.REFUNDABLE:
            raise Conflict(
                f"invoice {public_id} is {current.status}; only {states.names(states.REFUNDABLE)} invoices can be refunded",
                code="invoice_not_refundable",
            )
        refundable = current.amount_paid_minor - current.amount_refunded_minor
        raise ValidationFailed(
            f"amount {format_amount(minor, cur)} is more than the {format_amount(refundable, cur)} {cur.code} left to refund",
            param="amount",
            code="amount_exceeds_refundable",
        )
    payment = _add_money_row(
        session,
        invoice,
        kind="refund",
        status="succeeded",
        amount_minor=minor,
        provider=provider,
        reference=reference,
        failure_reason=reason,
        at=now,
    )
    view = _moved(session, invoice)
    full = invoice.status == InvoiceStatus.REFUNDED
    _event(
        session,
        view,
        "invoice.refunded" if full else "invoice.partially_refunded",
        extra={"refund": _payment_data(payment)},
    )
    return view


def start_payment_attempt(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    provider: str,
    amount: Decimal | None = None,
    reference: str | None = None,
) -> tuple[InvoiceView, Payment]:
    """open -> processing: a provider has started taking the money."""
    organization = _organization(session, organization_id)
    current = _require(session, organization_id, public_id)
    minor = _payment_amount(current, amount, states.ATTEMPTABLE)
    due = current.total_minor - current.amount_paid_minor
    if minor > due or (minor < due and not organization.allow_partial_payments) or minor <= 0:
        raise _explain_payment_refusal(
            session, organization_id, public_id, minor, states.ATTEMPTABLE
        )
    now = clock.utcnow()
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=states.ATTEMPTABLE,
        extra_where=[Invoice.amount_paid_minor + minor <= Invoice.total_minor],
        values={"status": InvoiceStatus.PROCESSING.value},
        now=now,
    )
    if invoice is None:
        raise _explain_payment_refusal(
            session, organization_id, public_id, minor, states.ATTEMPTABLE
        )
    payment = _add_money_row(
        session,
        invoice,
        kind="payment",
        status="processing",
        amount_minor=minor,
        provider=provider,
        reference=reference,
        at=now,
    )
    view = _moved(session, invoice)
    _event(session, view, "invoice.processing", extra={"payment": _payment_data(payment)})
    return view, payment


def complete_payment_attempt(
    session: Session, organization_id: int, payment_public_id: str
) -> InvoiceView:
    """processing -> paid (or back to open when the attempt paid part of it)."""
    payment = repository.set_payment_status(
        session, payment_public_id, organization_id, from_status="processing", to_status="succeeded"
    )
    if payment is None:
        raise _attempt_not_in_flight(session, organization_id, payment_public_id)
    invoice_public_id = _invoice_public_id(session, payment)
    invoice = repository.apply_payment(
        session,
        organization_id,
        invoice_public_id,
        amount_minor=payment.amount_minor,
        from_statuses=states.ATTEMPT_IN_FLIGHT,
        require_full=False,
        now=clock.utcnow(),
    )
    if invoice is None:
        raise Conflict(
            f"invoice {invoice_public_id} has no payment in flight", code="invoice_not_processing"
        )
    view = _moved(session, invoice)
    paid = invoice.status == InvoiceStatus.PAID
    _event(
        session,
        view,
        "invoice.paid" if paid else "invoice.partially_paid",
        extra={"payment": _payment_data(payment)},
    )
    return view


def decline_payment_attempt(
    session: Session, organization_id: int, payment_public_id: str, *, reason: str
) -> InvoiceView:
    """processing -> open: the attempt failed; the decline is kept on the payment and invoice."""
    payment = repository.set_payment_status(
        session,
        payment_public_id,
        organization_id,
        from_status="processing",
        to_status="failed",
        failure_reason=reason,
    )
    if payment is None:
        raise _attempt_not_in_flight(session, organization_id, payment_public_id)
    invoice_public_id = _invoice_public_id(session, payment)
    invoice = repository.transition(
        session,
        organization_id,
        invoice_public_id,
        from_statuses=states.ATTEMPT_IN_FLIGHT,
        values={"status": InvoiceStatus.OPEN.value, "last_payment_error": reason[:200]},
        now=clock.utcnow(),
    )
    if invoice is None:
        raise Conflict(
            f"invoice {invoice_public_id} has no payment in flight", code="invoice_not_processing"
        )
    view = _moved(session, invoice)
    _event(session, view, "invoice.payment_failed", extra={"payment": _payment_data(payment)})
    return view


def _attempt_not_in_flight(
    session: Session, organization_id: int, payment_public_id: str
) -> Exception:
    payment = repository.get_payment(session, organization_id, payment_public_id)
    if payment is None:
        return NotFound(
            f"no payment {payment_public_id}", param="payment", code="payment_not_found"
        )
    return Conflict(
        f"payment {payment_public_id} is {payment.status}, not processing",
        code="payment_not_processing",
    )


def _invoice_public_id(session: Session, payment: Payment) -> str:
    found = session.get(Invoice, payment.invoice_id)
    assert found is not None
    return found.public_id


def record_late_payment(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount_minor: int,
    provider: str,
    reference: str | None = None,
) -> tuple[InvoiceView, Payment]:
    """Money for a cancelled or expired invoice: never lost. It is recorded and the invoice
    flagged paid late; the organization's policy then accepts it (the invoice becomes paid
    when covered) or refunds it at once (the caller returns the money through the provider).
    """
    organization = _organization(session, organization_id)
    now = clock.utcnow()
    new_paid = Invoice.amount_paid_minor + amount_minor
    covers = new_paid == Invoice.total_minor
    values: dict[str, Any] = {"amount_paid_minor": new_paid, "paid_late_at": now}
    if organization.late_payment_policy == "refund":
        values.update(
            amount_refunded_minor=Invoice.amount_refunded_minor + amount_minor, refunded_at=now
        )
    else:
        values.update(
            status=case((covers, InvoiceStatus.PAID.value), else_=Invoice.status),
            paid_at=case((covers, now), else_=Invoice.paid_at),
        )
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=states.LATE_PAYABLE,
        extra_where=[new_paid <= Invoice.total_minor],
        values=values,
        now=now,
    )
    if invoice is None:
        raise _explain_payment_refusal(
            session, organization_id, public_id, amount_minor, states.LATE_PAYABLE
        )
    payment = _add_money_row(
        session,
        invoice,
        kind="payment",
        status="succeeded",
        amount_minor=amount_minor,
        provider=provider,
        reference=reference,
        at=now,
    )
    view = _moved(session, invoice)
    _event(
        session,
        view,
        "invoice.paid_late",
        extra={"payment": _payment_data(payment), "policy": organization.late_payment_policy},
    )
    if organization.late_payment_policy == "refund":
        refund = _add_money_row(
            session,
            invoice,
            kind="refund",
            status="succeeded",
            amount_minor=amount_minor,
            provider=provider,
            failure_reason="paid after the invoice was closed; refunded by policy",
            at=now,
        )
        _event(session, view, "invoice.refunded", extra={"refund": _payment_data(refund)})
    elif invoice.status == InvoiceStatus.PAID:
        _event(session, view, "invoice.paid", extra={"payment": _payment_data(payment)})
    return view, payment


def flag_payment_for_review(
    session: Session,
    organization_id: int,
    public_id: str,
    *,
    amount_minor: int,
    currency_code: str,
    provider: str,
    reference: str | None,
    reason: str,
) -> Payment:
    """Money that does not fit the invoice (wrong amount or currency, paid twice) is recorded
    as "review" and announced; it never changes what the invoice owes by itself."""
    invoice = _require(session, organization_id, public_id)
    payment = _add_money_row(
        session,
        invoice,
        kind="payment",
        status="review",
        amount_minor=amount_minor,
        provider=provider,
        reference=reference,
        failure_reason=reason[:200],
        currency_code=currency_code,
        at=clock.utcnow(),
    )
    _event(
        session,
        _moved(session, invoice),
        "invoice.payment_flagged",
        extra={"payment": _payment_data(payment), "reason": reason},
    )
    return payment


def mark_overdue_invoices(session: Session, *, limit: int = 500) -> list[InvoiceView]:
    """Open invoices past their due date get overdue_at and one invoice.overdue event."""
    now = clock.utcnow()
    marked = repository.mark_overdue(
        session, today=now.date(), now=now, from_statuses=states.OVERDUE_CANDIDATES, limit=limit
    )
    lines = repository.lines_of(session, [i.id for i in marked])
    views = [InvoiceView(i, lines[i.id]) for i in marked]
    for view in views:
        _event(session, view, "invoice.overdue")
    return views


def mark_overdue(
    session: Session, organization_id: int, public_id: str, *, reason: str
) -> InvoiceView | None:
    """A provider says payment failed (004's invoice.payment_failed): mark it overdue now."""
    now = clock.utcnow()
    invoice = repository.transition(
        session,
        organization_id,
        public_id,
        from_statuses=(*states.OVERDUE_CANDIDATES, InvoiceStatus.PROCESSING),
        extra_where=[Invoice.overdue_at.is_(None)],
        values={"overdue_at": now, "last_payment_error": reason[:200]},
        now=now,
    )
    if invoice is None:
        return None
    view = _moved(session, invoice)
    _event(session, view, "invoice.overdue", extra={"reason": reason})
    return view


def decline_stale_attempts(
    session: Session, *, older_than: dt.timedelta, limit: int = 200
) -> list[InvoiceView]:
    """A payment attempt left in processing (a customer who never finished 3-D Secure) is
    declined after ``older_than``, so the invoice is payable again."""
    views = []
    for payment in repository.stale_attempts(
        session, before=clock.utcnow() - older_than, limit=limit
    ):
        try:
            views.append(
                decline_payment_attempt(
                    session,
                    payment.organization_id,
                    payment.public_id,
                    reason="payment was not completed in time",
                )
            )
        except Conflict:
            continue  # finished meanwhile
    return views


def expire_due_invoices(session: Session, *, limit: int = 500) -> list[InvoiceView]:
    """Expires open, unpaid invoices past expires_at (all organizations), with their events."""
    expired = repository.expire_due(
        session, now=clock.utcnow(), from_statuses=states.EXPIRABLE, limit=limit
    )
    lines = repository.lines_of(session, [i.id for i in expired])
    views = [InvoiceView(i, lines[i.id]) for i in expired]
    for view in views:
        _event(session, view, "invoice.expired")
    return views


def _add_money_row(
    session: Session,
    invoice: Invoice,
    *,
    kind: str,
    status: str,
    amount_minor: int,
    provider: str,
    at: dt.datetime,
    reference: str | None = None,
    failure_reason: str | None = None,
    currency_code: str | None = None,
) -> Payment:
    """One row of money for ``invoice``: a payment (pay_…) or a refund (re_…)."""
    return repository.add_payment(
        session,
        Payment(
            public_id=new_public_id("re" if kind == "refund" else "pay"),
            organization_id=invoice.organization_id,
            invoice_id=invoice.id,
            kind=kind,
            status=status,
            amount_minor=amount_minor,
            currency=currency_code or invoice.currency,
            provider=provider,
            provider_reference=reference,
            failure_reason=failure_reason,
            created_at=at,
        ),
    )


def _payment_data(payment: Payment) -> dict[str, Any]:
    cur = currency(payment.currency)
    return {
        "id": payment.public_id,
        "kind": payment.kind,
        "status": payment.status,
        "amount": format_amount(payment.amount_minor, cur),
        "currency": payment.currency,
        "provider": payment.provider,
        "reference": payment.provider_reference,
        "failure_reason": payment.failure_reason,
    }
