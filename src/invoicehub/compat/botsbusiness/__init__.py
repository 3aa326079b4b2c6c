"""Bots.Business Telegram bot invoices (seed 002), served at <prefix>/v2/bots/{bot_id}/web-app.

The document's new-invoice (POST or GET; JSON body, form or query string), plus what a bot
needs to finish the job: get-invoice, pay-invoice (from the payer's balance, as the wallet
pays) and the QR code image of an invoice's t.me pay link. A bot user signs in with their
Telegram id and PIN (the accounts Authenticator, which locks a user after repeated wrong
PINs). Statuses: paid = paid (and refunded after it); unpaid = everything else. Answers are
{"status": "success", "invoice": {...}} or {"status": "error", "msg": "..."}.
See docs/compat/botsbusiness.md.
"""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.api.runtime import Runtime
from invoicehub.compat.botsbusiness.endpoints import install_error_handlers, router


def build_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Bots.Business web-app invoices (served by invoicehub)",
        description="Seed 002: a bot written for the Bots.Business invoice API works by changing only its base URL. See docs/compat/botsbusiness.md.",
        version="2",
    )
    app.include_router(router)
    install_error_handlers(app)
    return app
