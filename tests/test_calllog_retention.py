"""Retention: old transcripts, analyses and recordings go; the call records stay."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from bridge.audio import names
from bridge.audio.files import FileAudioStore
from bridge.audio.opening import open_audio_store
from bridge.audio.store import AudioStore
from bridge.calllog import post_call
from bridge.calllog.retention import PRUNED, prune
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings
from tests.helpers import S3Server, free_port, fresh_sqlite, run_cli

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


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AudioStore:
    if request.param == "file":
        return FileAudioStore(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return open_audio_store(server.settings())


@pytest.mark.anyio
@pytest.mark.parametrize("store_kind", ["file", "s3"])
async def test_prune_clears_personal_data_older_than_the_cutoff(
    database: Database, tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    # Files written before the audio store: calls kept their absolute paths, and those
    # files go whatever the store is now.
    store = (
        FileAudioStore(tmp_path)
        if store_kind == "file"
        else open_audio_store(request.getfixturevalue("s3_server").settings())
    )
    old_audio = tmp_path / "old.mp3"
    old_audio.write_bytes(b"ID3")
    new_audio = tmp_path / "new.mp3"
    new_audio.write_bytes(b"ID3")
    old = await add_call(database, timedelta(days=40), old_audio)
    new = await add_call(database, timedelta(days=5), new_audio)

    result = await prune(database, store=store, days=30, now=NOW)

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
    database: Database, store: AudioStore, with_a_call_record: bool
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
        store=store,
        now=lambda: NOW - timedelta(days=40),
    )
    name = names.post_call_audio(conversation_id, "")
    assert await store.size(name) == 3

    result = await prune(database, store=store, days=30, now=NOW)

    assert result.audio_files == 1 and await store.size(name) is None
    engine = await database.engine()
    async with engine.connect() as connection:
        data = (
            await connection.execute(
                select(call_events.c.data).where(call_events.c.conversation_id == conversation_id)
            )
        ).scalar_one()
    assert data == PRUNED


async def add_recording(database: Database, store: AudioStore, age: timedelta) -> str:
    call_id = await add_call(database, age, None)
    sid = "RE" + uuid.uuid4().hex
    stored = await store.put(names.recording(sid), b"a voicemail")
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(
            insert(recordings).values(
                recording_sid=sid,
                call_id=call_id,
                kind="voicemail",
                status="stored",
                duration=42,
                audio_name=stored.name,
                audio_bytes=stored.bytes,
                audio_sha256=stored.sha256,
                transcription="call me back at ...",
                created_at=NOW - age,
            )
        )
    return sid


@pytest.mark.anyio
async def test_prune_deletes_old_recordings_from_the_store(
    database: Database, store: AudioStore
) -> None:
    old = await add_recording(database, store, timedelta(days=40))
    new = await add_recording(database, store, timedelta(days=5))

    result = await prune(database, store=store, days=30, now=NOW)

    assert result.audio_files == 1 and result.recordings == 1
    assert await store.size(names.recording(old)) is None
    assert await store.size(names.recording(new)) == len(b"a voicemail")
    engine = await database.engine()
    async with engine.connect() as connection:
        rows = {
            row.recording_sid: row
            for row in await connection.execute(
                select(recordings).where(recordings.c.recording_sid.in_([old, new]))
            )
        }
    assert rows[old].audio_name is None and rows[old].transcription is None
    assert (rows[old].status, rows[old].duration) == ("stored", 42)
    assert rows[new].audio_name == names.recording(new)
    assert rows[new].transcription is not None


def test_prune_command_deletes_from_the_configured_store(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    settings = s3_server.settings()
    database_url = fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIO_STORE", settings.audio_store)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", settings.aws_access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", settings.aws_secret_access_key.reveal())
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    code, out, _ = run_cli(capsys, "db", "prune", "--days", "30")
    assert code == 0 and f"deleted from {settings.audio_store}," in out

    async def old_call_with_audio() -> None:
        database = Database(database_url)
        call_id = await add_call(database, timedelta(days=400), None)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                update(calls)
                .where(calls.c.id == call_id)
                .values(audio_path=names.post_call_audio("conv_old", ""))
            )
        await database.dispose()

    asyncio.run(old_call_with_audio())
    # The store unreachable: the command fails, saying so, with no secret in the words.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    code, out, err = run_cli(capsys, "db", "prune", "--days", "30")
    assert code == 1 and "unreachable" in err and "run it again" in err
    assert settings.aws_secret_access_key.reveal() not in out + err


@pytest.mark.anyio
async def test_prune_needs_a_day_and_skips_files_already_gone(tmp_path: Path) -> None:
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    database = Database(url)
    store = FileAudioStore(tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        await prune(database, store=store, days=0, now=NOW)
    await add_call(database, timedelta(days=40), tmp_path / "gone-already.mp3")
    result = await prune(database, store=store, days=30, now=NOW)
    assert (result.calls, result.audio_files) == (1, 0)
    await database.dispose()
