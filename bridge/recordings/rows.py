"""The `recordings` table: one row per Twilio recording, the truth about its audio.

A row's `status`: `pending` (audio to fetch), `stored` (in the audio store), `failed`
(fetching gave up for now; still retried, rarely) or `absent` (Twilio has no audio).
`next_attempt_at` is when work on it is due (a fetch, or a deletion at Twilio that
failed); NULL when there is nothing left to do. Work is claimed by moving
`next_attempt_at` ahead in one UPDATE, so two processes never fetch the same
recording at once, and one that died mid-fetch is retried once its claim lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.audio.store import StoredAudio
from bridge.recordings.callback import COMPLETED, RecordingCallback
from bridge.storage.database import Database
from bridge.storage.tables import calls, fitted, recordings

PENDING, STORED, FAILED, ABSENT = "pending", "stored", "failed", "absent"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Recording:
    recording_sid: str
    call_sid: str | None
    kind: str
    status: str
    attempts: int
    duration: int | None
    channels: int | None
    source: str | None
    audio_name: str | None
    audio_bytes: int | None
    audio_sha256: str | None
    deleted_from_twilio_at: datetime | None


class RecordingRows:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, callback: RecordingCallback, now: datetime) -> bool:
        """The recording, once (a replayed callback changes nothing); False if known.
        The call's record must exist already (its event is written first)."""
        engine = await self.database.engine()
        has_audio = callback.status == COMPLETED
        async with engine.begin() as connection:
            call_id = None
            if callback.call_sid:
                call_id = (
                    await connection.execute(
                        select(calls.c.id).where(calls.c.call_sid == callback.call_sid)
                    )
                ).scalar()
            values = fitted(
                recordings,
                {
                    "recording_sid": callback.recording_sid,
                    "call_id": call_id,
                    "call_sid": callback.call_sid,
                    "kind": callback.kind,
                    "status": PENDING if has_audio else ABSENT,
                    "duration": callback.duration,
                    "channels": callback.channels,
                    "source": callback.source,
                    "attempts": 0,
                    "next_attempt_at": now if has_audio else None,
                    "last_error": None if has_audio else f"Twilio: recording {callback.status}",
                    "created_at": now,
                },
            )
            dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(recordings).on_conflict_do_nothing(
                index_elements=["recording_sid"]
            )
            result = await connection.execute(statement, [values])
            return bool(result.rowcount)

    async def claim(self, recording_sid: str, now: datetime, hold: float) -> Recording | None:
        """The row, if its work is due and no one else has it; it is then held for
        `hold` seconds (a process that dies holding it lets it go that way)."""
        engine = await self.database.engine()
        async with engine.begin() as connection:
            claimed = await connection.execute(
                update(recordings)
                .where(
                    (recordings.c.recording_sid == recording_sid)
                    & recordings.c.next_attempt_at.is_not(None)
                    & (recordings.c.next_attempt_at <= now)
                )
                .values(
                    next_attempt_at=now + timedelta(seconds=hold),
                    attempts=recordings.c.attempts + 1,
                )
            )
            if claimed.rowcount != 1:
                return None
            row = (
                await connection.execute(
                    select(recordings).where(recordings.c.recording_sid == recording_sid)
                )
            ).one()
        return Recording(
            recording_sid=row.recording_sid,
            call_sid=row.call_sid,
            kind=row.kind,
            status=row.status,
            attempts=row.attempts,
            duration=row.duration,
            channels=row.channels,
            source=row.source,
            audio_name=row.audio_name,
            audio_bytes=row.audio_bytes,
            audio_sha256=row.audio_sha256,
            deleted_from_twilio_at=row.deleted_from_twilio_at,
        )

    async def stored(
        self,
        recording_sid: str,
        audio: StoredAudio,
        now: datetime,
        *,
        next_attempt: datetime | None,
    ) -> bool:
        """The audio is in the store; `next_attempt` when a deletion at Twilio is to
        follow. False when it was marked stored already."""
        return await self._set(
            recording_sid,
            (recordings.c.status != STORED),
            status=STORED,
            audio_name=audio.name,
            audio_bytes=audio.bytes,
            audio_sha256=audio.sha256,
            stored_at=now,
            last_error=None,
            next_attempt_at=next_attempt,
        )

    async def deleted(self, recording_sid: str, now: datetime) -> None:
        await self._set(
            recording_sid,
            recordings.c.deleted_from_twilio_at.is_(None),
            deleted_from_twilio_at=now,
            next_attempt_at=None,
            last_error=None,
        )

    async def deleted_not_wanted(self, recording_sid: str) -> None:
        """A stored recording with nothing left to do (deleting at Twilio is off)."""
        await self._set(recording_sid, recordings.c.status == STORED, next_attempt_at=None)

    async def retry_later(
        self, recording_sid: str, error: str, at: datetime, *, gave_up: bool
    ) -> None:
        """The work failed: try again `at`; `gave_up` marks a fetch failed (retried
        rarely from then on). A stored recording (its deletion failed) stays stored."""
        values: dict[str, object] = {"last_error": error[:MAX_ERROR_CHARS], "next_attempt_at": at}
        await self._set(
            recording_sid,
            recordings.c.status != STORED,
            status=FAILED if gave_up else PENDING,
            **values,
        )
        await self._set(recording_sid, recordings.c.status == STORED, **values)

    async def due(self, now: datetime, limit: int) -> list[str]:
        """The recordings whose work is due, the longest waiting first."""
        engine = await self.database.engine()
        async with engine.connect() as connection:
            found = await connection.execute(
                select(recordings.c.recording_sid)
                .where(
                    recordings.c.next_attempt_at.is_not(None)
                    & (recordings.c.next_attempt_at <= now)
                )
                .order_by(recordings.c.next_attempt_at)
                .limit(limit)
            )
            return [str(sid) for (sid,) in found]

    async def next_due(self) -> datetime | None:
        """When the next piece of work is due, if any."""
        engine = await self.database.engine()
        async with engine.connect() as connection:
            found = (
                await connection.execute(select(func.min(recordings.c.next_attempt_at)))
            ).scalar()
        return aware(found) if found is not None else None

    async def _set(
        self, recording_sid: str, condition: ColumnElement[bool], **values: object
    ) -> bool:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            result = await connection.execute(
                update(recordings)
                .where((recordings.c.recording_sid == recording_sid) & condition)
                .values(**values)
            )
        return bool(result.rowcount)


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every time here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
