"""Inbound calls into the call log, written in batches off the hot path.

One database write per call halved the bridge's throughput at 200 calls in flight
(benchmarks/README.md). Answers are queued instead and a background task writes
them every `interval` seconds, or as soon as `batch` have gathered, at most `batch`
records per transaction. The queue is flushed on shutdown; a crash loses at most
the last interval's records (the calls themselves were answered; their status
callbacks and webhooks still arrive and are stored durably).

The other events (status callbacks, dial-complete and outbound answers, ElevenLabs'
post-call webhooks) are written at once through `store`: when that fails or takes
longer than `STORE_WAIT` seconds, the write joins the same queue and is retried
until it is stored, so an answer never waits on a dead database for long and what
was acknowledged is not lost while the process lives. A kill -9 loses what is
queued: the last interval's inbound records, and whatever arrived during a
database outage that was still going on (at most `max_pending` records).

While the database is unreachable the records stay queued and the write is retried,
backing off to `MAX_BACKOFF`; past `max_pending` queued records new ones are given
up on (and counted). A record whose write fails while the database itself answers
(a value it will not take, whatever the exception class) is found by halving its
batch, tried once more on its own (the outage may have ended between the failure and
the check), logged and given up on, so it cannot hold up the others. Every write is
idempotent (fixed row ids, a dedupe key per event): a write retried after its
commit went through changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bridge.call import Answer, Call
from bridge.calllog.records import CallRecords
from bridge.events.outbox import Outbox
from bridge.storage.database import Database

logger = logging.getLogger(__name__)

MAX_BACKOFF = 5.0
# How long a webhook's answer waits for its write before the write is queued instead.
STORE_WAIT = 3.0
# What says the database (or the way to it) is down, never the record.
OUTAGE_ERRORS = (OperationalError, InterfaceError, TimeoutError, OSError)

T = TypeVar("T")


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


@dataclass(slots=True)
class _Write:
    """Any other call-log write, queued because it failed: `label` names it in logs."""

    label: str
    write: Callable[[], Awaitable[object]]


class QueueFull(Exception):
    """A write could be neither stored nor queued: the answer must say so (5xx)."""


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
        events: Outbox | None = None,
    ) -> None:
        self.database = database
        self.interval = interval
        self.batch = batch
        self.max_pending = max_pending
        self.store_wait = STORE_WAIT
        self.now = now
        # Told of each failed write and of records given up on (the metrics).
        self.on_failure = on_failure
        self.on_dropped = on_dropped
        self._pending: deque[_Entry] = deque()
        self._writes: deque[_Write] = deque()
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._backing_off = False
        self._records = CallRecords(database, now=now, events=events)

    def add(self, call: Call, answer: Answer, *, kind: str = "inbound") -> None:
        """Queue a call's answer; never waits and never raises."""
        if self.pending >= self.max_pending:
            self.on_dropped(1)
            logger.error(
                "event=call_log_dropped call_sid=%s reason=queue_full", call.call_sid or "-"
            )
            return
        self._pending.append(_Entry(call, answer, kind, self.now()))
        # A database that is down is left alone until the backoff is over.
        if len(self._pending) >= self.batch and not self._backing_off:
            self._wake.set()

    async def store(self, label: str, write: Callable[[], Awaitable[T]]) -> T | None:
        """Run `write` now and return its result. If it fails, queue it to be retried
        until stored and return None; if it takes over `store_wait` seconds, return None
        and let it go on (queued if it then fails). It is never cancelled: a cancelled
        database call can hold the answer as long as an uncancelled one. `QueueFull`
        when it could not be queued (counted and logged). `write` must be idempotent."""
        task = asyncio.ensure_future(write())
        done, _ = await asyncio.wait({task}, timeout=self.store_wait)
        if task in done:
            failure = task.exception()
            if failure is None:
                return task.result()
            logger.warning("event=call_log_deferred %s error=%s", label, _error_name(failure))
            if not self.defer(label, write):
                raise QueueFull(label)
            return None
        self._in_flight.add(task)
        task.add_done_callback(lambda finished: self._settle(finished, label, write))
        if self.pending >= self.max_pending:
            raise QueueFull(label)  # it may still be stored; if it fails, it is dropped
        return None

    def _settle(
        self, task: asyncio.Future[Any], label: str, write: Callable[[], Awaitable[object]]
    ) -> None:
        """A slow write has ended: if it failed, it is queued."""
        self._in_flight.discard(task)
        failure = task.exception() if not task.cancelled() else asyncio.CancelledError()
        if failure is not None:
            logger.warning("event=call_log_deferred %s error=%s", label, _error_name(failure))
            self.defer(label, write)

    def defer(self, label: str, write: Callable[[], Awaitable[object]]) -> bool:
        """Queue `write` to be retried until stored; False when the queue is full."""
        if self.pending >= self.max_pending:
            self.on_dropped(1)
            logger.error("event=call_log_dropped %s reason=queue_full", label)
            return False
        self._writes.append(_Write(label, write))
        if not self._backing_off:
            self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._writes)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-log-writer")

    async def stop(self) -> None:
        """Write what is queued, then end the background task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.drain()
        except Exception:
            logger.exception(
                "event=call_log_lost records=%d reason=database_unavailable_at_shutdown",
                self.pending,
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
                logger.exception("event=call_log_write_failed pending=%d", self.pending)
                self._backing_off = True
                pause = min(pause * 2, MAX_BACKOFF)
            else:
                self._backing_off = False
                pause = self.interval

    async def drain(self) -> int:
        """`flush`, once the writes still running (slow ones from `store`) have ended."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))
            await asyncio.sleep(0)  # their done callbacks
        return await self.flush()

    async def flush(self) -> int:
        """Write every queued record now, `batch` at a time; returns how many were
        written. Raises when the database cannot take them; what is left stays queued."""
        written = 0
        async with self._lock:
            while self._pending:
                chunk = list(islice(self._pending, self.batch))
                for entry in chunk:
                    entry.token = entry.token or secrets.token_hex(16)
                written += await self._written(chunk)
                # Only this method takes from the front, and it holds the lock.
                for _ in chunk:
                    self._pending.popleft()
            while self._writes:
                written += await self._written([self._writes[0]])
                self._writes.popleft()
        return written

    async def _written(self, chunk: list[_Entry] | list[_Write]) -> int:
        try:
            return await self._write_isolating(chunk)
        except BaseException:
            self.on_failure()
            raise

    async def _write_isolating(self, chunk: list[_Entry] | list[_Write]) -> int:
        """Write the chunk; if it fails while the database answers, the failure is a
        record's: halve until that record is found, and give it up."""
        try:
            await self._write(chunk)
            return len(chunk)
        except Exception as exc:
            if not await self._record_failed(exc):
                raise
            if len(chunk) == 1:
                # Once more before giving it up: the database may have come back
                # between the failure and the check (the failure was the outage's).
                try:
                    await self._write(chunk)
                    return 1
                except Exception as again:
                    if not await self._record_failed(again):
                        raise
                    exc = again
                self.on_dropped(1)
                logger.error(
                    "event=call_log_dropped %s reason=refused error=%s",
                    _label(chunk[0]),
                    _error_name(exc),
                )
                return 0
        middle = len(chunk) // 2
        return await self._write_isolating(chunk[:middle]) + await self._write_isolating(
            chunk[middle:]
        )

    async def _record_failed(self, exc: Exception) -> bool:
        """Whether `exc` was about the records written rather than the database: it is
        no outage, and the database answers a query right after it."""
        if isinstance(exc, OUTAGE_ERRORS) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            return False
        try:
            engine = await self.database.engine()
            async with engine.connect() as connection:
                await asyncio.wait_for(connection.execute(text("SELECT 1")), STORE_WAIT)
        except Exception:
            return False
        return True

    async def _write(self, entries: Sequence[_Entry] | Sequence[_Write]) -> None:
        answers = [entry for entry in entries if isinstance(entry, _Entry)]
        if answers:
            await self._records.record_answers(answers)
        for write in entries:
            if isinstance(write, _Write):
                await write.write()


def _label(item: _Entry | _Write) -> str:
    if isinstance(item, _Write):
        return item.label
    return f"call_sid={item.call.call_sid or '-'}"


def _error_name(exc: BaseException) -> str:
    """The exception's class, the driver's if it has one; never its message (values)."""
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ if orig is not None else type(exc).__name__
