"""ApiPay.kz invoices (seed 000), served at <prefix>/api/invoices.

Statuses: pending = draft/open/processing; paid; refunded = partially_refunded/refunded;
cancelled; expired. Errors are Laravel-shaped: {"message", "errors": {field: [message]}}.
"""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.api.runtime import Runtime
from invoicehub.compat.apipay.endpoints import install_error_handlers, router


def build_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="ApiPay.kz invoices (served by invoicehub)",
        description="Seed 000: a client written for ApiPay.kz works by changing only its base URL. See docs/compat/apipay.md.",
        version="1",
    )
    app.include_router(router)
    install_error_handlers(app)
    return app
