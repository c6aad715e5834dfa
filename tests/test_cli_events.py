"""`callbridge events [--failed]` and `callbridge events redeliver ID`, with the
bridge built in process from the environment (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update

from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.storage.tables import event_deliveries, event_endpoints, event_outbox
from tests.helpers import API_TOKEN, clear_settings_environment, run_cli

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    database = Database(database_url)

    async def empty() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(delete(event_endpoints))
            await connection.execute(delete(event_deliveries))
            await connection.execute(delete(event_outbox))
        await database.dispose()

    asyncio.run(empty())
    yield database
    asyncio.run(database.dispose())


def add(database: Database, *, failed: bool) -> str:
    async def write() -> str:
        engine = await database.engine()
        async with engine.begin() as connection:
            found = await Outbox(("https://crm.example/hook",), now=lambda: T0).enqueue(
                connection, "call.failed", {"call_sid": "CA9"}, dedupe_key=uuid.uuid4().hex
            )
            assert found is not None
            if failed:
                await connection.execute(
                    update(event_deliveries)
                    .where(event_deliveries.c.event_id == found)
                    .values(status="failed", attempts=8, last_error="timeout")
                )
        await database.dispose()
        return found

    return asyncio.run(write())


def statuses(database: Database, event_id: str) -> list[str]:
    async def read() -> list[str]:
        engine = await database.engine()
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(event_deliveries.c.status).where(event_deliveries.c.event_id == event_id)
            )
            found = [status for (status,) in rows]
        await database.dispose()
        return found

    return asyncio.run(read())


def test_events_lists_and_failed_narrows(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = add(database, failed=True)
    pending = add(database, failed=False)
    code, out, err = run_cli(capsys, "events")
    assert code == 0, err
    assert failed in out and pending in out
    code, out, err = run_cli(capsys, "events", "--failed")
    assert code == 0, err
    event_line, delivery_line = out.splitlines()
    assert event_line.split()[2:] == [failed, "call.failed", "CA9"]
    assert delivery_line.split() == [
        "failed",
        "attempts",
        "8",
        "last",
        "timeout",
        "https://crm.example/hook",
    ]
    code, out, err = run_cli(capsys, "events", "--status", "delivered")
    assert (code, out) == (0, "")
    assert "no events" in err


def test_events_json_and_pages(database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    add(database, failed=False)
    add(database, failed=False)
    code, out, err = run_cli(capsys, "events", "--json", "--limit", "1")
    assert code == 0, err
    assert '"type": "call.failed"' in out
    assert "--cursor" in err


def test_a_bad_type_is_a_usage_error(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "events", "--type", "call.exploded")
    assert (code, out) == (2, "")
    assert "type must be one of" in err


def test_redeliver(database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    event_id = add(database, failed=True)
    code, out, err = run_cli(capsys, "events", "redeliver", event_id)
    assert code == 0, err
    assert out.strip() == f"{event_id}: pending, to be sent again now"
    assert statuses(database, event_id) == ["pending"]
    code, out, err = run_cli(capsys, "events", "redeliver", "evt_missing")
    assert (code, out) == (1, "")
    assert "No event 'evt_missing'" in err


def test_events_warns_of_an_endpoint_a_410_disabled(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    add(database, failed=False)

    async def disable() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                insert(event_endpoints).values(url="https://crm.example/hook", disabled_at=T0)
            )
        await database.dispose()

    asyncio.run(disable())
    code, _, err = run_cli(capsys, "events")

    async def enable() -> None:
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(delete(event_endpoints))
        await database.dispose()

    asyncio.run(enable())  # the PostgreSQL database is shared by this process's tests
    assert code == 0, err
    assert "endpoint disabled (it answered 410)" in err
    assert "https://crm.example/hook" in err
    assert "callbridge events redeliver ID" in err
