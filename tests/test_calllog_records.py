"""The call log on SQLite and PostgreSQL: records, events, out-of-order and duplicate
status callbacks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bridge.call import Answer, Call
from bridge.calllog.records import CallRecords
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls

pytestmark = pytest.mark.anyio


@pytest.fixture
async def records(database_url: str) -> AsyncIterator[CallRecords]:
    database = Database(database_url)
    yield CallRecords(database)
    await database.dispose()


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


async def row(records: CallRecords, sid: str) -> Any:
    engine = await records.database.engine()
    async with engine.connect() as connection:
        return (await connection.execute(select(calls).where(calls.c.call_sid == sid))).one()


async def events(records: CallRecords, call_id: str) -> list[Any]:
    engine = await records.database.engine()
    async with engine.connect() as connection:
        result = await connection.execute(
            select(call_events).where(call_events.c.call_id == call_id).order_by(call_events.c.id)
        )
        return list(result)


async def test_an_inbound_answer_is_recorded(records: CallRecords) -> None:
    sid = new_sid()
    call = Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100")
    answer = Answer(
        "<Response/>",
        rule="vip",
        action="agent",
        outcome="connected",
        agent_id="agent_vip",
        upstream_status=200,
        upstream_latency=0.151,
        attempts=1,
        conversation_id="conv_1",
    )
    await records.record_answer(call, answer, kind="inbound")
    record = await row(records, sid)
    assert (record.direction, record.rule, record.action, record.outcome) == (
        "inbound",
        "vip",
        "agent",
        "connected",
    )
    assert (record.agent_id, record.conversation_id) == ("agent_vip", "conv_1")
    (event,) = await events(records, record.id)
    assert event.kind == "inbound"
    assert event.data["upstream_ms"] == 151.0 and event.data["upstream_status"] == 200


STATUS_ORDERS = [
    pytest.param(["initiated", "ringing", "in-progress", "completed"], id="in-order"),
    pytest.param(["ringing", "completed", "in-progress", "initiated"], id="shuffled"),
    pytest.param(["completed", "completed", "ringing", "ringing"], id="duplicates"),
]
SEQUENCE = {"initiated": 0, "ringing": 1, "in-progress": 2, "completed": 3}


@pytest.mark.parametrize("order", STATUS_ORDERS)
async def test_status_never_moves_backwards(records: CallRecords, order: list[str]) -> None:
    sid = new_sid()
    fresh = []
    for status in order:
        form = {
            "CallSid": sid,
            "CallStatus": status,
            "SequenceNumber": str(SEQUENCE[status]),
            "Direction": "outbound-api",
            "To": "+14155550123",
        }
        if status == "completed":
            form["CallDuration"] = "42"
        fresh.append(await records.record_status(form))
    record = await row(records, sid)
    assert record.status == "completed"
    assert record.duration == 42 and record.ended_at is not None
    stored = await events(records, record.id)
    assert len(stored) == len(set(order)) == fresh.count(True)


async def test_a_placed_call_then_its_callbacks_share_one_record(records: CallRecords) -> None:
    sid = new_sid()
    await records.record_placed(
        {
            "mode": "twilio",
            "to": "+14155550123",
            "agent_id": "a",
            "call_sid": sid,
            "status": "queued",
        },
        idempotency_key="k1",
    )
    await records.record_status({"CallSid": sid, "CallStatus": "ringing", "SequenceNumber": "1"})
    record = await row(records, sid)
    assert (record.direction, record.mode, record.idempotency_key, record.status) == (
        "outbound",
        "twilio",
        "k1",
        "ringing",
    )
    assert [event.kind for event in await events(records, record.id)] == ["placed", "status"]


async def test_a_status_callback_fills_in_numbers_the_record_lacks(records: CallRecords) -> None:
    sid = new_sid()
    # POST /calls knows the callee; the caller ID is Twilio's to report.
    await records.record_placed(
        {"mode": "twilio", "to": "+14155550123", "agent_id": "a", "call_sid": sid},
        idempotency_key=None,
    )
    await records.record_status(
        {
            "CallSid": sid,
            "CallStatus": "ringing",
            "SequenceNumber": "1",
            "From": "+14155550100",
            "To": "+14155550999",  # never overwrites what is already known
        }
    )
    record = await row(records, sid)
    assert (record.from_number, record.to_number) == ("+14155550100", "+14155550123")


async def test_a_status_callback_from_a_twilio_client_caller_is_stored(
    records: CallRecords,
) -> None:
    sid = new_sid()
    caller = "client:" + "b" * 121  # longer than the column: PostgreSQL would refuse it
    assert await records.record_status(
        {"CallSid": sid, "CallStatus": "ringing", "Direction": "inbound", "From": caller}
    )
    assert (await row(records, sid)).from_number == caller[:64]


@pytest.mark.anyio
async def test_steps_of_a_new_call_arriving_at_once_make_one_record(records: CallRecords) -> None:
    # Callbacks for a call the log has not seen yet race to create its record: one
    # wins, the others find it; every step is kept once, a replayed one not again.
    sid = new_sid()
    steps = [
        records.record_step(sid, "dial", {"n": n}, dedupe_key=f"{sid}:dial:{n}") for n in range(8)
    ]
    assert await asyncio.gather(*steps) == [True] * 8
    assert not await records.record_step(sid, "dial", {"n": 0}, dedupe_key=f"{sid}:dial:0")
    found = await row(records, sid)
    assert sorted(event.data["n"] for event in await events(records, found.id)) == list(range(8))
    engine = await records.database.engine()
    async with engine.connect() as connection:
        count = (await connection.execute(select(calls.c.id).where(calls.c.call_sid == sid))).all()
    assert len(count) == 1
