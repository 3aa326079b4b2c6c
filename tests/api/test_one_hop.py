"""api.one_hop: a native request crosses into the worker-thread pool once (key lookup,
endpoint and commit together), and what clients see is what they saw with three crossings:
the key is refused before a bad body, refused requests count against the limit, and a
commit that fails is answered as a failure."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import anyio.to_thread
import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from invoicehub.api.deps import Auth
from invoicehub.api.middleware import SessionHolder
from invoicehub.api.one_hop import OneHopRoute
from invoicehub.api.runtime import Runtime
from invoicehub.app import create_app
from invoicehub.config import Settings
from tests.conftest import LiveServer, OrgKeys, create_org, invoice_body, make_settings


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function the app sends to a worker thread, in order. The test
    server runs in this process, so counting ``anyio.to_thread.run_sync`` sees them all."""
    seen: list[str] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        named = func
        if isinstance(named, functools.partial):  # FastAPI's run_in_threadpool(endpoint, ...)
            named = named.keywords.get("function", named.func)
        seen.append(named.__name__)
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


def crossings(hops: list[str], call: Callable[[], httpx.Response], status: int) -> list[str]:
    hops.clear()
    answer = call()
    assert answer.status_code == status, answer.text
    return list(hops)


def test_each_native_call_crosses_into_the_pool_once(api: httpx.Client, hops: list[str]) -> None:
    created = api.post("/v1/invoices", json=invoice_body(status="draft"))
    assert created.status_code == 201, created.text
    invoice_id = created.json()["id"]

    # (endpoint, call, status): the one function that crosses is the endpoint's wrapper,
    # which FastAPI knows by the endpoint's name; nothing crosses to commit afterwards.
    one_hop = [
        ("create_invoice", lambda: api.post("/v1/invoices", json=invoice_body()), 201),
        ("get_invoice", lambda: api.get(f"/v1/invoices/{invoice_id}"), 200),
        ("list_invoices", lambda: api.get("/v1/invoices", params={"limit": 5}), 200),
        (
            "update_invoice",
            lambda: api.patch(f"/v1/invoices/{invoice_id}", json={"description": "one hop"}),
            200,
        ),
        ("finalize_invoice", lambda: api.post(f"/v1/invoices/{invoice_id}/finalize"), 200),
    ]
    for endpoint, call, status in one_hop:
        assert crossings(hops, call, status) == [endpoint]

    # With an Idempotency-Key the claim is one hop of its own (it commits before the
    # endpoint runs); the endpoint, already knowing the caller, is the second.
    keyed = crossings(
        hops,
        lambda: api.post("/v1/invoices", json=invoice_body(), headers={"Idempotency-Key": "k1"}),
        201,
    )
    assert keyed == ["_claim", "create_invoice"]


