"""The server's reconciliation: a run every RECONCILE_INTERVAL_SECONDS (the first one
interval after start), by whichever process takes the lease; RECONCILE_GRACE_SECONDS
after a call's end its webhooks are waited for. A failed run is logged and counted,
and the loop goes on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta

from bridge.metrics import Metrics
from bridge.reconcile.service import Service

logger = logging.getLogger("bridge.reconcile")
# Each run looks this far back: calls older than that were looked at by earlier runs.
LOOK_BACK = timedelta(days=2)


def start(
    service: Service, *, interval: float, grace: float, metrics: Metrics | None = None
) -> asyncio.Task[None] | None:
    """The loop as a task, or None when RECONCILE_INTERVAL_SECONDS is 0."""
    if interval <= 0:
        return None
    return asyncio.create_task(loop(service, interval=interval, grace=grace, metrics=metrics))


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def loop(
    service: Service, *, interval: float, grace: float, metrics: Metrics | None = None
) -> None:
    while True:
        # Jitter, so the workers of one deploy do not all ask for the lease at once.
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 (not crypto)
        try:
            outcome = await service.run_once(since=LOOK_BACK, grace=grace)
        except Exception:
            logger.exception("event=reconcile_failed")
            if metrics is not None:
                metrics.reconcile_runs.labels("failed").inc()
            continue
        if outcome is None:
            logger.debug("event=reconcile_skipped reason=lease_held_elsewhere")
