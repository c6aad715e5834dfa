"""The outbox on SQLite and PostgreSQL: an event written once per cause, its body
fixed, a delivery per endpoint, claimed once, settled, disabled by 410, redelivered."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bridge.events import outbox
from bridge.events.outbox import Outbox, Outcome
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries, event_outbox
from tests.helpers import make_settings

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def endpoints() -> tuple[str, str]:
    # Unique per test: the PostgreSQL database is shared by the tests of a process.
    mark = uuid.uuid4().hex
    return (f"https://a.example/{mark}", f"https://b.example/{mark}")


async def enqueue(database: Database, box: Outbox, key: str, **data: Any) -> str | None:
    engine = await database.engine()
    async with engine.begin() as connection:
        return await box.enqueue(connection, "call.completed", data, dedupe_key=key)


async def deliveries(database: Database, event_id: str) -> list[Any]:
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(event_deliveries)
            .where(event_deliveries.c.event_id == event_id)
            .order_by(event_deliveries.c.endpoint)
        )
        return list(rows)


async def body(database: Database, event_id: str) -> str:
    engine = await database.engine()
    async with engine.connect() as connection:
        return str(
            (
                await connection.execute(
                    select(event_outbox.c.body).where(event_outbox.c.id == event_id)
                )
            ).scalar_one()
        )


async def test_an_event_is_written_once_per_cause_with_a_delivery_per_endpoint(
    database: Database,
) -> None:
    box = Outbox(endpoints(), now=lambda: NOW)
    key = f"final:{uuid.uuid4().hex}"
    event_id = await enqueue(database, box, key, call_sid="CA1", status="completed")
    assert event_id is not None and event_id.startswith("evt_") and len(event_id) == 36
    assert await enqueue(database, box, key, call_sid="CA1") is None
    rows = await deliveries(database, event_id)
    assert [(row.endpoint, row.status, row.attempts) for row in rows] == [
        (box.urls[0], "pending", 0),
        (box.urls[1], "pending", 0),
    ]
    assert json.loads(await body(database, event_id)) == {
        "type": "call.completed",
        "timestamp": "2026-12-02T10:00:00Z",
        "data": {"call_sid": "CA1", "status": "completed"},
    }


async def test_secret_variables_never_reach_a_body(database: Database) -> None:
    box = Outbox(endpoints(), now=lambda: NOW)
    event_id = await enqueue(
        database,
        box,
        uuid.uuid4().hex,
        variables={"name": "Ada", "secret__token": "s3cr3t"},
        items=[{"secret__pin": "1234", "ok": 1}],
        secret__top="x",
    )
    assert event_id is not None
    text = await body(database, event_id)
    assert "s3cr3t" not in text and "1234" not in text and "secret__" not in text
    assert json.loads(text)["data"] == {"variables": {"name": "Ada"}, "items": [{"ok": 1}]}


@pytest.mark.parametrize(
    ("types", "wanted"),
    [((), True), (("call.completed",), True), (("call.failed", "call.fallback"), False)],
)
async def test_events_types_narrow_what_is_written(
    database: Database, types: tuple[str, ...], wanted: bool
) -> None:
    box = Outbox(endpoints(), types=frozenset(types))
    written = await enqueue(database, box, uuid.uuid4().hex)
    assert (written is not None) is wanted


def test_an_outbox_only_with_urls() -> None:
    assert Outbox.from_settings(make_settings()) is None
    box = Outbox.from_settings(
        make_settings(
            events_webhook_urls=("https://crm.example/hook",),
            events_types=("call.failed",),
            public_base_url="https://bridge.example/",
        )
    )
    assert box is not None
    assert box.urls == ("https://crm.example/hook",)
    assert box.types == frozenset({"call.failed"})
    assert box.base_url == "https://bridge.example"


async def claim(database: Database, now: datetime, limit: int = 1000) -> list[outbox.Delivery]:
    engine = await database.engine()
    async with engine.begin() as connection:
        return await outbox.claim(
            connection, now=now, limit=limit, lease_until=now + timedelta(minutes=1)
        )


async def test_a_claimed_delivery_is_leased_then_due_again(database: Database) -> None:
    box = Outbox(endpoints(), now=lambda: NOW)
    event_id = await enqueue(database, box, uuid.uuid4().hex, n=1)
    assert event_id is not None
    mine = [item for item in await claim(database, NOW) if item.event_id == event_id]
    assert len(mine) == 2
    assert mine[0].body == await body(database, event_id)
    assert mine[0].event_type == "call.completed"
    # Leased: not due again until the lease is over (a sender that died mid-way).
    assert not [item for item in await claim(database, NOW) if item.event_id == event_id]
    later = NOW + timedelta(minutes=2)
    assert len([item for item in await claim(database, later) if item.event_id == event_id]) == 2


async def settle(database: Database, outcomes: list[Outcome], gone: list[str]) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        await outbox.settle(connection, outcomes, gone=gone)


async def test_settling_and_a_gone_endpoint_then_redelivering(database: Database) -> None:
    box = Outbox(endpoints(), now=lambda: NOW)
    first = await enqueue(database, box, uuid.uuid4().hex, n=1)
    second = await enqueue(database, box, uuid.uuid4().hex, n=2)
    assert first and second
    a, b = await deliveries(database, first)
    await settle(
        database,
        [
            Outcome(a.id, "delivered", 1, 204, None, None, NOW),
            Outcome(b.id, "disabled", 1, 410, None, None, None),
        ],
        gone=[b.endpoint],
    )
    assert [(row.status, row.last_status) for row in await deliveries(database, first)] == [
        ("delivered", 204),
        ("disabled", 410),
    ]
    # The other event's delivery to the gone endpoint is disabled too; a's is not.
    assert [row.status for row in await deliveries(database, second)] == ["pending", "disabled"]
    engine = await database.engine()
    async with engine.begin() as connection:
        assert await outbox.redeliver(connection, first, now=NOW)
        assert not await outbox.redeliver(connection, "evt_unknown", now=NOW)
    assert [(row.status, row.attempts) for row in await deliveries(database, first)] == [
        ("pending", 0),
        ("pending", 0),
    ]
    # Redelivering enabled the endpoint again: new events to it stay pending.
    third = await enqueue(database, box, uuid.uuid4().hex, n=3)
    assert third is not None
    async with engine.begin() as connection:
        await outbox.disable_gone(connection)
    assert [row.status for row in await deliveries(database, third)] == ["pending", "pending"]


async def test_a_settled_delivery_is_not_settled_again(database: Database) -> None:
    box = Outbox(endpoints()[:1], now=lambda: NOW)
    event_id = await enqueue(database, box, uuid.uuid4().hex)
    assert event_id is not None
    (row,) = await deliveries(database, event_id)
    await settle(database, [Outcome(row.id, "delivered", 1, 200, None, None, NOW)], [])
    # A slower sender that held the same delivery (its lease ran out) changes nothing.
    await settle(database, [Outcome(row.id, "pending", 1, 500, "HTTP 500", NOW, None)], [])
    (row,) = await deliveries(database, event_id)
    assert (row.status, row.last_status) == ("delivered", 200)


async def test_depth_counts_pending_deliveries(database: Database) -> None:
    engine = await database.engine()
    async with engine.connect() as connection:
        before = await outbox.depth(connection)
    box = Outbox(endpoints(), now=lambda: NOW)
    await enqueue(database, box, uuid.uuid4().hex)
    async with engine.connect() as connection:
        after = await outbox.depth(connection)
    assert after.pending == before.pending + 2
    assert after.oldest is not None
