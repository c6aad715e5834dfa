"""The server's recording sweep: due work done, sooner when a retry is due sooner,
failures survived, and stopped at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.recordings.sweep import SHORTEST_NAP, RecordingSweep

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Rows:
    def __init__(self, due: datetime | None) -> None:
        self.due = due

    async def next_due(self) -> datetime | None:
        return self.due


class Fetcher:
    def __init__(self, due: datetime | None, fails: int = 0) -> None:
        self.rows = Rows(due)
        self.runs = 0
        self.fails = fails

    def now(self) -> datetime:
        return NOW

    async def retry_due_recordings(self) -> int:
        self.runs += 1
        if self.fails:
            self.fails -= 1
            raise OSError("database away")
        return 0


@pytest.mark.parametrize(
    ("due", "nap"),
    [
        (None, 30.0),
        (NOW + timedelta(seconds=5), 5.0),
        (NOW + timedelta(hours=1), 30.0),
        (NOW - timedelta(seconds=5), SHORTEST_NAP),
    ],
)
async def test_sleeps_until_the_next_due(due: datetime | None, nap: float) -> None:
    sweep = RecordingSweep(Fetcher(due), interval=30.0)  # type: ignore[arg-type]
    assert await sweep._until_next() == nap


async def test_runs_again_and_survives_failures() -> None:
    fetcher: Any = Fetcher(NOW, fails=2)
    sweep = RecordingSweep(fetcher, interval=0.01)
    sweep.start()
    sweep.start()  # once
    for _ in range(200):
        if fetcher.runs >= 4:
            break
        await asyncio.sleep(0.01)
    await sweep.stop()
    await sweep.stop()
    assert fetcher.runs >= 4


async def test_a_reschedule_wakes_it() -> None:
    fetcher: Any = Fetcher(None)
    sweep = RecordingSweep(fetcher, interval=30.0)
    sweep.start()
    for _ in range(100):
        if fetcher.runs:
            break
        await asyncio.sleep(0.01)
    fetcher.on_reschedule()  # what the fetcher calls when it puts work off
    for _ in range(100):
        if fetcher.runs >= 2:
            break
        await asyncio.sleep(0.01)
    await sweep.stop()
    assert fetcher.runs == 2


async def test_a_round_in_progress_ends_before_it_stops() -> None:
    class Slow(Fetcher):
        finished = False

        async def retry_due_recordings(self) -> int:
            await asyncio.sleep(0.1)
            self.finished = True
            return 0

    fetcher: Any = Slow(None)
    sweep = RecordingSweep(fetcher, interval=30.0)
    sweep.start()
    await asyncio.sleep(0.01)
    await sweep.stop()
    assert fetcher.finished


async def test_a_round_past_the_grace_is_cancelled() -> None:
    class Stuck(Fetcher):
        async def retry_due_recordings(self) -> int:
            await asyncio.sleep(3600)
            return 0

    sweep = RecordingSweep(Stuck(None), interval=30.0)  # type: ignore[arg-type]
    sweep.start()
    await asyncio.sleep(0.01)
    await sweep.stop(grace=0.05)
