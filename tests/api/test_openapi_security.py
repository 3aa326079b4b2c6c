"""The API-key schemes in /openapi.json: authentication reads its headers itself (no security
dependency solved per request), so the document declares them on its own; /docs' Authorize
button and generated clients depend on it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveServer

BOTH_SCHEMES = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


def _schema(server: LiveServer) -> dict[str, Any]:
    answer = httpx.get(f"{server.base_url}/openapi.json")
    assert answer.status_code == 200
    schema: dict[str, Any] = answer.json()
    return schema


def test_the_two_key_schemes_are_declared(server: LiveServer) -> None:
    schemes = _schema(server)["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "description": "Authorization: Bearer sk_…",
        "scheme": "bearer",
    }
    assert schemes["APIKeyHeader"]["in"] == "header"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"


def test_every_authenticated_operation_names_them(server: LiveServer) -> None:
    paths = _schema(server)["paths"]
    for path, method in [
        ("/v1/invoices", "post"),
        ("/v1/invoices", "get"),
        ("/v1/invoices/{invoice_id}", "get"),
        ("/v1/invoices/{invoice_id}/refunds", "post"),
        ("/v1/events", "get"),
        ("/v1/webhook-endpoints", "post"),
        ("/v1/reports/revenue", "get"),
    ]:
        assert paths[path][method]["security"] == BOTH_SCHEMES, (path, method)


def test_open_operations_name_none(server: LiveServer) -> None:
    paths = _schema(server)["paths"]
    assert "security" not in paths["/healthz"]["get"]
    secured = [
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "security" in operation
    ]
    assert all(path.startswith("/v1/") for path, _ in secured), secured
    assert len(secured) == 32
