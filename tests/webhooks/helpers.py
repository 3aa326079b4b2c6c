"""Driving the webhook sender by hand, so tests decide when deliveries go out."""

from __future__ import annotations

import asyncio

import httpx

from invoicehub.api.runtime import Runtime
from invoicehub.config import Settings
from invoicehub.webhooks.ssrf import Resolver, system_resolver
from invoicehub.webhooks.tasks import WebhookSender


def run_sender_once(settings: Settings, *, resolver: Resolver = system_resolver) -> int:
    """One claim round with a fresh sender (as a new worker process would), waiting for
    every attempt it started; returns how many deliveries it claimed."""

    async def go() -> int:
        runtime = Runtime.build(settings)
        sender = WebhookSender(runtime, resolver=resolver)
        try:
            started = await sender.dispatch_due()
            await sender.drain()
            return started
        finally:
            await sender.aclose()
            runtime.database.dispose()

    return asyncio.run(go())


def register(api: httpx.Client, url: str, **fields: object) -> dict:
    response = api.post("/v1/webhook-endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def open_invoice(api: httpx.Client, **fields: object) -> dict:
    body = {
        "currency": "USD",
        "status": "open",
        "customer": {"email": "client@example.com"},
        "line_items": [{"description": "Work", "quantity": 1, "unit_price": "100.00"}],
        **fields,
    }
    response = api.post("/v1/invoices", json=body)
    assert response.status_code == 201, response.text
    return response.json()
