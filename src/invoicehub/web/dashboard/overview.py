"""The overview: what is owed, what is late, what came in this month, and a weekly chart."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from invoicehub.reports import service as reports
from invoicehub.web.dashboard.charts import bar_chart
from invoicehub.web.dashboard.common import Ctx, db, render, translator
from invoicehub.web.dashboard.words import DashboardTranslator

router = APIRouter()


def money_in(t: DashboardTranslator, code: str, minor: int) -> str:
    return t.money(minor, code)


@router.get("", response_class=HTMLResponse)
def overview(request: Request, context: Ctx) -> HTMLResponse:
    t = translator(request, context)
    figures = reports.overview(db(request), context.organization_id)
    charts = {
        entry.currency: bar_chart(
            [(week.label, week.collected_minor) for week in entry.weeks],
            title=t("chart_paid_per_week", currency=entry.currency),
            describe=partial(money_in, t, entry.currency),
        )
        for entry in figures
    }
    return render(
        request,
        "overview.html",
        context,
        {"figures": figures, "charts": charts},
        section="overview",
    )
