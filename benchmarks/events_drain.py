"""Draining the outbox: N queued events delivered by one sender to a local receiver.

    python benchmarks/events_drain.py [--events 10000] [--database-url URL]
        [--transport pooled|httpx] [--batch 100] [--concurrency 32] [--json]

The receiver (its own process: a raw asyncio protocol, keep-alive HTTP/1.1, 204 to
every POST) verifies nothing, so the figure is the sender's: claim, sign, POST,
settle. The events are queued before the clock starts (SQLite in a temporary
directory unless --database-url names a migrated database, which is then used).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, select

from bridge.events.outbox import Outbox
from bridge.events.sender import EventSender
from bridge.secret import Secret
from bridge.storage import migrate
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries
from bridge.transport.factory import make_transport
from bridge.webhook_signing import WebhookSigner

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ANSWER = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


class Receiver(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(ANSWER)


def serve(sock: socket.socket) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Receiver, sock=sock)
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


async def queue(database: Database, url: str, count: int) -> None:
    box = Outbox((url,))
    engine = await database.engine()
    data = {"call_sid": "CA" + "0" * 32, "status": "completed", "transcript": [], "n": 0}
    for start in range(0, count, 1000):
        async with engine.begin() as connection:
            for n in range(start, min(count, start + 1000)):
                await box.enqueue(
                    connection, "call.completed", {**data, "n": n}, dedupe_key=uuid.uuid4().hex
                )


async def drain(args: argparse.Namespace, url: str, database_url: str) -> dict[str, Any]:
    database = Database(database_url)
    await queue(database, url, args.events)
    transport = (
        make_transport("pooled", args.concurrency)
        if args.transport == "pooled"
        else httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=args.concurrency))
    )
    sender = EventSender(
        database,
        WebhookSigner([Secret(SECRET)]),
        transport=transport,
        batch=args.batch,
        concurrency=args.concurrency,
    )
    started = time.perf_counter()
    while await sender.run_once():
        pass
    elapsed = time.perf_counter() - started
    await sender.stop()
    engine = await database.engine()
    async with engine.connect() as connection:
        left = (
            await connection.execute(
                select(func.count())
                .select_from(event_deliveries)
                .where(event_deliveries.c.status == "pending")
            )
        ).scalar_one()
    await database.dispose()
    return {
        "events": args.events,
        "delivered": sender.counts.delivered,
        "retried": sender.counts.retried,
        "pending_left": left,
        "seconds": round(elapsed, 3),
        "per_second": round(sender.counts.delivered / elapsed, 1),
        "database": database_url.split(":", 1)[0],
        "transport": args.transport,
        "batch": args.batch,
        "concurrency": args.concurrency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database-url", help="a migrated database (default: fresh SQLite)")
    parser.add_argument("--transport", choices=["pooled", "httpx"], default="pooled")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    receiver = multiprocessing.Process(target=serve, args=(sock,), daemon=True)
    receiver.start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            database_url = args.database_url or f"sqlite:///{directory}/events.sqlite3"
            if args.database_url is None:
                asyncio.run(migrate.upgrade(database_url))
            result = asyncio.run(drain(args, url, database_url))
    finally:
        receiver.terminate()
        receiver.join(5)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['delivered']} of {result['events']} events delivered in "
            f"{result['seconds']} s: {result['per_second']} deliveries/s "
            f"({result['database']}, {result['transport']} transport, batch {args.batch}, "
            f"{args.concurrency} in flight; {result['pending_left']} left pending)"
        )
    return 0 if result["pending_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
