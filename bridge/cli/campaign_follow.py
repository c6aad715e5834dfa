"""Following a server-side campaign: a progress bar on stderr, drawn from
`GET /campaigns/{id}` every few seconds, until no recipient is waiting or in progress.

On a terminal the bar is rich's (imported only when one is drawn, so the CLI starts
fast); elsewhere (a log file, CI) a plain line is printed every `every` seconds and
once at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from bridge.campaigns import states
from bridge.campaigns.states import RECIPIENT_STATES
from bridge.cli.terminal import printable

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# In the order the server lists them (bridge.campaigns.states imports nothing heavy).
WAITING = tuple(state for state in RECIPIENT_STATES if state in states.WAITING)
ACTIVE = tuple(state for state in RECIPIENT_STATES if state in states.ACTIVE)
FINAL = tuple(state for state in RECIPIENT_STATES if state in states.FINAL)
BAR_WIDTH = 24


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_of(campaign: Mapping[str, Any]) -> tuple[int, int]:
    """(recipients in a final state, all recipients)."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    total = int(campaign.get("recipient_count") or 0)
    return sum(counts.get(state, 0) for state in FINAL), total


def detail_line(campaign: Mapping[str, Any]) -> str:
    """`1 in progress, 5 waiting; ETA ...; active`."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    active = sum(counts.get(state, 0) for state in ACTIVE)
    waiting = sum(counts.get(state, 0) for state in WAITING)
    line = f"{active} in progress, {waiting} waiting"
    if campaign.get("eta"):
        line += f"; ETA {campaign['eta']}"
    return printable(f"{line}; {campaign.get('state')}")


def status_line(campaign: Mapping[str, Any]) -> str:
    """`[#####---] 40% 4/10 final, 1 in progress, 5 waiting; ETA ...; active`."""
    done, total = progress_of(campaign)
    percent = 100 if total <= 0 else done * 100 // total
    return f"{bar(done, total)} {percent:3d}% {done}/{total} final, {detail_line(campaign)}"


def outcome_line(campaign: Mapping[str, Any]) -> str:
    """The final states with a count, like `completed 7, busy 2, do_not_call 1`."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    shown = [f"{state} {counts[state]}" for state in FINAL if counts.get(state)]
    return ", ".join(shown) or "no recipient"


def finished(campaign: Mapping[str, Any]) -> bool:
    """The bridge says so (`finished`, or `cancelled` with no call left in progress).
    Every recipient final is not enough: a worker marks the campaign finished a moment
    later, and the last line would say `active`."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    if campaign.get("state") not in ("finished", "cancelled"):
        return False
    return not any(counts.get(state, 0) for state in (*WAITING, *ACTIVE))


class Bar:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 10.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.every = every
        self._shown_at: float | None = None
        self._last = ""
        # On a terminal: rich's live bar, from the first show() until close().
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def show(self, campaign: Mapping[str, Any], *, last: bool = False) -> None:
        if self.tty:
            self._draw(campaign)
            if last:
                self.close()
            return
        line = status_line(campaign)
        now = self.clock()
        due = self._shown_at is None or now - self._shown_at >= self.every
        if (due or last) and line != self._last:
            print(line, file=self.stream, flush=True)
            self._shown_at = now
            self._last = line

    def _draw(self, campaign: Mapping[str, Any]) -> None:
        done, total = progress_of(campaign)
        if self._progress is None or self._task is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("campaign"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("final, {task.description}"),
                console=Console(file=self.stream, force_terminal=True),
                auto_refresh=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total)
        self._progress.update(
            self._task, completed=done, total=total, description=detail_line(campaign)
        )
        self._progress.refresh()

    def close(self) -> None:
        """Leave the bar as it is on the terminal (before another message is printed)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None


async def follow(
    fetch: Callable[[], Awaitable[Mapping[str, Any]]],
    progress: Bar,
    *,
    interval: float,
    sleep: Callable[[float], Awaitable[None]],
) -> Mapping[str, Any]:
    """Poll `fetch` until the campaign is finished; the campaign as it was last."""
    while True:
        campaign = await fetch()
        if finished(campaign):
            progress.show(campaign, last=True)
            return campaign
        progress.show(campaign)
        await sleep(interval)