def test_native_endpoints_run_on_the_api_threads(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They run on pools of their own, ``api_threads`` wide, one for reads and one for
    writes: few threads contending for the GIL keep the tail short under load, and reads
    never wait behind writers that wait for a lock."""
    settings = make_settings(database_url, api_threads=3)
    org = create_org(settings)
    limiters: list[Any] = []
    original = anyio.to_thread.run_sync

    async def recording(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        limiters.append(kwargs.get("limiter"))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording)
    with LiveServer(settings) as live, live.client(org.secret_key) as client:
        assert client.post("/v1/invoices", json=invoice_body()).status_code == 201
        assert client.get("/v1/invoices").status_code == 200
        writes, reads = live.runtime.api_threads(write=True), live.runtime.api_threads(write=False)
    assert limiters == [writes, reads]
    assert writes is not reads
    assert (writes.total_tokens, reads.total_tokens) == (3, 3)


def test_a_create_cancelled_after_its_commit_keeps_its_idempotency_key(
    settings: Settings, org: OrgKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled from outside (uvicorn does so when a graceful shutdown runs out of time)
    after the endpoint's thread committed: the invoice stands, so its Idempotency-Key must
    stay claimed and a retry must replay the answer instead of creating another invoice."""
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    committed = threading.Event()
    finish = SessionHolder.finish

    def finish_then_linger(self: SessionHolder, *args: Any) -> Any:
        failure = finish(self, *args)
        committed.set()
        time.sleep(0.3)  # the cancel arrives while the thread is still busy
        return failure

    monkeypatch.setattr(SessionHolder, "finish", finish_then_linger)
    body = json.dumps(invoice_body()).encode()
    headers = [
        (b"host", b"test"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {org.secret_key}".encode()),
        (b"idempotency-key", b"cancelled-after-commit"),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/invoices", "raw_path": b"/v1/invoices",
        "root_path": "", "query_string": b"", "server": ("test", 80),
        "client": ("127.0.0.1", 1), "headers": headers,
    }  # fmt: skip

    async def call_and_cancel() -> None:
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            pass

        task = asyncio.ensure_future(app(scope, receive, send))
        while not committed.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(call_and_cancel())
    finally:
        monkeypatch.undo()
        runtime.database.dispose()

    with LiveServer(settings) as live, live.client(org.secret_key) as client:
        listed = client.get("/v1/invoices").json()["data"]
        assert len(listed) == 1
        retried = client.post(
            "/v1/invoices",
            content=body,  # the same bytes: the key's fingerprint covers them
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": "cancelled-after-commit",
            },
        )
        assert retried.status_code == 201, retried.text
        assert retried.headers.get("idempotent-replayed") == "true"
        assert retried.json()["id"] == listed[0]["id"]
        assert len(client.get("/v1/invoices").json()["data"]) == 1


def test_a_bad_key_is_refused_before_a_bad_body(server: LiveServer, org: OrgKeys) -> None:
    wrong = org.secret_key[:-1] + ("A" if org.secret_key[-1] != "A" else "B")
    with server.client(wrong) as client:
        for answer in (
            client.post("/v1/invoices", json={"currency": "USD"}),
            client.get("/v1/invoices", params={"limit": "many"}),
            client.patch("/v1/invoices/inv_x", json={"discount": "-1"}),
        ):
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["type"] == "authentication_error"
    with server.client(org.secret_key) as client:
        refused = client.get("/v1/invoices", params={"limit": "many"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["param"] == "limit"


def test_a_spent_limit_is_refused_before_a_bad_body(database_url: str) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=2)
    org = create_org(settings)
    with LiveServer(settings) as live, live.client(org.secret_key) as client:
        remaining = [
            client.post("/v1/invoices", json={"currency": "USD"}).headers["x-ratelimit-remaining"]
            for _ in range(2)
        ]
        assert remaining == ["1", "0"]  # refused bodies count
        spent = client.post("/v1/invoices", json={"currency": "USD"})
        assert spent.status_code == 429, spent.text
        assert spent.headers["retry-after"]


def test_a_commit_refused_in_the_endpoint_thread_is_answered_as_a_failure(
    api: httpx.Client, hops: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = api.get("/v1/invoices").json()["data"]

    def refuse(self: SessionHolder) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(SessionHolder, "commit", refuse)
    failed = crossings(hops, lambda: api.post("/v1/invoices", json=invoice_body()), 503)
    assert failed == ["create_invoice"]  # refused where it was tried: no second attempt
    monkeypatch.undo()

    assert api.get("/v1/invoices").json()["data"] == before


# At module level: this module's annotations are strings, resolved in its globals.
def _held() -> Iterator[int]:
    yield 1


def _with_tasks(auth: Auth, tasks: BackgroundTasks) -> JSONResponse:
    return JSONResponse({})


def _with_teardown(auth: Auth, value: Annotated[int, Depends(_held)]) -> JSONResponse:
    return JSONResponse({})


def _plain(auth: Auth) -> JSONResponse:
    return JSONResponse({})


def test_the_route_refuses_work_that_would_run_after_its_commit() -> None:
    """Background tasks and yield-dependency teardowns run after the endpoint returned, when
    its thread has committed and closed the session: the route class refuses them."""
    router = APIRouter(route_class=OneHopRoute)
    for endpoint in (_with_tasks, _with_teardown):
        with pytest.raises(TypeError, match="cannot take BackgroundTasks or yield"):
            router.add_api_route("/x", endpoint)
    router.add_api_route("/y", _plain)  # accepted
    assert [route.path for route in router.routes] == ["/y"]
