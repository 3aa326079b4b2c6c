"""Clawprint invoices (seed 004), served at <prefix>/api/invoices and <prefix>/api/businesses.

Auth is ``Authorization: Bearer pk_…:sk_…``; a business is the key's organization. Status
words: draft; sent / viewed / overdue = open or processing (overdue past due, viewed once the
customer opened the link); paid = paid/partially_refunded; refunded; cancelled =
cancelled/expired. Errors are ``{"error": <the document's title>, "message", "field"}``.
See docs/compat/clawprint.md.
"""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.api.runtime import Runtime
from invoicehub.compat.clawprint.endpoints import install_error_handlers, router


def build_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Clawprint invoices (served by invoicehub)",
        description="Seed 004: a client written for the Clawprint Invoice API works by changing only its base URL. See docs/compat/clawprint.md.",
        version="1",
    )
    app.include_router(router)
    install_error_handlers(app)
    return app
