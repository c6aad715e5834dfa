"""Recordings from the (fake) Twilio into a file audio store, on SQLite and PostgreSQL:
stored once with size and SHA-256, retried with backoff, deleted at Twilio when asked,
never fetched twice at once."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from bridge.audio.files import FileAudioStore
from bridge.audio.store import AudioStoreError, StoredAudio
from bridge.calllog.records import CallRecords
from bridge.fakes import FakeTwilio
from bridge.fakes.twilio_recordings import FakeRecording
from bridge.recordings.callback import RecordingCallback
from bridge.recordings.fetcher import Backoff, RecordingFetcher, retry_due_recordings
from bridge.recordings.rows import RecordingRows
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings
from bridge.twilio.recordings import TwilioRecordings
from tests.helpers import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.anyio

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
BACKOFF = Backoff(first=5, longest=60, attempts=3, after_giving_up=3600, hold=120)


@dataclass
class World:
    database: Database
    fake: FakeTwilio
    store: FileAudioStore
    fetcher: RecordingFetcher
    clock: list[datetime]
    counted: list[tuple[str, str]] = field(default_factory=list)

    def tick(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)

    async def row(self, sid: str) -> Any:
        engine = await self.database.engine()
        async with engine.connect() as connection:
            return (
                await connection.execute(
                    select(recordings).where(recordings.c.recording_sid == sid)
                )
            ).one()

    async def events(self, sid: str) -> list[Any]:
        engine = await self.database.engine()
        async with engine.connect() as connection:
            found = await connection.execute(
                select(call_events)
                .where(call_events.c.dedupe_key.like(f"recording:{sid}:%"))
                .order_by(call_events.c.id)
            )
            return list(found)

    def recording(self, kind: str = "voicemail") -> tuple[FakeRecording, RecordingCallback]:
        recording = self.fake.recordings.add("CA" + uuid.uuid4().hex, audio=uuid.uuid4().bytes * 50)
        callback = RecordingCallback(
            recording_sid=recording.sid,
            call_sid=recording.call_sid,
            kind=kind,
            status="completed",
            duration=recording.duration,
            channels=recording.channels,
            source=recording.source,
        )
        return recording, callback


def make_fetcher(
    database: Database,
    fake: FakeTwilio,
    store: Any,
    clock: list[datetime],
    counted: list[tuple[str, str]],
    *,
    delete: bool = False,
) -> RecordingFetcher:
    twilio = TwilioRecordings(
        account_sid=ACCOUNT_SID,
        auth_token=Secret(AUTH_TOKEN),
        api_base="http://twilio.test",
        transport=httpx.ASGITransport(app=fake.app),
    )
    return RecordingFetcher(
        rows=RecordingRows(database),
        records=CallRecords(database, now=lambda: clock[0]),
        store=store,
        twilio=twilio,
        delete_at_twilio=delete,
        backoff=BACKOFF,
        count=lambda kind, result: counted.append((kind, result)),
        now=lambda: clock[0],
    )


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    database = Database(database_url)
    # PostgreSQL's database is the test process's: start with no recordings due.
    engine = await database.engine()
    async with engine.begin() as connection:
        await connection.execute(delete(recordings))
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    store = FileAudioStore(tmp_path / "audio")
    clock = [START]
    counted: list[tuple[str, str]] = []
    fetcher = make_fetcher(database, fake, store, clock, counted)
    yield World(database, fake, store, fetcher, clock, counted)
    await database.dispose()


async def test_completed_recording_is_stored_with_size_and_digest(world: World) -> None:
    recording, callback = world.recording()
    assert await world.fetcher.record_callback(callback) is True
    row = await world.row(recording.sid)
    assert (row.status, row.kind, row.attempts) == ("pending", "voicemail", 0)

    assert await world.fetcher.fetch(recording.sid) == "stored"

    row = await world.row(recording.sid)
    digest = hashlib.sha256(recording.audio).hexdigest()
    assert row.status == "stored" and row.next_attempt_at is None
    assert (row.audio_name, row.audio_bytes, row.audio_sha256) == (
        f"recordings/{recording.sid}.mp3",
        len(recording.audio),
        digest,
    )
    assert row.call_id is not None and row.deleted_from_twilio_at is None
    assert (
        world.store.root / "recordings" / f"{recording.sid}.mp3"
    ).read_bytes() == recording.audio
    # Fetched with the account's Basic auth, from TWILIO_API_BASE, by the checked SID.
    (request,) = world.fake.requests
    assert (request.method, request.path) == (
        "GET",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording.sid}.mp3",
    )
    events = await world.events(recording.sid)
    assert [(event.kind, event.data["status"]) for event in events] == [
        ("voicemail", "completed"),
        ("voicemail", "stored"),
    ]
    assert events[0].data == {
        "recording_sid": recording.sid,
        "status": "completed",
        "duration": 4,
        "channels": 1,
        "source": "RecordVerb",
    }
    assert events[1].data["audio"] == {
        "name": f"recordings/{recording.sid}.mp3",
        "bytes": len(recording.audio),
        "sha256": digest,
    }
    assert {event.call_id for event in events} == {row.call_id}
    assert world.counted == [("voicemail", "fetched")]

    # Done: nothing is due, a replayed callback and a second fetch change nothing.
    assert await world.fetcher.fetch(recording.sid) == "not_due"
    await world.fetcher.record_callback(callback)
    assert len(await world.events(recording.sid)) == 2
    assert recording.downloads == 1


async def test_recording_of_a_known_call_joins_it(world: World) -> None:
    recording, callback = world.recording(kind="recording")
    await world.fetcher.records.record_step(
        recording.call_sid, "placed", {}, dedupe_key=f"placed:{recording.call_sid}"
    )
    await world.fetcher.record_callback(callback)
    engine = await world.database.engine()
    async with engine.connect() as connection:
        call = (
            await connection.execute(select(calls).where(calls.c.call_sid == recording.call_sid))
        ).one()
    assert (await world.row(recording.sid)).call_id == call.id
    assert [event.kind for event in await world.events(recording.sid)] == ["recording"]


@pytest.mark.parametrize("status", ["absent", "failed"])
async def test_a_recording_without_audio_is_kept_and_never_fetched(
    world: World, status: str
) -> None:
    recording, callback = world.recording()
    callback = dataclasses.replace(callback, status=status, duration=None)
    assert await world.fetcher.record_callback(callback) is False
    row = await world.row(recording.sid)
    assert (row.status, row.next_attempt_at) == ("absent", None)
    assert status in row.last_error
    assert await world.fetcher.retry_due_recordings() == 0
    assert [event.data["status"] for event in await world.events(recording.sid)] == [status]
    assert world.fake.requests == []


async def test_deleted_at_twilio_once_stored(world: World, tmp_path: Path) -> None:
    world.fetcher.delete_at_twilio = True
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    assert await world.fetcher.fetch(recording.sid) == "deleted"
    row = await world.row(recording.sid)
    assert row.status == "stored" and row.deleted_from_twilio_at is not None
    assert row.next_attempt_at is None
    assert recording.deleted
    assert [(r.method, r.path.rsplit(".", 1)[1]) for r in world.fake.requests] == [
        ("GET", "mp3"),
        ("DELETE", "json"),
    ]
    assert world.counted == [("voicemail", "fetched"), ("voicemail", "deleted")]


async def test_a_failed_deletion_is_retried_and_the_audio_kept(world: World) -> None:
    world.fetcher.delete_at_twilio = True
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    world.fake.recordings.script = ["ok", "status:503"]  # the download, then the DELETE
    assert await world.fetcher.fetch(recording.sid) == "retry"
    row = await world.row(recording.sid)
    assert row.status == "stored" and row.deleted_from_twilio_at is None
    assert "503" in row.last_error and not recording.deleted

    world.tick(BACKOFF.delay(1))
    assert await world.fetcher.retry_due_recordings() == 1
    row = await world.row(recording.sid)
    assert row.deleted_from_twilio_at is not None and recording.deleted
    assert recording.downloads == 1  # not fetched again
    assert [event.data["status"] for event in await world.events(recording.sid)] == [
        "completed",
        "stored",
    ]


async def test_failures_back_off_then_recover_without_doubling(world: World) -> None:
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    # Twilio's 404 right after completion, a 500, then the audio.
    world.fake.recordings.script = ["status:404", "status:500"]
    assert await world.fetcher.fetch(recording.sid) == "retry"
    row = await world.row(recording.sid)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "404" in row.last_error
    assert _aware(row.next_attempt_at) == START + timedelta(seconds=5)

    # Not due yet: the sweep leaves it.
    world.tick(4)
    assert await world.fetcher.retry_due_recordings() == 0
    world.tick(1)
    assert await world.fetcher.retry_due_recordings() == 1
    row = await world.row(recording.sid)
    assert (row.attempts, _aware(row.next_attempt_at)) == (2, START + timedelta(seconds=15))
    assert "500" in row.last_error

    world.tick(10)
    assert await retry_due_recordings(world.fetcher) == 1
    row = await world.row(recording.sid)
    assert (row.status, row.attempts, row.last_error) == ("stored", 3, None)
    assert recording.downloads == 1
    assert [event.data["status"] for event in await world.events(recording.sid)] == [
        "completed",
        "stored",
    ]
    assert world.counted == [
        ("voicemail", "retry"),
        ("voicemail", "retry"),
        ("voicemail", "fetched"),
    ]


async def test_gives_up_after_the_bound_and_the_sweep_still_retries(world: World) -> None:
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    world.fake.recordings.script = ["status:500"] * BACKOFF.attempts
    for _ in range(BACKOFF.attempts):
        await world.fetcher.retry_due_recordings()
        world.tick(BACKOFF.longest)
    row = await world.row(recording.sid)
    assert (row.status, row.attempts) == ("failed", BACKOFF.attempts)
    assert [event.data["status"] for event in await world.events(recording.sid)] == [
        "completed",
        "failed",
    ]
    assert world.counted[-1] == ("voicemail", "failed")
    # Much later, the sweep tries again, and this time Twilio answers.
    assert await world.fetcher.retry_due_recordings() == 0
    world.tick(BACKOFF.after_giving_up)
    assert await world.fetcher.retry_due_recordings() == 1
    assert (await world.row(recording.sid)).status == "stored"


async def test_a_store_error_is_retried(world: World) -> None:
    class Broken:
        location = "broken://"
        fails = 1

        async def put(self, name: str, audio: bytes, content_type: str = "") -> StoredAudio:
            if self.fails:
                self.fails -= 1
                raise AudioStoreError("the bucket is away")
            return await world.store.put(name, audio)

    world.fetcher.store = Broken()  # type: ignore[assignment]
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    assert await world.fetcher.fetch(recording.sid) == "retry"
    assert (await world.row(recording.sid)).last_error == "AudioStoreError"
    world.tick(BACKOFF.first)
    await world.fetcher.retry_due_recordings()
    assert (await world.row(recording.sid)).status == "stored"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (httpx.ReadTimeout("slow"), "timed out"),
        (httpx.ConnectError("refused"), "could not reach Twilio: ConnectError"),
    ],
)
async def test_transport_faults_are_retried(world: World, fault: Exception, error: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise fault

    world.fetcher.twilio = TwilioRecordings(
        account_sid=ACCOUNT_SID,
        auth_token=Secret(AUTH_TOKEN),
        api_base="http://twilio.test",
        transport=httpx.MockTransport(fail),
    )
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    assert await world.fetcher.fetch(recording.sid) == "retry"
    assert error in (await world.row(recording.sid)).last_error


async def test_without_twilio_credentials_it_waits(world: World) -> None:
    world.fetcher.twilio = None
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    assert await world.fetcher.fetch(recording.sid) == "retry"
    assert "TWILIO_ACCOUNT_SID" in (await world.row(recording.sid)).last_error


async def test_two_fetchers_at_once_fetch_it_once(world: World, tmp_path: Path) -> None:
    other = make_fetcher(world.database, world.fake, world.store, world.clock, world.counted)
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    results = await asyncio.gather(world.fetcher.fetch(recording.sid), other.fetch(recording.sid))
    assert sorted(results) == ["not_due", "stored"]
    assert recording.downloads == 1
    assert len(await world.events(recording.sid)) == 2


async def test_a_claim_held_by_a_dead_process_lapses(world: World) -> None:
    recording, callback = world.recording()
    await world.fetcher.record_callback(callback)
    # Another process claimed it and died before storing anything.
    assert await world.fetcher.rows.claim(recording.sid, world.clock[0], BACKOFF.hold) is not None
    assert await world.fetcher.retry_due_recordings() == 0
    assert await world.fetcher.rows.next_due() == START + timedelta(seconds=BACKOFF.hold)
    world.tick(BACKOFF.hold)
    assert await world.fetcher.retry_due_recordings() == 1
    assert (await world.row(recording.sid)).status == "stored"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_backoff_doubles_up_to_the_longest() -> None:
    backoff = Backoff(first=5, longest=60)
    assert [backoff.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
