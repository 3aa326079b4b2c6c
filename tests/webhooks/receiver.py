"""A merchant's webhook receiver, faked by a real HTTP server on 127.0.0.1.

It records every request (headers, body) and every TCP connection it accepts, and answers
as the test tells it: a status, extra headers, a body, or hanging until released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    hang: bool = False  # hold the request open until ``release()``


class Receiver:
    def __init__(self, reply: Reply | Callable[[Received], Reply] | None = None) -> None:
        self.reply = reply or Reply()
        self.requests: list[Received] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length).decode(),
                )
                with receiver.lock:
                    receiver.requests.append(received)
                reply = receiver.reply(received) if callable(receiver.reply) else receiver.reply
                if reply.hang:
                    receiver.released.wait(timeout=60)
                body = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                connection = super().get_request()
                with receiver.lock:
                    receiver.connections += 1
                return connection

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self.released.set()

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Waits (bounded) until ``count`` requests arrived; returns what arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self.lock:
            return list(self.requests)
