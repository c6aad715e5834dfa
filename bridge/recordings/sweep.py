"""The server's background sweep: due recording work (retries, deletions at Twilio)
every `interval` seconds, or sooner when a retry is due sooner. One small task,
started and cancelled by the app's lifespan; every process may run one (work is
claimed row by row, so two sweeps never fetch the same recording).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bridge.recordings.fetcher import RecordingFetcher

logger = logging.getLogger("bridge.recordings")

INTERVAL = 30.0
SHORTEST_NAP = 0.05
GRACE = 5.0


class RecordingSweep:
    def __init__(self, fetcher: RecordingFetcher, *, interval: float = INTERVAL) -> None:
        self.fetcher = fetcher
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._stopping = False
        # A retry set by a fetch outside the sweep (after a webhook) may be due sooner.
        fetcher.on_reschedule = self.wake

    def wake(self) -> None:
        """Look at what is due now, not after the current nap."""
        self._woken.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="recording-sweep")

    async def stop(self, grace: float = GRACE) -> None:
        """Let the round in progress end (a database call cancelled halfway can outlive
        the event loop), then stop; cancelled after `grace` seconds (a slow fetch:
        its claim lapses and another round retries it)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._woken.set()
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.fetcher.retry_due_recordings()
                nap = await self._until_next()
            except Exception:
                # The database may be away for a while: try again next round.
                logger.exception("event=recording_sweep_failed")
                nap = self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), nap)
            self._woken.clear()

    async def _until_next(self) -> float:
        due = await self.fetcher.rows.next_due()
        if due is None:
            return self.interval
        wait = (due - self.fetcher.now()).total_seconds()
        return min(self.interval, max(SHORTEST_NAP, wait))
