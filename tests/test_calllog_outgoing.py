"""Events about calls, written with the change that causes them (SQLite and
PostgreSQL): a final status, an analysis, a fallback, a transfer, a voicemail."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bridge.call import Answer, Call
from bridge.calllog import outgoing
from bridge.calllog.records import CallEnd, CallRecords
from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.storage.tables import calls, event_deliveries, event_outbox

pytestmark = pytest.mark.anyio
BASE = "https://bridge.example"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def records(database: Database, *types: str) -> CallRecords:
    box = Outbox(("https://crm.example/hook",), types=frozenset(types), base_url=BASE)
    return CallRecords(database, events=box)


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


async def events_of(database: Database, sid: str) -> list[tuple[str, dict[str, Any]]]:
    engine = await database.engine()
    async with engine.connect() as connection:
        call_id = (
            await connection.execute(select(calls.c.id).where(calls.c.call_sid == sid))
        ).scalar_one()
        rows = await connection.execute(
            select(event_outbox.c.type, event_outbox.c.body)
            .where(event_outbox.c.call_id == call_id)
            .order_by(event_outbox.c.created_at, event_outbox.c.type)
        )
        return [(kind, json.loads(body)["data"]) for kind, body in rows]


def status(sid: str, value: str, sequence: int, **more: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "CallStatus": value,
        "SequenceNumber": str(sequence),
        "Direction": "inbound",
        "From": "+14155550123",
        "To": "+14155550100",
        **more,
    }


async def test_a_completed_call_sends_its_final_record_once(database: Database) -> None:
    log, sid = records(database), new_sid()
    await log.record_answer(
        Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100"),
        Answer(
            "<Response/>",
            "sales",
            "agent",
            "connected",
            agent_id="agent_1",
            conversation_id="conv_1",
        ),
        kind="inbound",
    )
    await log.record_status(status(sid, "ringing", 1))
    assert await events_of(database, sid) == []
    await log.record_status(status(sid, "completed", 3, CallDuration="42"))
    await log.record_status(status(sid, "completed", 3, CallDuration="42"))  # a replay
    await log.record_status(status(sid, "completed", 4, CallDuration="42"))  # a later one
    ((kind, data),) = await events_of(database, sid)
    assert kind == "call.completed"
    assert data["call_sid"] == sid
    assert {key: data[key] for key in ("direction", "from", "to", "rule", "action")} == {
        "direction": "inbound",
        "from": "+14155550123",
        "to": "+14155550100",
        "rule": "sales",
        "action": "agent",
    }
    assert (data["status"], data["duration"], data["outcome"]) == ("completed", 42, "connected")
    assert (data["agent_id"], data["conversation_id"]) == ("agent_1", "conv_1")
    assert data["transcript"] is None and data["audio"] == []
    assert data["ended_at"].endswith("Z")


@pytest.mark.parametrize("final", ["busy", "no-answer", "failed", "canceled"])
async def test_a_call_that_did_not_connect_sends_call_failed(
    database: Database, final: str
) -> None:
    log, sid = records(database), new_sid()
    await log.record_status(status(sid, final, 2))
    ((kind, data),) = await events_of(database, sid)
    assert (kind, data["status"]) == ("call.failed", final)


async def test_events_types_and_no_outbox_write_nothing(database: Database) -> None:
    sid = new_sid()
    await records(database, "call.fallback").record_status(status(sid, "completed", 1))
    other = new_sid()
    await CallRecords(database).record_status(status(other, "completed", 1))
    assert await events_of(database, sid) == []
    assert await events_of(database, other) == []


async def test_the_transcript_comes_after_as_call_analyzed(database: Database) -> None:
    log, sid, conversation = records(database), new_sid(), f"conv_{uuid.uuid4().hex}"
    await log.record_placed(
        {"mode": "twilio", "call_sid": sid, "conversation_id": conversation, "to": "+1415"},
        idempotency_key=None,
    )
    await log.record_status(status(sid, "completed", 5))
    transcript = [{"role": "agent", "message": "Hello"}]
    analysis = {
        "data_collection_results": {"email": {"value": "a@example.com"}},
        "evaluation_criteria_results": {},
    }
    for _ in range(2):  # a replayed webhook adds nothing
        await log.record_elevenlabs_event(
            kind="post_call_transcription",
            dedupe_key=f"t:{conversation}",
            payload={},
            conversation_id=conversation,
            call_sid=None,
            changes={
                "transcript": transcript,
                "analysis": analysis,
                "summary": "Asked for a quote.",
                "call_successful": "success",
            },
        )
    found = dict(await events_of(database, sid))
    assert sorted(found) == ["call.analyzed", "call.completed"]
    first, second = found["call.completed"], found["call.analyzed"]
    assert first["transcript"] is None
    assert second["transcript"] == transcript
    assert second["summary"] == "Asked for a quote."
    assert second["call_successful"] == "success"
    assert second["data_collection_results"] == {"email": {"value": "a@example.com"}}


async def test_a_native_call_completes_from_the_metadata(database: Database) -> None:
    log, sid, conversation = records(database), new_sid(), f"conv_{uuid.uuid4().hex}"
    await log.record_placed(
        {"mode": "elevenlabs", "call_sid": sid, "conversation_id": conversation},
        idempotency_key=None,
    )
    await log.record_elevenlabs_event(
        kind="post_call_transcription",
        dedupe_key=f"t:{conversation}",
        payload={},
        conversation_id=conversation,
        call_sid=None,
        changes={"transcript": [{"role": "user", "message": "Hi"}]},
        end=CallEnd(status="completed", duration=7),
    )
    found = await events_of(database, sid)
    assert sorted(kind for kind, _ in found) == ["call.analyzed", "call.completed"]
    assert all(data["transcript"] == [{"role": "user", "message": "Hi"}] for _, data in found)


async def test_an_initiation_failure_sends_call_failed(database: Database) -> None:
    log, sid, conversation = records(database), new_sid(), f"conv_{uuid.uuid4().hex}"
    await log.record_placed(
        {"mode": "elevenlabs", "call_sid": sid, "conversation_id": conversation},
        idempotency_key=None,
    )
    await log.record_elevenlabs_event(
        kind="call_initiation_failure",
        dedupe_key=f"f:{conversation}",
        payload={},
        conversation_id=conversation,
        call_sid=None,
        changes={},
        failure="busy",
    )
    ((kind, data),) = await events_of(database, sid)
    assert (kind, data["status"], data["error"]) == ("call.failed", "failed", "busy")


async def test_fallback_and_transfer_steps(database: Database) -> None:
    log, sid = records(database), new_sid()
    await log.record_step(
        sid, "fallback", {"action": "agent", "reason": "upstream_timeout"}, dedupe_key=f"fb:{sid}"
    )
    await log.record_step(
        sid, "fallback", {"action": "agent", "reason": "upstream_timeout"}, dedupe_key=f"fb:{sid}"
    )
    await log.record_step(sid, "transfer", {"to": "+14155550199"}, dedupe_key=f"tr:{sid}")
    await log.record_step(sid, "dial_result", {"status": "busy"}, dedupe_key=f"d:{sid}")
    found = await events_of(database, sid)
    assert sorted(kind for kind, _ in found) == ["call.fallback", "call.transferred"]
    data = dict(found)
    assert data["call.fallback"]["reason"] == "upstream_timeout"
    assert data["call.fallback"]["call_sid"] == sid
    assert data["call.transferred"]["to"] == "+14155550199"


@dataclass
class Entry:
    call: Call
    answer: Answer
    kind: str
    at: datetime
    token: str


async def test_a_batched_fallback_answer_sends_call_fallback(database: Database) -> None:
    log, sid = records(database), new_sid()
    entry = Entry(
        Call(call_sid=sid, from_number="+14155550123", to_number="+14155550100"),
        Answer("<Response/>", "sales", "agent", "fallback", reason="upstream_5xx"),
        "inbound",
        datetime.now(UTC),
        uuid.uuid4().hex,
    )
    await log.record_answers([entry])
    await log.record_answers([entry])  # written twice: once
    ((kind, data),) = await events_of(database, sid)
    assert (kind, data["reason"], data["rule"], data["from"]) == (
        "call.fallback",
        "upstream_5xx",
        "sales",
        "+14155550123",
    )


async def test_a_voicemail_is_sent_once_stored_with_its_link(database: Database) -> None:
    log, sid = records(database), new_sid()
    recording = "RE" + uuid.uuid4().hex
    step = {"recording_sid": recording, "duration": 9}
    await log.record_step(
        sid, "voicemail", {**step, "status": "completed"}, dedupe_key=f"r:{recording}:completed"
    )
    assert await events_of(database, sid) == []
    audio = {"name": f"recordings/{recording}.mp3", "bytes": 100, "sha256": "ab" * 32}
    for _ in range(2):
        await log.record_step(
            sid,
            "voicemail",
            {**step, "status": "stored", "audio": audio},
            dedupe_key=f"r:{recording}:stored",
        )
    ((kind, data),) = await events_of(database, sid)
    assert kind == "call.voicemail"
    assert data["recording_sid"] == recording
    assert data["audio"]["url"] == f"{BASE}/calls/{sid}/audio/{recording}.mp3"
    assert data["audio"]["duration"] == 9


async def test_a_voicemail_given_up_on_is_sent_without_audio(database: Database) -> None:
    log, sid = records(database), new_sid()
    recording = "RE" + uuid.uuid4().hex
    await log.record_step(
        sid,
        "voicemail",
        {"recording_sid": recording, "status": "failed", "error": "HTTP 404"},
        dedupe_key=f"r:{recording}:failed",
    )
    ((kind, data),) = await events_of(database, sid)
    assert (kind, data["audio"], data["error"]) == ("call.voicemail", None, "HTTP 404")


async def test_each_event_has_a_delivery_per_endpoint(database: Database) -> None:
    box = Outbox(("https://a.example/h", "https://b.example/h"))
    sid = new_sid()
    await CallRecords(database, events=box).record_status(status(sid, "completed", 1))
    engine = await database.engine()
    async with engine.connect() as connection:
        call_id = (
            await connection.execute(select(calls.c.id).where(calls.c.call_sid == sid))
        ).scalar_one()
        endpoints = await connection.execute(
            select(event_deliveries.c.endpoint)
            .join(event_outbox, event_outbox.c.id == event_deliveries.c.event_id)
            .where(event_outbox.c.call_id == call_id)
        )
        assert sorted(url for (url,) in endpoints) == list(box.urls)


def test_final_types() -> None:
    assert outgoing.final_type("completed") == "call.completed"
    assert outgoing.final_type("busy") == "call.failed"


async def test_a_call_not_placed_sends_call_failed(database: Database) -> None:
    to = "+1415" + uuid.uuid4().hex[:7]
    log = records(database)
    assert await log.record_not_placed(
        to=to, mode="twilio", agent_id="agent_1", status=400, reason="invalid number"
    )
    assert not await records(database, "call.completed").record_not_placed(
        to=to, mode="twilio", agent_id=None, status=400, reason="invalid number"
    )
    assert not await CallRecords(database).record_not_placed(
        to=to, mode="twilio", agent_id=None, status=400, reason="invalid number"
    )
    engine = await database.engine()
    async with engine.connect() as connection:
        bodies = [
            json.loads(body)
            for (body,) in await connection.execute(
                select(event_outbox.c.body).where(event_outbox.c.body.contains(to))
            )
        ]
    ((body),) = bodies
    assert body["type"] == "call.failed"
    assert body["data"] == {
        "call_id": None,
        "call_sid": None,
        "direction": "outbound",
        "to": to,
        "mode": "twilio",
        "agent_id": "agent_1",
        "status": "not-placed",
        "error": "invalid number",
        "http_status": 400,
    }


async def test_retention_deletes_outgoing_events_before_the_cutoff(database: Database) -> None:
    from datetime import timedelta

    old, new = new_sid(), new_sid()
    past = datetime(2020, 1, 1, tzinfo=UTC)
    box = Outbox(("https://crm.example/hook",), now=lambda: past)
    await CallRecords(database, events=box, now=lambda: past).record_status(
        status(old, "completed", 1)
    )
    await records(database).record_status(status(new, "completed", 1))
    cleared = await CallRecords(database).clear_personal_data(
        past + timedelta(days=1), events_become={"pruned": True}
    )
    assert cleared.outgoing_events >= 1
    assert await events_of(database, old) == []
    assert [kind for kind, _ in await events_of(database, new)] == ["call.completed"]


@pytest.mark.parametrize("types", [None, ("call.failed",)])
async def test_unwanted_steps_and_analyses_write_nothing(
    database: Database, types: tuple[str, ...] | None
) -> None:
    log = CallRecords(database) if types is None else records(database, *types)
    sid, conversation = new_sid(), f"conv_{uuid.uuid4().hex}"
    await log.record_placed(
        {"mode": "twilio", "call_sid": sid, "conversation_id": conversation}, idempotency_key=None
    )
    await log.record_step(sid, "fallback", {"reason": "x"}, dedupe_key=f"fb:{sid}")
    await log.record_status(status(sid, "completed", 2))
    await log.record_elevenlabs_event(
        kind="post_call_transcription",
        dedupe_key=f"t:{conversation}",
        payload={},
        conversation_id=conversation,
        call_sid=None,
        changes={"transcript": []},
    )
    assert await events_of(database, sid) == []
