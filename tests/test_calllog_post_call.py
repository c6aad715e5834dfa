"""bridge.calllog.post_call: ElevenLabs' post-call webhooks into the call log, without HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.audio.files import FileAudioStore
from bridge.audio.opening import open_audio_store
from bridge.audio.store import AudioStore, AudioStoreError, StoredAudio
from bridge.calllog import post_call
from bridge.calllog.records import CallEnd, CallRecords
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def record(database: Database, payload: dict[str, Any], audio_dir: Path | AudioStore) -> Any:
    raw = json.dumps(payload).encode()
    store = FileAudioStore(audio_dir) if isinstance(audio_dir, Path) else audio_dir
    return await post_call.record(database, payload, raw, store=store, now=lambda: NOW)


async def placed_call(database: Database) -> tuple[str, str]:
    """A call the API placed; its (call SID, conversation id)."""
    sid, conversation = "CA" + uuid.uuid4().hex, f"conv_{uuid.uuid4().hex}"
    await CallRecords(database).record_placed(
        {"mode": "elevenlabs", "to": "+14155550123", "call_sid": sid},
        idempotency_key=None,
    )
    return sid, conversation


async def row(database: Database, sid: str) -> Any:
    engine = await database.engine()
    async with engine.connect() as connection:
        return (await connection.execute(select(calls).where(calls.c.call_sid == sid))).one()


@pytest.mark.parametrize(
    ("value", "stripped"),
    [
        (
            {"dynamic_variables": {"secret__pin": "1", "name": "Ada"}},
            {"dynamic_variables": {"name": "Ada"}},
        ),
        (
            [{"a": {"dynamic_variables": {"secret__x": 1}}}],
            [{"a": {"dynamic_variables": {}}}],
        ),
        ({"secret__pin": "1"}, {"secret__pin": "1"}),  # only in dynamic_variables
        ("text", "text"),
    ],
)
def test_secret_variables_are_stripped_wherever_they_are(value: Any, stripped: Any) -> None:
    assert post_call.strip_secret_variables(value) == stripped


@pytest.mark.anyio
async def test_a_transcription_found_by_call_sid_lands_on_the_call(
    database: Database, tmp_path: Path
) -> None:
    sid, conversation = await placed_call(database)
    payload = {
        "type": "post_call_transcription",
        "event_timestamp": 1739537297,
        "data": {
            "conversation_id": conversation,
            "metadata": {"phone_call": {"call_sid": sid}},
            "transcript": [{"role": "agent", "message": "Hello"}],
            "analysis": {"transcript_summary": " A short call. ", "call_successful": "success"},
        },
    }
    first = await record(database, payload, tmp_path)
    again = await record(database, payload, tmp_path)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.call_id == again.call_id is not None
    stored = await row(database, sid)
    assert (stored.conversation_id, stored.summary, stored.call_successful) == (
        conversation,
        "A short call.",
        "success",
    )
    assert stored.transcript == [{"role": "agent", "message": "Hello"}]


@pytest.mark.anyio
async def test_an_unmatched_event_is_kept_without_a_call(
    database: Database, tmp_path: Path
) -> None:
    conversation = f"conv_{uuid.uuid4().hex}"
    stored = await record(
        database, {"type": "something_new", "data": {"conversation_id": conversation}}, tmp_path
    )
    assert (stored.duplicate, stored.call_id) == (False, None)
    engine = await database.engine()
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                select(call_events).where(call_events.c.conversation_id == conversation)
            )
        ).one()
    assert (
        event.call_id,
        event.kind,
        event.dedupe_key.startswith("elevenlabs:something_new:body:"),
    ) == (
        None,
        "elevenlabs:something_new",
        True,
    )


def audio_payload(sid: str, conversation: str, audio: bytes) -> dict[str, Any]:
    return {
        "type": "post_call_audio",
        "event_timestamp": 1,
        "data": {
            "conversation_id": conversation,
            "metadata": {"call_sid": sid},
            "full_audio": base64.b64encode(audio).decode(),
        },
    }


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["file", "s3"])
async def test_audio_goes_into_the_store_and_the_call_keeps_its_name(
    database: Database, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    store = (
        FileAudioStore(tmp_path / "audio")
        if kind == "file"
        else open_audio_store(request.getfixturevalue("s3_server").settings())
    )
    sid, conversation = await placed_call(database)
    audio = b"ID3 not really an mp3"
    await record(database, audio_payload(sid, conversation, audio), store)
    stored = await row(database, sid)
    assert stored.audio_path == f"post-call/{conversation}.mp3"
    chunks = await store.read(stored.audio_path)
    assert chunks is not None and b"".join([chunk async for chunk in chunks]) == audio
    assert stored.audio_bytes == len(audio)
    assert stored.audio_sha256 == hashlib.sha256(audio).hexdigest()
    if kind == "file":
        assert (tmp_path / "audio" / "post-call" / f"{conversation}.mp3").read_bytes() == audio


class BrokenStore(FileAudioStore):
    async def put(self, name: str, audio: bytes, content_type: str = "audio/mpeg") -> StoredAudio:
        raise AudioStoreError("s3://bucket/p: could not store x: the endpoint is unreachable")


@pytest.mark.anyio
async def test_a_store_that_fails_keeps_the_event_and_says_what_was_lost(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sid, conversation = await placed_call(database)
    audio = b"ID3 lost audio"
    payload = audio_payload(sid, conversation, audio)
    event = await post_call.prepare(
        payload, json.dumps(payload).encode(), store=BrokenStore(tmp_path)
    )
    assert event.audio_lost
    stored = await event.store(CallRecords(database, now=lambda: NOW))
    assert not stored.duplicate
    call = await row(database, sid)
    assert call.audio_path is None and call.audio_bytes is None
    engine = await database.engine()
    async with engine.connect() as connection:
        data = (
            await connection.execute(
                select(call_events.c.data).where(call_events.c.conversation_id == conversation)
            )
        ).scalar_one()
    assert data["data"]["full_audio"] == {
        "error": "the audio store failed: s3://bucket/p: could not store x: "
        "the endpoint is unreachable",
        "bytes": len(audio),
        "sha256": hashlib.sha256(audio).hexdigest(),
    }
    assert "event=audio_store_failed" in caplog.text and conversation in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"failure_reason": "busy"}, "busy"),
        ({"reason": "no-answer"}, "no-answer"),
        ({}, "unknown"),
    ],
)
async def test_an_initiation_failure_fails_the_call(
    database: Database, tmp_path: Path, data: dict[str, str], error: str
) -> None:
    sid, _ = await placed_call(database)
    payload = {"type": "call_initiation_failure", "data": {"metadata": {"call_sid": sid}, **data}}
    await record(database, payload, tmp_path)
    stored = await row(database, sid)
    assert (stored.status, stored.error) == ("failed", error)


def native_transcription(
    conversation: str, sid: str, *, status: str = "done", direction: str = "outbound"
) -> dict[str, Any]:
    return {
        "type": "post_call_transcription",
        "event_timestamp": 1739537297,
        "data": {
            "conversation_id": conversation,
            "status": status,
            "transcript": [{"role": "agent", "message": "Hello"}],
            "metadata": {
                "start_time_unix_secs": 1739537255,
                "call_duration_secs": 42,
                "termination_reason": "end_call tool was called.",
                "phone_call": {
                    "direction": direction,
                    "phone_number_id": "phnum_1",
                    "agent_number": "+14155550100",
                    "external_number": "+14155550123",
                    "type": "twilio",
                    "call_sid": sid,
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("mode", "status", "direction", "expected", "numbers"),
    [
        ("elevenlabs", "done", "outbound", "completed", ("+14155550100", "+14155550123")),
        ("sip", "done", "inbound", "completed", ("+14155550123", "+14155550100")),
        ("elevenlabs", "failed", "outbound", "failed", ("+14155550100", "+14155550123")),
        ("elevenlabs", "processing", "outbound", None, ("+14155550100", "+14155550123")),
    ],
)
@pytest.mark.anyio
async def test_a_native_or_sip_call_completes_from_the_post_call_metadata(
    database: Database,
    tmp_path: Path,
    mode: str,
    status: str,
    direction: str,
    expected: str | None,
    numbers: tuple[str, str],
) -> None:
    sid, conversation = "CA" + uuid.uuid4().hex, f"conv_{uuid.uuid4().hex}"
    await CallRecords(database).record_placed(
        {"mode": mode, "call_sid": sid, "conversation_id": conversation}, idempotency_key=None
    )
    stored = await record(
        database,
        native_transcription(conversation, sid, status=status, direction=direction),
        tmp_path,
    )
    assert not stored.duplicate
    call = await row(database, sid)
    assert call.status == expected
    assert (call.from_number, call.to_number) == numbers
    assert call.duration == 42
    assert call.answered_at.timestamp() == 1739537255
    assert call.ended_at.timestamp() == 1739537255 + 42


@pytest.mark.anyio
async def test_the_metadata_never_moves_a_status_back_nor_overwrites_twilio(
    database: Database, tmp_path: Path
) -> None:
    sid, conversation = "CA" + uuid.uuid4().hex, f"conv_{uuid.uuid4().hex}"
    records = CallRecords(database)
    await records.record_placed(
        {"mode": "twilio", "call_sid": sid, "conversation_id": conversation, "to": "+1415"},
        idempotency_key=None,
    )
    await records.record_status(
        {"CallSid": sid, "CallStatus": "busy", "SequenceNumber": "2", "CallDuration": "0"}
    )
    await record(database, native_transcription(conversation, sid), tmp_path)
    call = await row(database, sid)
    assert (call.status, call.duration, call.to_number) == ("busy", 0, "+1415")


@pytest.mark.anyio
async def test_twilio_has_the_last_word_after_the_metadata(
    database: Database, tmp_path: Path
) -> None:
    sid, conversation = "CA" + uuid.uuid4().hex, f"conv_{uuid.uuid4().hex}"
    records = CallRecords(database)
    await records.record_placed(
        {"mode": "twilio", "call_sid": sid, "conversation_id": conversation}, idempotency_key=None
    )
    await record(database, native_transcription(conversation, sid), tmp_path)
    await records.record_status(
        {"CallSid": sid, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "47"}
    )
    call = await row(database, sid)
    assert (call.status, call.duration) == ("completed", 47)


@pytest.mark.anyio
async def test_a_transcription_is_stored_once_per_conversation_however_it_arrives(
    database: Database, tmp_path: Path
) -> None:
    sid, conversation = await placed_call(database)
    payload = native_transcription(conversation, sid)
    fetched = post_call.from_conversation(json.loads(json.dumps(payload["data"])))
    assert fetched.dedupe_key == f"elevenlabs:post_call_transcription:{conversation}"
    first = await fetched.store(CallRecords(database))
    payload["event_timestamp"] = 1739537999  # the webhook, later, with its own stamp
    late = await record(database, payload, tmp_path)
    assert (first.duplicate, late.duplicate) == (False, True)
    engine = await database.engine()
    async with engine.connect() as connection:
        events = (
            await connection.execute(
                select(call_events).where(call_events.c.conversation_id == conversation)
            )
        ).all()
    assert len(events) == 1
    assert events[0].data["source"] == "reconcile"


@pytest.mark.parametrize(
    ("data", "end"),
    [
        ({}, None),
        ({"metadata": "nonsense", "status": 5}, None),
        ({"metadata": {"call_duration_secs": True, "start_time_unix_secs": -1}}, None),
        ({"metadata": {"call_duration_secs": 1e300}}, None),
        (
            {"metadata": {"call_duration_secs": 7}},
            CallEnd(duration=7),
        ),
    ],
)
def test_odd_metadata_ends_nothing_it_cannot_read(data: dict[str, Any], end: Any) -> None:
    assert post_call.call_end(data) == end


def test_a_fetched_conversation_loses_its_secret_variables() -> None:
    conversation = {
        "conversation_id": "conv_secret",
        "status": "done",
        "conversation_initiation_client_data": {
            "dynamic_variables": {"secret__pin": "1234", "name": "Ada"}
        },
    }
    event = post_call.from_conversation(conversation)
    assert "1234" not in json.dumps(event.payload)
    assert event.payload["data"]["conversation_initiation_client_data"] == {
        "dynamic_variables": {"name": "Ada"}
    }
