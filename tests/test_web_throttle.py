"""bridge.web.throttle: failed sign-ins per client address, in a sliding window."""

from __future__ import annotations

import pytest

from bridge.web.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures_at", "asked_at", "retry_after"),
    [
        ([0, 1, 2], 3, None),  # under the limit
        ([0, 1, 2, 3], 4, 56),  # at the limit: until the oldest failure is a minute old
        ([0, 1, 2, 3], 59.5, 1),
        ([0, 1, 2, 3], 60, None),  # the oldest one has left the window
        ([0, 30, 31, 32, 33], 61, 29),
    ],
)
def test_retry_after(failures_at: list[float], asked_at: float, retry_after: int | None) -> None:
    clock = Clock()
    throttle = LoginThrottle(failures=4, window=60, clock=clock)
    start = clock.now
    for moment in failures_at:
        clock.now = start + moment
        throttle.failed("203.0.113.9")
    clock.now = start + asked_at
    assert throttle.retry_after("203.0.113.9") == retry_after
    assert throttle.retry_after("198.51.100.4") is None


def test_a_success_clears_the_address() -> None:
    throttle = LoginThrottle(failures=2, window=60)
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(failures=1, window=60, max_addresses=3)
    for number in range(10):
        throttle.failed(f"10.0.0.{number}")
    assert len(throttle) == 3
    assert throttle.retry_after("10.0.0.9") is not None
    assert throttle.retry_after("10.0.0.0") is None
