"""Inbound calls into the call log, written in batches off the hot path.

One database write per call halved the bridge's throughput at 200 calls in flight
(benchmarks/README.md). Answers are queued instead and a background task writes
them every `interval` seconds, or as soon as `batch` have gathered, one
transaction at a time: three statements whatever the batch size. The queue is
flushed on shutdown; a crash loses at most the last interval's records (the calls
themselves were answered; their status callbacks and webhooks still arrive and
are stored durably). While the database is unreachable the queue is kept and the
write retried, backing off, up to `max_pending` records (the oldest go first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from bridge.call_records import answer_event_data
from bridge.calls import Call
from bridge.inbound import Answer
from bridge.storage import Database, call_events, calls

logger = logging.getLogger(__name__)

MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class _Entry:
    call: Call
    answer: Answer
    kind: str
    at: datetime
    # Makes a retried write a no-op for an event that did reach the database (the
    # commit went through but its acknowledgement did not).
    token: str


class CallLogWriter:
    def __init__(
        self,
        database: Database,
        *,
        interval: float = 0.2,
        batch: int = 500,
        max_pending: int = 100_000,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_failure: Callable[[], object] = lambda: None,
        on_dropped: Callable[[int], object] = lambda count: None,
    ) -> None:
        self.database = database
        self.interval = interval
        self.batch = batch
        self.max_pending = max_pending
        self.now = now
        # Told of each failed write and of records given up on (the metrics).
        self.on_failure = on_failure
        self.on_dropped = on_dropped
        self._pending: list[_Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def add(self, call: Call, answer: Answer, *, kind: str = "inbound") -> None:
        """Queue a call's answer; never waits and never raises."""
        self._pending.append(_Entry(call, answer, kind, self.now(), secrets.token_hex(12)))
        if len(self._pending) >= self.batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self) -> None:
        """Write what is queued, then end the background task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except Exception:
            logger.exception(
                "event=call_log_lost records=%d reason=database_unavailable_at_shutdown",
                len(self._pending),
            )

    async def _run(self) -> None:
        pause = self.interval
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                logger.exception("event=call_log_write_failed pending=%d", len(self._pending))
                # Kept for the next try; a database that is down is not hammered.
                pause = min(pause * 2, MAX_BACKOFF)
            else:
                pause = self.interval

    async def flush(self) -> int:
        """Write every queued answer now; returns how many."""
        entries, self._pending = self._pending, []
        if not entries:
            return 0
        try:
            return await self._write(entries)
        except BaseException:
            self.on_failure()
            self._requeue(entries)
            raise

    def _requeue(self, entries: list[_Entry]) -> None:
        """Put records that were not written back in front of the newer ones."""
        self._pending = entries + self._pending
        excess = len(self._pending) - self.max_pending
        if excess > 0:
            del self._pending[:excess]
            self.on_dropped(excess)
            logger.error("event=call_log_dropped records=%d reason=queue_full", excess)

    async def _write(self, entries: list[_Entry]) -> int:
        engine = await self.database.engine()
        rows = [_call_row(entry) for entry in entries]
        sids = [row["call_sid"] for row in rows if row["call_sid"]]
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        # One row per call: a retried webhook in the same batch adds only an event.
        unique = {row["call_sid"] or row["id"]: row for row in reversed(rows)}
        # In key order: two processes upserting overlapping calls then lock rows in the
        # same order and cannot deadlock (PostgreSQL).
        unique_rows = [unique[key] for key in sorted(unique)]
        statement = dialect.insert(calls)
        async with engine.begin() as connection:
            # First answer wins. A status callback may have created the record before
            # this batch (a rejected call ends at once): then fill in what it lacks.
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["call_sid"],
                    set_={
                        name: func.coalesce(calls.c[name], statement.excluded[name])
                        for name in ANSWER_COLUMNS
                    },
                ),
                unique_rows,
            )
            ids = dict(
                (
                    await connection.execute(
                        select(calls.c.call_sid, calls.c.id).where(calls.c.call_sid.in_(sids))
                    )
                ).all()
            )
            events = [
                {
                    "call_id": ids.get(entry.call.call_sid, row["id"]),
                    "kind": entry.kind,
                    "at": entry.at,
                    "dedupe_key": f"answer:{entry.token}",
                    "data": answer_event_data(entry.answer),
                }
                for entry, row in zip(entries, rows, strict=True)
            ]
            await connection.execute(
                dialect.insert(call_events).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                events,
            )
        return len(entries)


# What an answer knows about a call that a status callback does not.
ANSWER_COLUMNS = (
    "from_number",
    "to_number",
    "rule",
    "action",
    "outcome",
    "agent_id",
    "conversation_id",
)


def _call_row(entry: _Entry) -> dict[str, Any]:
    call, answer = entry.call, entry.answer
    return {
        "id": secrets.token_hex(16),
        "call_sid": call.call_sid or None,
        "direction": "inbound",
        "from_number": call.from_number,
        "to_number": call.to_number,
        "rule": answer.rule,
        "action": answer.action,
        "outcome": answer.outcome,
        "agent_id": answer.agent_id,
        "conversation_id": answer.conversation_id,
        "status_rank": 0,
        "created_at": entry.at,
    }
