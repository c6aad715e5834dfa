"""Retention: transcripts and recordings are personal data, kept only N days.

`callbridge db prune --days N` (or RETENTION_DAYS) clears, for calls older than the
cutoff, the transcript, analysis and summary, deletes the audio file, and empties
the stored ElevenLabs webhook bodies (which carry the transcript too). The call
record itself (numbers, times, status, rule) stays for the log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, select, update

from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls

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
    engine = await database.engine()
    old = calls.c.created_at < cutoff
    has_personal_data = (
        calls.c.transcript.is_not(None)
        | calls.c.analysis.is_not(None)
        | calls.c.summary.is_not(None)
        | calls.c.audio_path.is_not(None)
    )
    async with engine.begin() as connection:
        audio = [
            path
            for (path,) in await connection.execute(
                select(calls.c.audio_path).where(and_(old, calls.c.audio_path.is_not(None)))
            )
        ]
        cleared = await connection.execute(
            update(calls)
            .where(and_(old, has_personal_data))
            .values(
                transcript=None,
                analysis=None,
                summary=None,
                post_call_metadata=None,
                audio_path=None,
            )
        )
        emptied = await connection.execute(
            update(call_events)
            .where(and_(call_events.c.at < cutoff, call_events.c.kind.like("elevenlabs:%")))
            .values(data=PRUNED)
        )
    removed = await asyncio.to_thread(_remove, audio)
    return Pruned(calls=cleared.rowcount, audio_files=removed, events=emptied.rowcount)


def _remove(paths: list[str]) -> int:
    removed = 0
    for path in paths:
        try:
            Path(path).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
