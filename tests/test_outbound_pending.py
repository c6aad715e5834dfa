"""bridge.outbound.pending: a Twilio-mode call's row, taken once, dropped when done."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bridge.outbound.pending import PendingCalls
from bridge.storage.database import Database

NOW = datetime.now(UTC)


@pytest.fixture
async def pending(database_url: str) -> AsyncIterator[PendingCalls]:
    database = Database(database_url)
    yield PendingCalls(database)
    await database.dispose()


async def add(pending: PendingCalls, age: timedelta = timedelta(0)) -> str:
    pending_id = uuid.uuid4().hex
    await pending.add(
        id=pending_id,
        agent_id="agent_a",
        from_number="+14155550100",
        to_number="+14155550123",
        client_data=None,
        on_machine="agent",
        created_at=NOW - age,
    )
    return pending_id


@pytest.mark.anyio
async def test_a_row_is_taken_once(pending: PendingCalls) -> None:
    pending_id = await add(pending)
    await pending.set_call_sid(pending_id, "CA1")
    row = await pending.take(pending_id)
    assert row is not None and (row.call_sid, row.agent_id) == ("CA1", "agent_a")
    assert await pending.take(pending_id) is None


@pytest.mark.anyio
async def test_forget_drops_the_call_and_what_is_too_old(pending: PendingCalls) -> None:
    sid = "CA" + uuid.uuid4().hex
    mine, old, other = (
        await add(pending),
        await add(pending, timedelta(hours=2)),
        await add(pending),
    )
    await pending.set_call_sid(mine, sid)
    await pending.forget(sid, created_before=NOW - timedelta(hours=1))
    assert [await pending.take(i) is None for i in (mine, old, other)] == [True, True, False]


@pytest.mark.anyio
async def test_drop(pending: PendingCalls) -> None:
    pending_id = await add(pending)
    await pending.drop(pending_id)
    assert await pending.take(pending_id) is None
