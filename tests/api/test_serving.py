"""``invoicehub serve --workers N``: the listening socket uvicorn binds for its worker
processes must let their connections use TCP_NODELAY (api/serving.py says why), and the
command must serve with several processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn

from invoicehub.api.serving import tcp_listener
from tests.conftest import OrgKeys, invoice_body

INVOICEHUB = Path(sys.executable).parent / "invoicehub"


def nodelay_of_an_accepted_connection(listener: socket.socket) -> int:
    """Serves ``listener`` with asyncio, connects once, and reports TCP_NODELAY as asyncio
    left it on the accepted socket."""
    seen: list[int] = []

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def once() -> None:
        server = await asyncio.get_running_loop().create_server(Report, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(once())
    assert len(seen) == 1
    return seen[0]


def test_the_workers_listener_gives_connections_tcp_nodelay() -> None:
    config = uvicorn.Config("invoicehub.app:create_app", host="127.0.0.1", port=0)
    listener = tcp_listener(config)
    assert listener.proto == socket.IPPROTO_TCP
    assert listener.family == socket.AF_INET
    assert nodelay_of_an_accepted_connection(listener) == 1


def test_uvicorns_own_listener_still_lacks_it() -> None:
    """Why tcp_listener exists (uvicorn 0.54, Kludex/uvicorn#3149). When this fails, uvicorn
    has fixed it: serving.run can hand the workers config.bind_socket() again."""
    bound = uvicorn.Config("invoicehub.app:create_app", host="127.0.0.1", port=0).bind_socket()
    assert bound.proto == 0
    assert nodelay_of_an_accepted_connection(bound) == 0


def test_serve_with_two_workers_answers_on_one_port(
    database_url: str, org: OrgKeys, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEHUB_")}
    environment |= {
        "INVOICEHUB_DATABASE_URL": database_url,
        "INVOICEHUB_RUN_WORKER_IN_SERVE": "false",
        "INVOICEHUB_RATE_LIMIT_ENABLED": "false",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(INVOICEHUB), "serve", "--port", str(port), "--workers", "2", "--no-migrate"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not answer in 60 s"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {org.secret_key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
            made = api.post("/v1/invoices", json=invoice_body(status="open"))
            assert made.status_code == 201, made.text
            for _ in range(5):  # one keep-alive connection, whichever process takes it
                fetched = api.get(f"/v1/invoices/{made.json()['id']}")
                assert fetched.json() == made.json()
        children = [
            child
            for task in Path(f"/proc/{process.pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        assert len(children) >= 2, children  # two workers (and maybe a resource tracker)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
