"""Retention: transcripts and recordings are personal data, kept only N days.

`callbridge db prune --days N` (or RETENTION_DAYS) clears, for calls older than the
cutoff, the transcript, analysis and summary, deletes the audio files, and empties
the stored ElevenLabs webhook bodies (which carry the transcript too). The call
record itself (numbers, times, status, rule) stays for the log.

Every audio file is named by a record: its call's, and always its post-call audio
event's (also when the conversation matched no call, as for `/api/call` calls). The
files go first and the records after, so a prune that fails half-way keeps the
pointers to what is left and can simply be run again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.calllog.records import CallRecords
from bridge.storage.database import Database

PRUNED = {"pruned": True}


@dataclass(frozen=True)
class Pruned:
    calls: int
    audio_files: int
    events: int


async def prune(database: Database, *, days: int, now: datetime | None = None) -> Pruned:
    if days < 1:
        raise ValueError("days must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    records = CallRecords(database)
    removed = await asyncio.to_thread(_remove, await records.audio_before(cutoff))
    cleared = await records.clear_personal_data(cutoff, events_become=PRUNED)
    return Pruned(calls=cleared.calls, audio_files=removed, events=cleared.events)


def _remove(paths: list[str]) -> int:
    removed = 0
    for path in paths:
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
