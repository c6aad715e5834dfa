"""Progress on stderr: counts of placed, failed, invalid and skipped rows, and notes."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from bridge.campaign.ledger import Result


class Progress:
    """One status line: rewritten in place on a terminal, printed every few seconds elsewhere."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 5.0,
    ) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.every = every
        self.counts: Counter[str] = Counter()
        self.earlier = 0
        self.in_flight = 0
        self._shown_at: float | None = None
        self._last_line = ""  # the status line last written on a line of its own

    def line(self) -> str:
        done = sum(self.counts.values())
        placed = f"{self.counts['placed']} placed"
        if self.earlier:
            placed += f" ({self.earlier} before this run)"
        return (
            f"{done}/{self.total} rows: {placed}, {self.counts['failed']} failed, "
            f"{self.counts['invalid']} invalid, {self.counts['skipped']} skipped, "
            f"{self.in_flight} in flight"
        )

    def record(self, result: Result, *, earlier: bool = False) -> None:
        self.counts[result.status] += 1
        self.earlier += earlier
        self.show()

    def note(self, text: str) -> None:
        """A message on a line of its own, above the status line."""
        if self.tty and self._shown_at is not None:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self._last_line = ""  # the counts are no longer the last line
        if self.tty and self._shown_at is not None:
            self.show(force=True)
        self.stream.flush()

    def show(self, *, force: bool = False) -> None:
        now = self.clock()
        if self.tty:
            self.stream.write(f"\r\x1b[K{self.line()}")
        elif force or self._shown_at is None or now - self._shown_at >= self.every:
            self._last_line = self.line()
            self.stream.write(self._last_line + "\n")
        else:
            return
        self._shown_at = now
        self.stream.flush()

    def finish(self) -> None:
        """The final counts, once: not again when the last line written already says so."""
        if self.tty:
            self.stream.write(f"\r\x1b[K{self.line()}\n")
        elif self.line() != self._last_line:
            self._last_line = self.line()
            self.stream.write(self._last_line + "\n")
        self.stream.flush()
