"""BW wallet invoices (seed 001, in Russian), served at <prefix>/v1/invoices.

People bill each other by phone and pay from their balance. Auth is HTTP Basic phone:password
(the accounts Authenticator, which locks an account after repeated wrong passwords).
Statuses: created = open; declined = open after a declined payment (final here);
processing; completed = paid; canceled = cancelled. Answers are the document's envelope
{"meta": {"code": ...}, "data": ...}; errors carry the document's code in meta.error.
See docs/compat/wallet.md.
"""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.api.runtime import Runtime
from invoicehub.compat.wallet.endpoints import install_error_handlers, router


def build_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="BW wallet invoices (served by invoicehub)",
        description="Seed 001: a client written for the BW wallet's invoices works by changing only its base URL. See docs/compat/wallet.md.",
        version="1",
    )
    app.include_router(router)
    install_error_handlers(app)
    return app
