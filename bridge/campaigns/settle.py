"""Settling what the calls of a campaign came to, and finishing campaigns.

A recipient `in_progress` gets its outcome once its call in the call log has a final
status (from status callbacks, machine detection, the post-call webhook, or
reconciliation): completed, or machine (answered by a machine, with machine detection
on), busy, no-answer, failed (failed or canceled). An outcome in `options.retry.on`
with retries left makes it `scheduled` again at now + `retry.delay`, moved into its
calling hours; otherwise its state is the outcome's final one. A call that has had no
final status for STALE_AFTER is settled as failed.

A campaign is finished once none of its recipients is waiting or active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.calllog.records import STATUS_RANK
from bridge.campaigns import hours
from bridge.campaigns.claims import aware
from bridge.campaigns.events import campaign_finished, recipient_finished
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.states import ACTIVE, STATE_OF_OUTCOME, WAITING
from bridge.events.outbox import Outbox
from bridge.storage.tables import calls, campaign_attempts, campaign_recipients, campaigns

FINAL_RANK = STATUS_RANK["completed"]
# A call with no final status after this long lost it (settled as failed).
STALE_AFTER = timedelta(hours=2)
NO_FINAL_STATUS = "no final status for the call after 2 hours"
# Recipients settled per call.
BATCH = 500

OUTCOME_OF_STATUS = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "failed",
}


def outcome_of(status: str, answered_by: str | None, options: CampaignOptions) -> str:
    """A final call status as a campaign outcome."""
    outcome = OUTCOME_OF_STATUS.get(status, "failed")
    machine = (answered_by or "").startswith(("machine", "fax"))
    if outcome == "completed" and machine and options.machine_detection:
        return "machine"
    return outcome


@dataclass(frozen=True)
class Settled:
    recipient_id: int
    outcome: str
    state: str  # "scheduled" for a retry, else the final state


async def settle_calls(
    connection: AsyncConnection, *, now: datetime, events: Outbox | None = None
) -> list[Settled]:
    """Settle the recipients whose calls ended (and those whose call went silent)."""
    settled: list[Settled] = []
    options_of: dict[str, tuple[CampaignOptions, str]] = {}
    for column in (calls.c.call_sid, calls.c.conversation_id):
        rows = (
            await connection.execute(
                select(
                    campaign_recipients,
                    calls.c.status.label("call_status"),
                    calls.c.answered_by,
                    calls.c.call_successful,
                )
                .join(calls, column == campaign_recipients.c.call_sid)
                .where(
                    campaign_recipients.c.state == "in_progress",
                    calls.c.status_rank >= FINAL_RANK,
                )
                .limit(BATCH)
                .with_for_update(skip_locked=True, of=campaign_recipients)
            )
        ).all()
        for row in rows:
            options, state = await _campaign(connection, row.campaign_id, options_of)
            outcome = outcome_of(row.call_status, row.answered_by, options)
            settled.append(
                await _settle(connection, row, outcome, options, state, now, events, None)
            )
    stale = await _stale(connection, now)
    for row in stale:
        options, state = await _campaign(connection, row.campaign_id, options_of)
        settled.append(
            await _settle(connection, row, "failed", options, state, now, events, NO_FINAL_STATUS)
        )
    return settled


async def _stale(connection: AsyncConnection, now: datetime) -> Sequence[Row[Any]]:
    final_call = exists().where(
        and_(calls.c.call_sid == campaign_recipients.c.call_sid, calls.c.status_rank >= FINAL_RANK)
    )
    return (
        await connection.execute(
            select(campaign_recipients)
            .where(
                campaign_recipients.c.state == "in_progress",
                campaign_recipients.c.updated_at < now - STALE_AFTER,
                ~final_call,
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True, of=campaign_recipients)
        )
    ).all()


async def _campaign(
    connection: AsyncConnection, campaign_id: str, cache: dict[str, tuple[CampaignOptions, str]]
) -> tuple[CampaignOptions, str]:
    if campaign_id not in cache:
        row = (
            await connection.execute(
                select(campaigns.c.options, campaigns.c.state).where(campaigns.c.id == campaign_id)
            )
        ).one()
        cache[campaign_id] = (CampaignOptions.model_validate(row.options), row.state)
    return cache[campaign_id]


async def _settle(
    connection: AsyncConnection,
    row: Row[Any],
    outcome: str,
    options: CampaignOptions,
    campaign_state: str,
    now: datetime,
    events: Outbox | None,
    error: str | None,
) -> Settled:
    retry_at = _retry_at(row, outcome, options, campaign_state, now)
    await connection.execute(
        update(campaign_attempts)
        .where(
            campaign_attempts.c.recipient_id == row.id,
            campaign_attempts.c.attempt == row.attempts,
        )
        .values(outcome=outcome, error=error, finished_at=now)
    )
    common: dict[str, Any] = {
        "outcome": outcome,
        "error": error,
        "claimed_by": None,
        "claim_expires_at": None,
        "updated_at": now,
    }
    if retry_at is not None:
        await connection.execute(
            update(campaign_recipients)
            .where(campaign_recipients.c.id == row.id)
            .values(state="scheduled", next_attempt_at=retry_at, **common)
        )
        return Settled(row.id, outcome, "scheduled")
    state = STATE_OF_OUTCOME[outcome]
    await connection.execute(
        update(campaign_recipients)
        .where(campaign_recipients.c.id == row.id)
        .values(state=state, next_attempt_at=None, finished_at=now, **common)
    )
    await recipient_finished(
        connection,
        events,
        campaign_id=row.campaign_id,
        recipient=row,
        state=state,
        attempts=row.attempts,
        call_sid=row.call_sid,
        error=error,
        call_successful=row._mapping.get("call_successful"),
    )
    return Settled(row.id, outcome, state)


def _retry_at(
    row: Row[Any], outcome: str, options: CampaignOptions, campaign_state: str, now: datetime
) -> datetime | None:
    """When to try again, or None: no retry (not asked for, none left, cancelled)."""
    if outcome not in options.retry.on or campaign_state in ("cancelled", "finished"):
        return None
    # `attempts` counts the first try: retry.attempts retries make 1 + retry.attempts tries.
    if row.attempts > options.retry.attempts:
        return None
    at = now + timedelta(seconds=options.retry.delay)
    zones = (
        (options.timezone,)
        if options.timezone
        else tuple(zone for zone in (row.time_zones or "").split(",") if zone)
    )
    try:
        zones = zones or hours.zones_for(row.phone)
        return hours.next_opening(at, zones, options.calling_hours)
    except (hours.NeverOpen, hours.NoTimeZone, ValueError):
        return None


async def finish_campaigns(
    connection: AsyncConnection, *, now: datetime, events: Outbox | None = None
) -> list[str]:
    """Finish the campaigns with nobody left waiting or active: active ones become
    `finished`, cancelled ones get their `finished_at`. Their ids."""
    busy = exists().where(
        and_(
            campaign_recipients.c.campaign_id == campaigns.c.id,
            campaign_recipients.c.state.in_(WAITING | ACTIVE),
        )
    )
    rows = (
        await connection.execute(
            select(campaigns.c.id, campaigns.c.name, campaigns.c.state)
            .where(
                campaigns.c.state.in_(("active", "cancelled")),
                campaigns.c.finished_at.is_(None),
                campaigns.c.start_at <= now,
                ~busy,
            )
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        state = "finished" if row.state == "active" else row.state
        await connection.execute(
            update(campaigns)
            .where(campaigns.c.id == row.id)
            .values(state=state, finished_at=now, updated_at=now)
        )
        counts: dict[str, int] = {
            state: int(count)
            for state, count in (
                await connection.execute(
                    select(campaign_recipients.c.state, func.count())
                    .where(campaign_recipients.c.campaign_id == row.id)
                    .group_by(campaign_recipients.c.state)
                )
            ).all()
        }
        await campaign_finished(
            connection, events, campaign_id=row.id, name=row.name, state=state, counts=counts
        )
    return [row.id for row in rows]


__all__ = ["aware", "finish_campaigns", "outcome_of", "settle_calls"]
