"""Outgoing events end to end: a status callback to a running bridge reaches a
receiver that verifies it with the standardwebhooks library; two sender processes on
one PostgreSQL database deliver every event once to a counting receiver."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.events.outbox import Outbox
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries
from tests.helpers import in_thread, make_settings, post_signed, running_server

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class CountingReceiver:
    """A receiver that verifies each event, as an integrator's would, and counts ids."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.ids: Counter[str] = Counter()
        self.bodies: list[dict[str, object]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            verified = Webhook(SECRET).verify(body, dict(request.headers))
        except Exception:
            with self._lock:
                self.refused += 1
            return Response(status_code=400)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.ids[request.headers["webhook-id"]] += 1
            self.bodies.append(verified)
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[CountingReceiver, str]]:
    counting = CountingReceiver(delay=0.002)
    with running_server(counting.app) as base:
        yield counting, f"{base}/hook"


def wait_for(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_completed_call_reaches_the_receiver_signed(
    receiver: tuple[CountingReceiver, str], tmp_path: Path
) -> None:
    from tests.helpers import fresh_sqlite

    counting, url = receiver
    settings = make_settings(
        database_url=fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}"),
        events_webhook_urls=(url,),
        events_webhook_secrets=(Secret(SECRET),),
    )
    sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": sid,
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "CallDuration": "12",
        "Direction": "inbound",
        "From": "+14155550123",
        "To": "+14155550100",
        "AccountSid": "AC" + "a" * 32,
    }
    with TestClient(create_app(settings)) as client:
        assert post_signed(client, "/twilio/status", form).status_code < 300
        post_signed(client, "/twilio/status", form)  # Twilio's retry: no second event
        wait_for(lambda: sum(counting.ids.values()) >= 1)
        time.sleep(0.2)
    assert counting.refused == 0
    (body,) = counting.bodies
    assert body["type"] == "call.completed"
    data = body["data"]
    assert isinstance(data, dict)
    assert (data["call_sid"], data["status"], data["duration"]) == (sid, "completed", 12)
    assert list(counting.ids.values()) == [1]


SENDER = """
import asyncio, sys, time
from pathlib import Path
from bridge.events.sender import EventSender
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.webhook_signing import WebhookSigner

async def main(url, go, secret):
    while not Path(go).exists():
        await asyncio.sleep(0.01)
    database = Database(url)
    sender = EventSender(database, WebhookSigner([Secret(secret)]), batch=50)
    idle = 0
    while idle < 20:
        idle = 0 if await sender.run_once() else idle + 1
        await asyncio.sleep(0 if idle == 0 else 0.05)
    print(sender.counts.delivered)
    await sender.stop()
    await database.dispose()

asyncio.run(main(*sys.argv[1:]))
"""


def test_two_sender_processes_deliver_every_event_once(
    postgres_url: str, receiver: tuple[CountingReceiver, str], tmp_path: Path
) -> None:
    counting, url = receiver
    count = 600
    box = Outbox((url,))
    database = Database(postgres_url)
    ids: list[str] = []

    async def setup() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                event_deliveries.update()
                .where(event_deliveries.c.status == "pending")
                .values(status="failed")
            )
            for n in range(count):
                found = await box.enqueue(
                    connection, "call.completed", {"n": n}, dedupe_key=uuid.uuid4().hex
                )
                assert found is not None
                ids.append(found)
        await database.dispose()

    in_thread(lambda: asyncio.run(setup()))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, postgres_url, str(go), SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # both started and waiting
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    delivered = [int(out.decode().strip()) for out, _ in outputs]
    assert counting.refused == 0
    assert set(counting.ids) == set(ids)
    duplicates = sum(seen - 1 for seen in counting.ids.values())
    assert duplicates == 0
    assert sum(delivered) == count
    assert all(share > 0 for share in delivered), delivered

    async def pending() -> int:
        engine = await database.engine()
        async with engine.connect() as connection:
            found = (
                await connection.execute(
                    select(func.count())
                    .select_from(event_deliveries)
                    .where(event_deliveries.c.event_id.in_(ids))
                    .where(event_deliveries.c.status != "delivered")
                )
            ).scalar_one()
        await database.dispose()
        return int(found)

    left: list[int] = []
    in_thread(lambda: left.append(asyncio.run(pending())))
    assert left == [0]
