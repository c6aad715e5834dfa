"""The sender on SQLite and PostgreSQL: events signed as any Standard Webhooks
receiver verifies them, the same bytes on every retry; a receiver down, slow, failing
then recovering, gone (410); a restart with pending events; giving up."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from standardwebhooks import Webhook

from bridge.events import outbox, schedule
from bridge.events.outbox import Outbox
from bridge.events.sender import EventSender, sender_for
from bridge.metrics import Metrics
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries, event_endpoints
from bridge.webhook_signing import WebhookSigner
from tests.helpers import free_port, make_settings

pytestmark = pytest.mark.anyio
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    # The PostgreSQL database is shared by this process's tests: what earlier tests
    # left pending is not this test's to deliver.
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            update(event_deliveries)
            .where(event_deliveries.c.status == "pending")
            .values(status="failed")
        )
        # Nor are the endpoints they disabled (a 410) disabled for this test.
        await connection.execute(delete(event_endpoints))
    yield database
    await database.dispose()


class Receiver:
    """A receiver answering with `answers` in turn (the last one from then on)."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers) or [204]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return httpx.Response(status)


def sender(
    database: Database,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **kwargs: Any,
) -> EventSender:
    transport = httpx.MockTransport(handler) if handler else None
    return EventSender(
        database, WebhookSigner([Secret(SECRET)]), transport=transport, poll=0.05, **kwargs
    )


async def enqueue(
    database: Database, urls: tuple[str, ...] = ("https://crm.example/hook",), **data: Any
) -> str:
    engine = await database.engine()
    async with engine.begin() as connection:
        found = await Outbox(urls).enqueue(
            connection, "call.completed", data, dedupe_key=uuid.uuid4().hex
        )
    assert found is not None
    return found


async def delivery(database: Database, event_id: str) -> Any:
    engine = await database.engine()
    async with engine.connect() as connection:
        return (
            await connection.execute(
                select(event_deliveries).where(event_deliveries.c.event_id == event_id)
            )
        ).one()


async def due_now(database: Database, event_id: str) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            update(event_deliveries)
            .where(event_deliveries.c.event_id == event_id)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_receiver_verifies_the_event_with_standardwebhooks(database: Database) -> None:
    receiver = Receiver(200)
    event_id = await enqueue(database, call_sid="CA1", status="completed")
    events = sender(database, receiver)
    assert await events.run_once() == 1
    await events.stop()
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event_id
    verified = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert verified["type"] == "call.completed"
    assert verified["data"] == {"call_sid": "CA1", "status": "completed"}
    row = await delivery(database, event_id)
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert row.delivered_at is not None


async def test_500_then_200_retries_with_the_same_bytes(database: Database) -> None:
    receiver = Receiver(500, 200)
    metrics = Metrics()
    event_id = await enqueue(database, n=1)
    events = sender(database, receiver, metrics=metrics, measure_every=0)
    started = datetime.now(UTC)
    await events.run_once()
    row = await delivery(database, event_id)
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "pending",
        1,
        500,
        "HTTP 500",
    )
    # The first retry within about 5 seconds.
    retry_at = row.next_attempt_at.replace(tzinfo=UTC)
    assert timedelta(seconds=4) <= retry_at - started <= timedelta(seconds=7)
    assert await events.run_once() == 0  # not due yet
    waiting = metrics.exposition(None)[0].decode()
    assert "callbridge_events_queue_depth 1.0" in waiting
    age = metrics.registry.get_sample_value("callbridge_events_oldest_pending_seconds")
    assert age is not None and 0 <= age < 60
    await due_now(database, event_id)
    await events.run_once()
    await events.stop()
    assert (await delivery(database, event_id)).status == "delivered"
    first, second = receiver.requests
    assert first.content == second.content
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    text = metrics.exposition(None)[0].decode()
    assert 'callbridge_events_total{result="retried"} 1.0' in text
    assert 'callbridge_events_total{result="delivered"} 1.0' in text
    assert "callbridge_events_queue_depth 0.0" in text


async def test_410_disables_the_endpoint(database: Database) -> None:
    gone, kept = f"https://gone.example/{uuid.uuid4().hex}", "https://kept.example/hook"
    receiver_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        receiver_calls.append(str(request.url))
        return httpx.Response(410 if str(request.url) == gone else 200)

    first = await enqueue(database, (gone, kept))
    events = sender(database, handler)
    await events.run_once()
    later = await enqueue(database, (gone, kept))
    await events.run_once()
    await events.stop()
    assert receiver_calls.count(gone) == 1
    assert receiver_calls.count(kept) == 2
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(
                event_deliveries.c.event_id, event_deliveries.c.endpoint, event_deliveries.c.status
            ).where(event_deliveries.c.event_id.in_([first, later]))
        )
        found = {(event_id, url): status for event_id, url, status in rows}
    assert found == {
        (first, gone): "disabled",
        (first, kept): "delivered",
        (later, gone): "disabled",
        (later, kept): "delivered",
    }


