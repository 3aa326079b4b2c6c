"""The Magento integration hub's invoice API (seed 003), served at <prefix>/api/v1.

Invoices and orders reach it from Magento 2 itself: ``invoicehub magento import`` reads
Magento's REST search results, ``invoicehub magento sync`` pulls them from a store. This
package translates that JSON (importer.py, sync.py) and the hub's read API (endpoints.py)
to and from the core's orders and invoices services. See docs/compat/magento.md.

States: open = core draft/open/processing; paid = paid (and refunded, as Magento keeps a
credited invoice "paid"); canceled = cancelled/expired.
"""

from __future__ import annotations

from fastapi import FastAPI

from invoicehub.api.runtime import Runtime
from invoicehub.compat.magento.endpoints import router
from invoicehub.compat.magento.errors import install_error_handlers


def build_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Magento integration hub invoices (served by invoicehub)",
        description="Seed 003: a client written for the hub works by changing only its base "
        "URL. Data comes from Magento 2 through `invoicehub magento import` and "
        "`invoicehub magento sync`. See docs/compat/magento.md.",
        version="1",
    )
    app.include_router(router)
    install_error_handlers(app)
    return app
