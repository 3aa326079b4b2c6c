"""The merchant dashboard at /dashboard: server-rendered pages over the same services as the
API. ``install`` adds its routes; app.py turns its refusals into pages instead of JSON."""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.web.dashboard import invoices, keys, login, overview, reports, settings, webhooks
from invoicehub.web.dashboard.common import PREFIX

PAGES = (login, overview, invoices, webhooks, keys, settings, reports)


def install(app: FastAPI) -> None:
    for module in PAGES:
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