async def test_a_receiver_that_is_down_is_retried(database: Database) -> None:
    event_id = await enqueue(database, (f"http://127.0.0.1:{free_port()}/hook",))
    events = sender(database)
    await events.run_once()
    await events.stop()
    row = await delivery(database, event_id)
    assert (row.status, row.attempts, row.last_status, row.last_error) == (
        "pending",
        1,
        None,
        "ConnectError",
    )


async def test_a_slow_receiver_times_out_and_is_retried(database: Database) -> None:
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the sender gives up and closes
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    event_id = await enqueue(database, (f"http://127.0.0.1:{port}/hook",))
    events = sender(database, timeout=0.2)
    await events.run_once()
    await events.stop()
    server.close()
    await server.wait_closed()
    row = await delivery(database, event_id)
    assert (row.status, row.last_error) == ("pending", "timeout")


async def test_the_last_failure_gives_up(database: Database) -> None:
    receiver = Receiver(503)
    metrics = Metrics()
    event_id = await enqueue(database)
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            update(event_deliveries)
            .where(event_deliveries.c.event_id == event_id)
            .values(attempts=len(schedule.DELAYS))
        )
    events = sender(database, receiver, metrics=metrics)
    await events.run_once()
    await events.stop()
    row = await delivery(database, event_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "failed",
        len(schedule.DELAYS) + 1,
        None,
    )
    assert 'callbridge_events_total{result="failed"} 1.0' in metrics.exposition(None)[0].decode()


async def test_pending_events_are_delivered_after_a_restart(database: Database) -> None:
    receiver = Receiver(200)
    first = sender(database, receiver)
    first.start()
    await first.stop()  # the process stopped before the events were written
    ids = [await enqueue(database, n=n) for n in range(3)]
    second = sender(database, receiver)
    second.start()
    for _ in range(100):
        if len(receiver.requests) == 3:
            break
        await asyncio.sleep(0.02)
    await second.stop()
    assert sorted(request.headers["webhook-id"] for request in receiver.requests) == sorted(ids)


async def test_an_event_written_in_process_wakes_the_sender(database: Database) -> None:
    receiver = Receiver(200)
    events = EventSender(
        database,
        WebhookSigner([Secret(SECRET)]),
        transport=httpx.MockTransport(receiver),
        poll=30,
    )
    events.start()
    await asyncio.sleep(0.05)  # asleep until woken (or 30 s)
    await enqueue(database)
    outbox.notify()
    for _ in range(100):
        if receiver.requests:
            break
        await asyncio.sleep(0.02)
    await events.stop()
    assert len(receiver.requests) == 1


async def test_a_failing_run_is_logged_and_the_loop_goes_on(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    events = sender(database, Receiver(200))
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("database down")

    events.run_once = broken  # type: ignore[method-assign]
    events.start()
    for _ in range(100):
        if calls >= 2:
            break
        await asyncio.sleep(0.02)
    await events.stop()
    assert calls >= 2
    assert "event=events_send_failed" in caplog.text


def test_a_sender_only_with_urls_and_secrets() -> None:
    database = Database("sqlite://")
    assert sender_for(make_settings(), database) is None
    settings = make_settings(
        events_webhook_urls=("https://crm.example/hook",),
        events_webhook_secrets=(Secret(SECRET),),
    )
    assert isinstance(sender_for(settings, database), EventSender)


def test_bodies_are_compact_json() -> None:
    text = outbox.body_of("call.failed", datetime(2026, 1, 1, tzinfo=UTC), {"a": "é"})
    assert text == '{"type":"call.failed","timestamp":"2026-01-01T00:00:00Z","data":{"a":"é"}}'
    assert json.loads(text)["data"] == {"a": "é"}


async def test_two_senders_on_one_database_never_send_an_event_twice(
    database: Database, database_url: str
) -> None:
    from collections import Counter

    receiver = Receiver(200)
    ids = [await enqueue(database, n=n) for n in range(60)]
    other = Database(database_url)
    first, second = sender(database, receiver, batch=7), sender(other, receiver, batch=7)
    while sum(await asyncio.gather(first.run_once(), second.run_once())):
        pass
    await first.stop()
    await second.stop()
    await other.dispose()
    seen = Counter(request.headers["webhook-id"] for request in receiver.requests)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
    assert first.counts.delivered > 0 and second.counts.delivered > 0


@pytest.mark.parametrize(("grace", "stored"), [(5.0, "delivered"), (0.05, "pending")])
async def test_stopping_lets_the_batch_in_flight_finish(
    database: Database, grace: float, stored: str
) -> None:
    """A restart does not send again what was sent just before it (when the receiver
    answers within the grace), nor waits for a receiver that does not."""
    arrived = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.sleep(0.3)
        return httpx.Response(200)

    event_id = await enqueue(database)
    events = EventSender(
        database, WebhookSigner([Secret(SECRET)]), transport=httpx.MockTransport(slow), poll=30
    )
    events.start()
    await asyncio.wait_for(arrived.wait(), 5)
    await events.stop(grace=grace)
    assert (await delivery(database, event_id)).status == stored
