"""The retry schedule: about 5 s first, then the Standard Webhooks delays, 24 h in all."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bridge.events.schedule import DELAYS, JITTER, next_attempt

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_the_delays_add_up_to_a_day() -> None:
    assert DELAYS[:6] == (5, 300, 1_800, 7_200, 18_000, 36_000)
    assert sum(DELAYS) == 86_400


@pytest.mark.parametrize("attempts", range(1, len(DELAYS) + 1))
def test_each_retry_is_its_delay_with_jitter(attempts: int) -> None:
    delay = DELAYS[attempts - 1]
    rng = random.Random(attempts)
    for _ in range(20):
        at = next_attempt(attempts, NOW, rng=rng)
        assert at is not None
        assert abs((at - NOW).total_seconds() - delay) <= delay * JITTER


@pytest.mark.parametrize("attempts", [0, len(DELAYS) + 1, 100])
def test_no_retry_after_the_last(attempts: int) -> None:
    assert next_attempt(attempts, NOW) is None


def test_jitter_spreads_retries() -> None:
    seen = {next_attempt(3, NOW) for _ in range(20)}
    assert len(seen) > 1
    assert all(at is not None and at > NOW + timedelta(seconds=1_600) for at in seen)
