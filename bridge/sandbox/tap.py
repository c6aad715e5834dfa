"""An ASGI wrapper that lets the sandbox watch a stand-in's traffic without changing it.

Each HTTP request is read whole, shown to `arrived` before the app sees it (so the
sandbox prints it in the order things happen), replayed to the app, and shown with
the app's answer to `answered` once that is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


@dataclass
class Exchange:
    method: str
    path: str
    body: bytes
    status: int = 0
    response: bytes = b""


Watcher = Callable[[Exchange], None]


class Tap:
    def __init__(
        self,
        app: ASGIApp,
        *,
        arrived: Watcher,
        answered: Watcher,
        paths: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.arrived = arrived
        self.answered = answered
        self.paths = paths  # None: every path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.paths is not None and scope["path"] not in self.paths):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its request
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        exchange = Exchange(scope["method"], scope["path"], b"".join(chunks))
        _watch(self.arrived, exchange)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect can come now
            replayed = True
            return {"type": "http.request", "body": exchange.body, "more_body": False}

        answer: list[bytes] = []

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, watched_send)
        exchange.response = b"".join(answer)
        _watch(self.answered, exchange)


def _watch(watcher: Watcher, exchange: Exchange) -> None:
    # Watching must never break the stand-in it watches.
    try:
        watcher(exchange)
    except Exception:
        logger.exception("sandbox: watching %s %s failed", exchange.method, exchange.path)
