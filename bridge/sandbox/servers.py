"""uvicorn servers for the sandbox: on loopback sockets bound up front, in one event loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

HOST = "127.0.0.1"


class PortTaken(OSError):
    pass


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the sandbox stops its servers in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def loopback_socket(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:port (0: any free port), so the URL is known early."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise PortTaken(f"port {port} on {HOST} is not free ({exc.strerror})") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def server(app: ASGIApp, *, lifespan: bool) -> QuietServer:
    config = uvicorn.Config(
        app,
        log_config=None,  # the sandbox prints what happens; uvicorn only its warnings
        log_level="warning",
        access_log=False,
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=2,
    )
    return QuietServer(config)
