"""bridge.calllog.audio: the audio of one call, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from bridge.calllog.audio import CallAudio, audio_of_call, links
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def insert_rows(database: Database, table: Any, *rows: dict[str, Any]) -> None:
    engine = await database.engine()
    async with engine.begin() as connection:
        for row in rows:
            await connection.execute(insert(table).values(row))


async def add_call(database: Database, **values: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4().hex,
        "call_sid": "CA" + uuid.uuid4().hex,
        "direction": "inbound",
        "created_at": NOW,
        **values,
    }
    await insert_rows(database, calls, row)
    return row


def recording(call: dict[str, Any], status: str, kind: str, minutes: int) -> dict[str, Any]:
    sid = "RE" + uuid.uuid4().hex
    return {
        "recording_sid": sid,
        "call_id": call["id"],
        "call_sid": call["call_sid"],
        "kind": kind,
        "status": status,
        "duration": 42,
        "audio_name": f"recordings/{sid}.mp3" if status == "stored" else None,
        "audio_bytes": 1000 if status == "stored" else None,
        "audio_sha256": "c" * 64 if status == "stored" else None,
        "created_at": NOW + timedelta(minutes=minutes),
    }


def audio_event(call_id: str | None, conversation_id: str, full_audio: object) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "kind": "elevenlabs:post_call_audio",
        "at": NOW,
        "dedupe_key": f"elevenlabs:post_call_audio:{uuid.uuid4().hex}",
        "conversation_id": conversation_id,
        "data": {"data": {"conversation_id": conversation_id, "full_audio": full_audio}},
    }


async def test_an_unknown_call_has_none(database: Database) -> None:
    assert await audio_of_call(database, "CA" + uuid.uuid4().hex) is None
    assert await audio_of_call(database, "CA\x00") is None


async def test_a_call_without_audio_has_an_empty_list(database: Database) -> None:
    call = await add_call(database)
    assert await audio_of_call(database, call["call_sid"]) == []


async def test_post_call_audio_then_stored_recordings_in_order(database: Database) -> None:
    conversation = f"conv_{uuid.uuid4().hex}"
    name = f"post-call/{conversation}.mp3"
    call = await add_call(
        database,
        conversation_id=conversation,
        audio_path=name,
        audio_bytes=2000,
        audio_sha256="a" * 64,
    )
    later = recording(call, "stored", "recording", minutes=5)
    first = recording(call, "stored", "voicemail", minutes=1)
    pending = recording(call, "pending", "voicemail", minutes=2)
    await insert_rows(database, recordings, later, first, pending)
    # The event that put the audio on the call names it again: listed once.
    full = {"name": name, "bytes": 2000, "sha256": "a" * 64}
    await insert_rows(database, call_events, audio_event(call["id"], conversation, full))

    found = await audio_of_call(database, call["call_sid"])

    assert found == [
        CallAudio("post_call", name, 2000, "a" * 64),
        CallAudio("voicemail", first["audio_name"], 1000, "c" * 64, 42),
        CallAudio("recording", later["audio_name"], 1000, "c" * 64, 42),
    ]
    assert [item.file for item in found] == [
        f"{conversation}.mp3",
        f"{first['recording_sid']}.mp3",
        f"{later['recording_sid']}.mp3",
    ]
    # Found by the bridge's id and the conversation id too, as GET /calls/{key} does.
    assert await audio_of_call(database, call["id"]) == found
    assert await audio_of_call(database, conversation) == found


async def test_audio_of_a_conversation_not_yet_matched_and_from_before_the_store(
    database: Database,
) -> None:
    conversation = f"conv_{uuid.uuid4().hex}"
    call = await add_call(database, conversation_id=conversation)
    legacy = f"/srv/call-audio/{conversation}.mp3"
    await insert_rows(
        database,
        call_events,
        audio_event(None, conversation, {"path": legacy, "bytes": 5, "sha256": "b" * 64}),
        audio_event(None, conversation, {"error": "full_audio is not valid base64"}),
        audio_event(None, conversation, "not an object"),
    )
    found = await audio_of_call(database, call["call_sid"])
    assert found == [CallAudio("post_call", legacy, 5, "b" * 64)]
    assert found[0].file == f"{conversation}.mp3"


def test_links_point_at_the_audio_route() -> None:
    audio = [
        CallAudio("voicemail", "recordings/RE1.mp3", 10, "d" * 64, 75),
        CallAudio("post_call", "post-call/conv_1.mp3"),
    ]
    assert links("CA 1/2", audio) == [
        {
            "kind": "voicemail",
            "file": "RE1.mp3",
            "url": "/calls/CA%201%2F2/audio/RE1.mp3",
            "bytes": 10,
            "sha256": "d" * 64,
            "duration": 75,
        },
        {
            "kind": "post_call",
            "file": "conv_1.mp3",
            "url": "/calls/CA%201%2F2/audio/conv_1.mp3",
            "bytes": None,
            "sha256": None,
            "duration": None,
        },
    ]
