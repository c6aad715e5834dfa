"""How many calls the bridge has in progress to agents, inbound included: what
OUTBOUND_MAX_CONCURRENT_CALLS caps (an agent plan's concurrency is shared)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.calllog.records import STATUS_RANK
from bridge.storage.tables import calls

FINAL_RANK = STATUS_RANK["completed"]
# A call with no final status after this long lost its status callback (reconciliation
# settles it later); it no longer holds a slot.
STALE_AFTER = timedelta(hours=2)


async def calls_in_progress(connection: AsyncConnection, now: datetime) -> int:
    """Calls not yet ended, started within STALE_AFTER: every outbound call, and the
    inbound calls that went to an agent."""
    query = (
        select(func.count())
        .select_from(calls)
        .where(
            calls.c.status_rank < FINAL_RANK,
            calls.c.created_at > now - STALE_AFTER,
            or_(calls.c.direction == "outbound", calls.c.outcome == "agent"),
        )
    )
    return int(await connection.scalar(query) or 0)
