"""Reports: revenue per day, week or month, receivables aging, days to pay with collection
rate, and top customers, over one date range, each also as CSV (the API's own CSV)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from invoicehub.errors import AppError
from invoicehub.kit.money import currency, to_minor
from invoicehub.reports import service as reports
from invoicehub.reports.endpoints import parse_interval, parse_report_date, report_response
from invoicehub.web.dashboard.charts import bar_chart
from invoicehub.web.dashboard.common import Ctx, db, error_page, render, translator
from invoicehub.web.dashboard.overview import money_in

router = APIRouter()

DateText = Annotated[str | None, Query(max_length=10)]


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    context: Ctx,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    interval: Annotated[str, Query(max_length=5)] = "week",
) -> HTMLResponse:
    session = db(request)
    t = translator(request, context)
    try:
        first = parse_report_date(date_from or None, "from")
        last = parse_report_date(date_to or None, "to")
        chosen = parse_interval(interval)
        revenue = reports.revenue_report(
            session, context.organization_id, date_from=first, date_to=last, interval=chosen
        )
        # The other reports cover the same days as the revenue report shows.
        speed = reports.days_to_pay_report(
            session, context.organization_id, date_from=revenue.from_, date_to=revenue.to
        )
        customers = reports.customers_report(
            session, context.organization_id, date_from=revenue.from_, date_to=revenue.to
        )
    except AppError as error:
        return error_page(request, error)
    aging = reports.aging_report(session, context.organization_id)
    charts = {
        entry.currency: bar_chart(
            [
                (p.period, to_minor(p.collected, currency(entry.currency), allow_negative=True))
                for p in entry.periods
            ],
            title=t("chart_collected", currency=entry.currency),
            describe=partial(money_in, t, entry.currency),
        )
        for entry in revenue.currencies
    }
    return render(
        request,
        "reports.html",
        context,
        {
            "revenue": revenue,
            "aging": aging,
            "speed": speed,
            "customers": customers,
            "charts": charts,
            "interval": chosen,
            "query": {"from": revenue.from_.isoformat(), "to": revenue.to.isoformat()},
        },
        section="reports",
    )


@router.get("/reports/{name}.csv")
def report_csv(
    request: Request,
    context: Ctx,
    name: Literal["revenue", "aging", "days-to-pay", "customers"],
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    interval: Annotated[str, Query(max_length=5)] = "week",
) -> Response:
    session = db(request)
    org = context.organization_id
    first = parse_report_date(date_from or None, "from")
    last = parse_report_date(date_to or None, "to")
    if name == "revenue":
        revenue = reports.revenue_report(
            session, org, date_from=first, date_to=last, interval=parse_interval(interval)
        )
        return report_response(
            revenue, as_csv=True, filename=f"revenue_{revenue.from_}_{revenue.to}.csv"
        )
    if name == "aging":
        aging = reports.aging_report(session, org)
        return report_response(aging, as_csv=True, filename=f"aging_{aging.as_of}.csv")
    if name == "days-to-pay":
        speed = reports.days_to_pay_report(session, org, date_from=first, date_to=last)
        return report_response(
            speed, as_csv=True, filename=f"days_to_pay_{speed.from_}_{speed.to}.csv"
        )
    customers = reports.customers_report(session, org, date_from=first, date_to=last)
    return report_response(
        customers, as_csv=True, filename=f"customers_{customers.from_}_{customers.to}.csv"
    )
