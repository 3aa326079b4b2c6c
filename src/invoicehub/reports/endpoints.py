"""The reports API under /v1/reports: parse the query, call one service function, answer JSON
or (format=csv, or Accept: text/csv) a CSV attachment with the same lines."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from invoicehub.api.deps import Auth, DbSession
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.errors import ValidationFailed
from invoicehub.reports import service
from invoicehub.reports.schemas import (
    AgingReport,
    CsvTable,
    CustomersReport,
    DaysToPayReport,
    Interval,
    RevenueReport,
)

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=OneHopRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    422: {"description": "A query parameter is invalid; error.param names it"},
    429: {"description": "Rate limit exceeded"},
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Report(Protocol):
    def csv_table(self) -> CsvTable: ...

    def model_dump(self, *, mode: str, by_alias: bool) -> dict[str, Any]: ...


def _responses(summary_of_csv: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"text/csv": {}}, "description": summary_of_csv}, **ERRORS}


def parse_report_date(value: str | None, param: str) -> dt.date | None:
    if value is None:
        return None
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{param} must be a date as YYYY-MM-DD; got {value!r}",
            param=param,
            code="invalid_date",
        ) from None
    return service.check_date(day, param)


def parse_interval(value: str) -> Interval:
    for interval in service.INTERVALS:
        if value == interval:
            return interval
    raise ValidationFailed(
        f"interval must be day, week or month; got {value!r}",
        param="interval",
        code="invalid_interval",
    )


def _accept_quality(accept: str, media_type: str) -> float:
    for part in accept.split(","):
        kind, *params = (piece.strip() for piece in part.split(";"))
        if kind.lower() != media_type:
            continue
        for param in params:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(raw)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def _wants_csv(output: str | None, accept: str | None) -> bool:
    """format= decides; without it, CSV when Accept ranks text/csv above application/json."""
    if output is not None:
        if output not in ("json", "csv"):
            raise ValidationFailed(
                f"format must be json or csv; got {output!r}", param="format", code="invalid_format"
            )
        return output == "csv"
    if not accept:
        return False
    csv_quality = _accept_quality(accept, "text/csv")
    return csv_quality > 0 and csv_quality > _accept_quality(accept, "application/json")


def report_response(report: _Report, *, as_csv: bool, filename: str) -> Response:
    headers = {"Vary": "Accept"}
    if not as_csv:
        return JSONResponse(report.model_dump(mode="json", by_alias=True), headers=headers)
    header, rows = report.csv_table()
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quoted as needed, CRLF line ends
    writer.writerow(header)
    writer.writerows(rows)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(
        buffer.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers
    )


FromParam = Annotated[
    str | None,
    Query(
        alias="from",
        description="First day, YYYY-MM-DD (UTC); see each report for its default.",
        examples=["2026-01-01"],
    ),
]
ToParam = Annotated[
    str | None,
    Query(
        alias="to",
        description="Last day, included, YYYY-MM-DD (UTC); today by default.",
        examples=["2026-03-31"],
    ),
]
FormatParam = Annotated[
    str | None,
    Query(
        alias="format",
        description="json (default) or csv; without it, Accept: text/csv also gives CSV.",
    ),
]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]


@router.get(
    "/revenue",
    response_model=RevenueReport,
    responses=_responses("The same periods as CSV, one row per currency and period"),
    summary="Money collected per day, week or month, per currency",
)
def revenue(
    auth: Auth,
    session: DbSession,
    date_from: FromParam = None,
    date_to: ToParam = None,
    interval: Annotated[
        str,
        Query(
            description="day, week (ISO, Monday first) or month. At most 366 days, 260 weeks or 120 months."
        ),
    ] = "month",
    output: FormatParam = None,
    accept: AcceptHeader = None,
) -> Response:
    """Succeeded payments minus refunds by the UTC day of each payment, and invoices paid in
    full, per currency and period; every period of the range is listed. Default range: the
    last 30 days (day) or the last 12 weeks or months, up to today."""
    as_csv = _wants_csv(output, accept)
    report = service.revenue_report(
        session,
        auth.organization_id,
        date_from=parse_report_date(date_from, "from"),
        date_to=parse_report_date(date_to, "to"),
        interval=parse_interval(interval),
    )
    return report_response(
        report,
        as_csv=as_csv,
        filename=f"revenue_{report.from_}_{report.to}_{report.interval}.csv",
    )


@router.get(
    "/aging",
    response_model=AgingReport,
    responses=_responses("The buckets as CSV, one row per currency and bucket"),
    summary="Accounts receivable by days past due, per currency",
)
def aging(
    auth: Auth,
    session: DbSession,
    as_of: Annotated[
        str | None,
        Query(description="Count ages to this day, YYYY-MM-DD (UTC); today by default."),
    ] = None,
    output: FormatParam = None,
    accept: AcceptHeader = None,
) -> Response:
    """What open and processing invoices still owe (total - amount_paid), bucketed by days
    past due: current, 1-30, 31-60, 61-90, over 90."""
    as_csv = _wants_csv(output, accept)
    report = service.aging_report(
        session, auth.organization_id, as_of=parse_report_date(as_of, "as_of")
    )
    return report_response(report, as_csv=as_csv, filename=f"aging_{report.as_of}.csv")


@router.get(
    "/days-to-pay",
    response_model=DaysToPayReport,
    responses=_responses("An overall row, then one row per currency"),
    summary="Average and median days to payment, and collection rate",
)
def days_to_pay(
    auth: Auth,
    session: DbSession,
    date_from: FromParam = None,
    date_to: ToParam = None,
    output: FormatParam = None,
    accept: AcceptHeader = None,
) -> Response:
    """Days from issue_date to being paid in full, for invoices paid in the range; and the
    share of invoices issued in the range that are paid in full. Default: the last 30 days."""
    as_csv = _wants_csv(output, accept)
    report = service.days_to_pay_report(
        session,
        auth.organization_id,
        date_from=parse_report_date(date_from, "from"),
        date_to=parse_report_date(date_to, "to"),
    )
    return report_response(
        report, as_csv=as_csv, filename=f"days-to-pay_{report.from_}_{report.to}.csv"
    )


@router.get(
    "/customers",
    response_model=CustomersReport,
    responses=_responses("One row per currency and customer"),
    summary="Top customers by amount paid, per currency",
)
def customers(
    auth: Auth,
    session: DbSession,
    date_from: FromParam = None,
    date_to: ToParam = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Customers per currency.")] = 10,
    output: FormatParam = None,
    accept: AcceptHeader = None,
) -> Response:
    """Customers ranked by payments minus refunds made in the range, with the invoices paid
    and what they owe now. Default range: the last 30 days."""
    as_csv = _wants_csv(output, accept)
    report = service.customers_report(
        session,
        auth.organization_id,
        date_from=parse_report_date(date_from, "from"),
        date_to=parse_report_date(date_to, "to"),
        limit=limit,
    )
    return report_response(
        report, as_csv=as_csv, filename=f"customers_{report.from_}_{report.to}.csv"
    )
