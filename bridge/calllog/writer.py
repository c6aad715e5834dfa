"""Inbound calls into the call log, written in batches off the hot path.

One database write per call halved the bridge's throughput at 200 calls in flight
(benchmarks/README.md). Answers are queued instead and a background task writes
them every `interval` seconds, or as soon as `batch` have gathered, at most `batch`
records per transaction. The queue is flushed on shutdown; a crash loses at most
the last interval's records (the calls themselves were answered; their status
callbacks and webhooks still arrive and are stored durably).

While the database is unreachable the records stay queued and the write is retried,
backing off to `MAX_BACKOFF`; past `max_pending` queued records new ones are given
up on (and counted). A record the database refuses as such (a value it will not
take) is found by halving its batch, logged and given up on, so it cannot hold up
the others. Every write is idempotent (fixed row ids, a dedupe key per event): a
batch retried after its commit went through changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from sqlalchemy.exc import DataError, IntegrityError

from bridge.call import Answer, Call
from bridge.calllog.records import CallRecords
from bridge.storage.database import Database

logger = logging.getLogger(__name__)

MAX_BACKOFF = 5.0
# What the database says about rows rather than about itself.
ROW_ERRORS = (DataError, IntegrityError)


@dataclass(slots=True)
class _Entry:
    call: Call
    answer: Answer
    kind: str
    at: datetime
    # The record's id if it is the first of its call, and its event's dedupe key: set
    # before the first write (off the hot path) and kept, so that writing it twice is
    # writing it once.
    token: str = ""


class CallLogWriter:
    def __init__(
        self,
        database: Database,
        *,
        interval: float = 0.2,
        batch: int = 500,
        max_pending: int = 20_000,
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
        self._pending: deque[_Entry] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._backing_off = False
        self._records = CallRecords(database, now=now)

    def add(self, call: Call, answer: Answer, *, kind: str = "inbound") -> None:
        """Queue a call's answer; never waits and never raises."""
        if len(self._pending) >= self.max_pending:
            self.on_dropped(1)
            logger.error(
                "event=call_log_dropped call_sid=%s reason=queue_full", call.call_sid or "-"
            )
            return
        self._pending.append(_Entry(call, answer, kind, self.now()))
        # A database that is down is left alone until the backoff is over.
        if len(self._pending) >= self.batch and not self._backing_off:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

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
                self._backing_off = True
                pause = min(pause * 2, MAX_BACKOFF)
            else:
                self._backing_off = False
                pause = self.interval

    async def flush(self) -> int:
        """Write every queued record now, `batch` at a time; returns how many were
        written. Raises when the database cannot take them; what is left stays queued."""
        written = 0
        async with self._lock:
            while self._pending:
                chunk = list(islice(self._pending, self.batch))
                for entry in chunk:
                    entry.token = entry.token or secrets.token_hex(16)
                try:
                    written += await self._write_isolating(chunk)
                except BaseException:
                    self.on_failure()
                    raise
                # Only this method takes from the front, and it holds the lock.
                for _ in chunk:
                    self._pending.popleft()
        return written

    async def _write_isolating(self, chunk: list[_Entry]) -> int:
        """Write the chunk; if the database refuses a row, halve until it is found."""
        try:
            await self._write(chunk)
            return len(chunk)
        except ROW_ERRORS as exc:
            if len(chunk) == 1:
                self.on_dropped(1)
                logger.error(
                    "event=call_log_dropped call_sid=%s reason=refused error=%s",
                    chunk[0].call.call_sid or "-",
                    type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
                )
                return 0
        middle = len(chunk) // 2
        return await self._write_isolating(chunk[:middle]) + await self._write_isolating(
            chunk[middle:]
        )

    async def _write(self, entries: Sequence[_Entry]) -> None:
        await self._records.record_answers(entries)
