"""When a failed delivery is tried again: the Standard Webhooks schedule (5 s, 5 min,
30 min, 2 h, 5 h, 10 h) with a last try 24 hours after the first, each delay with
up to 10% jitter so that deliveries failed together do not return together. After
the last try fails, the delivery is failed (`callbridge events redeliver` sends it
again)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

# Seconds after each failed attempt; they add up to 24 hours.
DELAYS = (5, 300, 1_800, 7_200, 18_000, 36_000, 23_095)
JITTER = 0.1


def next_attempt(
    attempts: int, now: datetime, *, rng: random.Random | None = None
) -> datetime | None:
    """When to try again after `attempts` failed attempts; None to give up."""
    if attempts < 1 or attempts > len(DELAYS):
        return None
    delay = DELAYS[attempts - 1]
    spread = (rng or random).uniform(-JITTER, JITTER) * delay
    return now + timedelta(seconds=delay + spread)
