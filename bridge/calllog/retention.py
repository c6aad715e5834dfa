"""Retention: transcripts and recordings are personal data, kept only N days.

`callbridge db prune --days N` (or RETENTION_DAYS) clears, for calls older than the
cutoff, the transcript, analysis and summary, deletes their audio from the audio store
(post-call audio, voicemails and recordings), and empties the stored ElevenLabs
webhook bodies (which carry the transcript too), and deletes the outgoing events
(bridge.events) made before the cutoff, whose bodies may carry it as well. The call
record itself (numbers, times, status, rule) and a recording's row (its SID,
duration, status) stay for the log; a recording's object name and transcription are
cleared.

Every stored audio is named by a record: its call's, always its post-call audio
event's (also when the conversation matched no call, as for `/api/call` calls), and
its `recordings` row. The audio goes first and the records after, so a prune that
fails half-way (the store unreachable: AudioStoreError) keeps the pointers to what is
left and can simply be run again.

Calls recorded before the audio store kept the absolute path of a file in
CALL_AUDIO_DIR; those files are deleted as before.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.audio.names import is_audio_name
from bridge.audio.store import AudioStore
from bridge.calllog.records import CallRecords
from bridge.storage.database import Database

PRUNED = {"pruned": True}


@dataclass(frozen=True)
class Pruned:
    calls: int
    audio_files: int
    events: int
    recordings: int = 0
    outgoing_events: int = 0


async def prune(
    database: Database, *, store: AudioStore, days: int, now: datetime | None = None
) -> Pruned:
    if days < 1:
        raise ValueError("days must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    records = CallRecords(database)
    found = await records.audio_before(cutoff)
    removed = await store.delete([name for name in found if is_audio_name(name)])
    older = [name for name in found if not is_audio_name(name) and Path(name).is_absolute()]
    removed += await asyncio.to_thread(_remove, older)
    cleared = await records.clear_personal_data(cutoff, events_become=PRUNED)
    return Pruned(
        calls=cleared.calls,
        audio_files=removed,
        events=cleared.events,
        recordings=cleared.recordings,
        outgoing_events=cleared.outgoing_events,
    )


def _remove(paths: list[str]) -> int:
    removed = 0
    for path in paths:
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
