"""Running the app under uvicorn, one process or several (``invoicehub serve --workers N``).

With several workers uvicorn binds the listening socket itself and hands it to each worker
process, but it creates that socket with ``proto`` 0; accepted connections inherit it, and
asyncio turns on TCP_NODELAY only for sockets that say IPPROTO_TCP. Without it, Nagle's
algorithm holds the response body (written after its headers) until the client's delayed
ACK: every keep-alive request waited ~40 ms more on Linux (uvicorn 0.54, issue
Kludex/uvicorn#3149; measured with bench/bench_core.py --workers 2). ``tcp_listener`` binds
the socket the same way and declares its protocol, so the workers' connections get
TCP_NODELAY as a single process's do.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "invoicehub.app:create_app"


def tcp_listener(config: uvicorn.Config) -> socket.socket:
    """``config.bind_socket()``, with IPPROTO_TCP declared on a TCP socket."""
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    listener = socket.socket(bound.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, bound.detach())
    listener.set_inheritable(True)
    return listener


def run(*, host: str, port: int, workers: int, log_level: str) -> None:
    if workers == 1:
        uvicorn.run(
            APP, factory=True, host=host, port=port, log_level=log_level, proxy_headers=True
        )
        return
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
    )
    Multiprocess(config, sockets=[tcp_listener(config)]).run()
