"""Failed sign-ins per client address, in a sliding window (the call log UI's login
form and Basic auth).

After `failures` wrong tokens within `window` seconds, an address waits until the
oldest of them leaves the window, whatever it sends. Kept in memory, per worker
process: with N workers an address gets at most N times the attempts. At most
`max_addresses` addresses are remembered (the oldest are forgotten first), so a
flood from many addresses cannot grow memory without bound.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        *,
        failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._failed: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._failed)

    def retry_after(self, address: str) -> int | None:
        """Seconds (at least 1) until `address` may try again; None if it may now."""
        times = self._recent(address)
        if len(times) < self.failures:
            return None
        return max(1, math.ceil(times[0] + self.window - self.clock()))

    def failed(self, address: str) -> None:
        times = self._recent(address)
        self._failed.pop(address, None)  # re-inserted last: the most recent address
        times.append(self.clock())
        while len(times) > self.failures:
            times.popleft()
        self._failed[address] = times
        while len(self._failed) > self.max_addresses:
            del self._failed[next(iter(self._failed))]

    def succeeded(self, address: str) -> None:
        self._failed.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        times = self._failed.get(address, deque())
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times
