"""Retention: old transcripts, analyses and recordings go; the call records stay."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from bridge.calllog import post_call
from bridge.calllog.retention import PRUNED, prune
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from tests.helpers import run_cli

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def add_call(database: Database, age: timedelta, audio: Path | None) -> str:
    call_id = uuid.uuid4().hex
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            insert(calls).values(
                id=call_id,
                call_sid="CA" + uuid.uuid4().hex,
                direction="inbound",
                created_at=NOW - age,
                status="completed",
                transcript=[{"role": "user", "message": "my card number is ..."}],
                analysis={"transcript_summary": "a caller"},
                summary="a caller",
                audio_path=str(audio) if audio else None,
            )
        )
        await connection.execute(
            insert(call_events).values(
                call_id=call_id,
                kind="elevenlabs:post_call_transcription",
                at=NOW - age,
                data={"data": {"transcript": ["..."]}},
            )
        )
    return call_id


@pytest.mark.anyio
async def test_prune_clears_personal_data_older_than_the_cutoff(
    database: Database, tmp_path: Path
) -> None:
    old_audio = tmp_path / "old.mp3"
    old_audio.write_bytes(b"ID3")
    new_audio = tmp_path / "new.mp3"
    new_audio.write_bytes(b"ID3")
    old = await add_call(database, timedelta(days=40), old_audio)
    new = await add_call(database, timedelta(days=5), new_audio)

    result = await prune(database, days=30, now=NOW)

    assert result.audio_files == 1
    assert not old_audio.exists() and new_audio.exists()
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = {
            row.id: row
            for row in await connection.execute(select(calls).where(calls.c.id.in_([old, new])))
        }
        events = {
            row.call_id: row.data
            for row in await connection.execute(
                select(call_events).where(call_events.c.call_id.in_([old, new]))
            )
        }
    assert rows[old].transcript is None and rows[old].summary is None
    assert rows[old].audio_path is None and rows[old].status == "completed"
    assert rows[new].transcript is not None and rows[new].audio_path == str(new_audio)
    assert events[old] == PRUNED and events[new] != PRUNED


def test_prune_command_needs_a_number_of_days(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "db", "prune")
    assert code == 2 and "RETENTION_DAYS" in err
    code, out, _ = run_cli(capsys, "db", "prune", "--days", "30")
    assert code == 0 and out.startswith("older than 30 days:")


def audio_webhook(conversation_id: str) -> dict[str, object]:
    return {
        "type": "post_call_audio",
        "event_timestamp": int(NOW.timestamp()),
        "data": {"conversation_id": conversation_id, "full_audio": "SUQz"},
    }


@pytest.mark.anyio
@pytest.mark.parametrize("with_a_call_record", [True, False], ids=["call", "api-call-no-record"])
async def test_prune_deletes_every_stored_audio_file(
    database: Database, tmp_path: Path, with_a_call_record: bool
) -> None:
    # /api/call conversations have no call record: the event is all that names the file.
    conversation_id = "conv_" + uuid.uuid4().hex
    if with_a_call_record:
        call_id = await add_call(database, timedelta(days=40), None)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                update(calls).where(calls.c.id == call_id).values(conversation_id=conversation_id)
            )
    payload = audio_webhook(conversation_id)
    await post_call.record(
        database,
        payload,
        json.dumps(payload).encode(),
        audio_dir=tmp_path,
        now=lambda: NOW - timedelta(days=40),
    )
    audio = tmp_path / f"{conversation_id}.mp3"
    assert audio.exists()

    result = await prune(database, days=30, now=NOW)

    assert result.audio_files == 1 and not audio.exists()
    engine = await database.engine()
    async with engine.connect() as connection:
        data = (
            await connection.execute(
                select(call_events.c.data).where(call_events.c.conversation_id == conversation_id)
            )
        ).scalar_one()
    assert data == PRUNED
