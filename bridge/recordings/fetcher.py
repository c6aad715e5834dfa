"""A recording's audio, from Twilio into the audio store, with retries that survive
a restart (they are rows in the database, not tasks in memory).

`record_callback` writes what the status callback said (an event on the call, then
the row) before the webhook is answered; `fetch` does the slow part after it;
`retry_due_recordings` does whatever is due (the server's sweep, reconciliation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bridge.audio import names
from bridge.audio.store import AudioStore, StoredAudio
from bridge.calllog.log_lines import logfmt
from bridge.calllog.records import CallRecords
from bridge.events.outbox import Outbox
from bridge.recordings.callback import RecordingCallback
from bridge.recordings.rows import STORED, Recording, RecordingRows
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.twilio.recordings import RecordingFetchError, TwilioRecordings

logger = logging.getLogger("bridge.recordings")

Count = Callable[[str, str], None]  # (kind, result)


@dataclass(frozen=True)
class Backoff:
    """Seconds before retry n (1, 2, ...): `first` doubling up to `longest`; after
    `attempts` tries the fetch is marked failed and retried every `after_giving_up`."""

    first: float = 5.0
    longest: float = 600.0
    attempts: int = 8
    after_giving_up: float = 3600.0
    # How long a claimed recording is held by the process fetching it.
    hold: float = 180.0

    def delay(self, attempt: int) -> float:
        return float(min(self.longest, self.first * 2 ** max(0, attempt - 1)))


class RecordingFetcher:
    def __init__(
        self,
        *,
        rows: RecordingRows,
        records: CallRecords,
        store: AudioStore,
        twilio: TwilioRecordings | None,
        delete_at_twilio: bool = False,
        backoff: Backoff | None = None,
        count: Count | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rows = rows
        self.records = records
        self.store = store
        self.twilio = twilio
        self.delete_at_twilio = delete_at_twilio
        self.backoff = backoff or Backoff()
        self.count = count or (lambda kind, result: None)
        self.now = now
        # Told when work is put off to a later time (the sweep then looks again).
        self.on_reschedule: Callable[[], None] = lambda: None

    async def record_callback(self, callback: RecordingCallback) -> bool:
        """The recording as an event on its call and as a row; True when there is
        audio to fetch. Writing it again (a replay, a retried write) adds nothing."""
        await self._event(
            callback.kind,
            callback.call_sid,
            callback.recording_sid,
            callback.status,
            duration=callback.duration,
            channels=callback.channels,
            source=callback.source,
            audio=None,
        )
        await self.rows.add(callback, self.now())
        return callback.status == "completed"

    async def fetch(self, recording_sid: str) -> str:
        """Do the recording's due work (fetch and store, then delete at Twilio when
        asked to); what happened: stored, deleted, retry, failed or not_due."""
        recording = await self.rows.claim(recording_sid, self.now(), self.backoff.hold)
        if recording is None:
            return "not_due"  # not due, done, or another process has it
        try:
            if recording.status != STORED:
                audio = await self._fetch_and_store(recording)
                await self._stored_event(recording, audio)
                deleting = self.delete_at_twilio and recording.deleted_from_twilio_at is None
                await self.rows.stored(
                    recording_sid, audio, self.now(), next_attempt=self.now() if deleting else None
                )
                self.count(recording.kind, "fetched")
                _log("recording_stored", recording, bytes=audio.bytes)
                if not deleting:
                    return "stored"
            elif recording.audio_name and recording.audio_sha256:
                # Work on a stored recording: its event again (a no-op when written), then
                # the deletion that failed before.
                stored = StoredAudio(
                    recording.audio_name, recording.audio_bytes or 0, recording.audio_sha256
                )
                await self._stored_event(recording, stored)
            if not self.delete_at_twilio:
                await self.rows.deleted_not_wanted(recording_sid)
                return "stored"
            assert self.twilio is not None  # stored: it was fetched from Twilio
            await self.twilio.delete(recording_sid)
            await self.rows.deleted(recording_sid, self.now())
            self.count(recording.kind, "deleted")
            _log("recording_deleted_from_twilio", recording)
            return "deleted"
        except Exception as exc:
            return await self._failed(recording, exc)

    async def retry_due_recordings(self, *, limit: int = 50) -> int:
        """Do the work of up to `limit` recordings that is due; how many were looked at."""
        due = await self.rows.due(self.now(), limit)
        for sid in due:
            await self.fetch(sid)
        return len(due)

    async def _fetch_and_store(self, recording: Recording) -> StoredAudio:
        if self.twilio is None:
            raise RecordingFetchError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
        audio = await self.twilio.audio(recording.recording_sid)
        # Same name every time: a second put (another process, a retry) replaces it
        # with the same bytes.
        return await self.store.put(names.recording(recording.recording_sid), audio)

    async def _failed(self, recording: Recording, exc: Exception) -> str:
        error = str(exc) if isinstance(exc, RecordingFetchError) else type(exc).__name__
        if not isinstance(exc, RecordingFetchError):
            logger.exception(
                "event=recording_work_failed recording_sid=%s", recording.recording_sid
            )
        now = self.now()
        gave_up = recording.status != STORED and recording.attempts >= self.backoff.attempts
        wait = self.backoff.after_giving_up if gave_up else self.backoff.delay(recording.attempts)
        try:
            await self.rows.retry_later(
                recording.recording_sid, error, now + timedelta(seconds=wait), gave_up=gave_up
            )
            self.on_reschedule()
            if gave_up:
                await self._event(
                    recording.kind,
                    recording.call_sid,
                    recording.recording_sid,
                    "failed",
                    duration=recording.duration,
                    channels=recording.channels,
                    source=recording.source,
                    audio=None,
                    error=error,
                )
        except Exception:
            # The claim lapses by itself: the work is retried after `hold` seconds.
            logger.exception(
                "event=recording_not_rescheduled recording_sid=%s", recording.recording_sid
            )
        result = "failed" if gave_up else "retry"
        self.count(recording.kind, result)
        _log(f"recording_{result}", recording, error=error, retry_in=round(wait, 1))
        return result

    async def _stored_event(self, recording: Recording, audio: StoredAudio) -> None:
        await self._event(
            recording.kind,
            recording.call_sid,
            recording.recording_sid,
            "stored",
            duration=recording.duration,
            channels=recording.channels,
            source=recording.source,
            audio={"name": audio.name, "bytes": audio.bytes, "sha256": audio.sha256},
        )

    async def _event(
        self,
        kind: str,
        call_sid: str | None,
        recording_sid: str,
        status: str,
        **data: Any,
    ) -> None:
        await self.records.record_step(
            call_sid,
            kind,
            {"recording_sid": recording_sid, "status": status, **data},
            dedupe_key=f"recording:{recording_sid}:{status}",
            direction="inbound" if kind == "voicemail" else "outbound",
        )


def fetcher_for(
    settings: Settings,
    database: Database,
    transport: httpx.AsyncBaseTransport,
    *,
    store: AudioStore,
    count: Count | None = None,
) -> RecordingFetcher:
    """The fetcher a server or `callbridge reconcile` uses, from the settings."""
    return RecordingFetcher(
        rows=RecordingRows(database),
        records=CallRecords(database, events=Outbox.from_settings(settings)),
        store=store,
        twilio=TwilioRecordings(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base=settings.twilio_api_base,
            transport=transport,
        )
        if settings.twilio_configured
        else None,
        delete_at_twilio=settings.twilio_delete_recordings,
        count=count,
    )


async def retry_due_recordings(fetcher: RecordingFetcher, *, limit: int = 50) -> int:
    """Whatever recording work is due (fetches, deletions at Twilio), up to `limit`."""
    return await fetcher.retry_due_recordings(limit=limit)


def _log(event: str, recording: Recording, **fields: Any) -> None:
    logger.info(
        logfmt(
            {
                "event": event,
                "kind": recording.kind,
                "recording_sid": recording.recording_sid,
                "call_sid": recording.call_sid or "-",
                "attempt": recording.attempts,
                **fields,
            }
        )
    )
