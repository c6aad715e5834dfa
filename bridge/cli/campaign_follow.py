"""Following a server-side campaign: a progress bar on stderr, drawn from
`GET /campaigns/{id}` every few seconds, until no recipient is waiting or in progress.

The bar is drawn by hand (no dependency to lock): on a terminal one line is rewritten
in place; elsewhere (a log file, CI) a line is printed every `every` seconds and once
at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

from bridge.cli.terminal import printable

WAITING = ("pending", "scheduled")
ACTIVE = ("dialing", "in_progress")
FINAL = (
    "completed",
    "busy",
    "no_answer",
    "machine",
    "failed",
    "do_not_call",
    "invalid",
    "cancelled",
)
BAR_WIDTH = 24


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def status_line(campaign: Mapping[str, Any]) -> str:
    """`[#####---] 40% 4/10 final, 1 in progress, 5 waiting; ETA ...; active`."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    total = int(campaign.get("recipient_count") or 0)
    done = sum(counts.get(state, 0) for state in FINAL)
    active = sum(counts.get(state, 0) for state in ACTIVE)
    waiting = sum(counts.get(state, 0) for state in WAITING)
    percent = 100 if total <= 0 else done * 100 // total
    line = (
        f"{bar(done, total)} {percent:3d}% {done}/{total} final, {active} in progress, "
        f"{waiting} waiting"
    )
    if campaign.get("eta"):
        line += f"; ETA {campaign['eta']}"
    return printable(f"{line}; {campaign.get('state')}")


def outcome_line(campaign: Mapping[str, Any]) -> str:
    """The final states with a count, like `completed 7, busy 2, do_not_call 1`."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    shown = [f"{state} {counts[state]}" for state in FINAL if counts.get(state)]
    return ", ".join(shown) or "no recipient"


def finished(campaign: Mapping[str, Any]) -> bool:
    """No recipient waiting or in progress (a paused campaign is not finished)."""
    counts: Mapping[str, int] = campaign.get("counts") or {}
    if campaign.get("state") == "paused":
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
        self._open = False  # a rewritten line is on the terminal, with no newline yet

    def show(self, campaign: Mapping[str, Any], *, last: bool = False) -> None:
        line = status_line(campaign)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if last else ""))
            self._open = not last
            self.stream.flush()
            return
        now = self.clock()
        due = self._shown_at is None or now - self._shown_at >= self.every
        if (due or last) and line != self._last:
            print(line, file=self.stream, flush=True)
            self._shown_at = now
            self._last = line

    def close(self) -> None:
        """End a line left open on a terminal (before another message is printed)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


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
