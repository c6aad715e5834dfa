"""Claiming due recipients for a worker to dial, in one transaction.

Each active campaign whose start has come is locked (`FOR UPDATE SKIP LOCKED` on
PostgreSQL: one worker claims for a campaign at a time, the others skip it), so its
pace and in-flight limit hold across every worker:

- pace: `next_dial_at` is the campaign's next free dial slot. A claim takes the slots
  due within `horizon` seconds, 1/rate apart, and moves `next_dial_at` past them; the
  worker dials each claim at its slot, never earlier.
- in flight: recipients dialing or in progress stay under `max_in_flight`.
- capacity: with OUTBOUND_MAX_CONCURRENT_CALLS, campaigns dial only while the calls in
  progress stay under the cap minus CAMPAIGN_INBOUND_RESERVE (the caller's `room`).

A due recipient (`pending`/`scheduled`, `next_attempt_at` passed) whose number is now
on the do-not-call list becomes `do_not_call`; one whose local hours are closed becomes
`scheduled` at their next opening; the others become `dialing`, held by this worker
until `claim_expires_at`, with a new attempt and its idempotency key. A `dialing`
recipient whose lease expired (its worker died) is taken over: same attempt, same key,
so the bridge's Idempotency-Key replays instead of ringing twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.campaigns import hours
from bridge.campaigns.events import recipient_finished
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.states import ACTIVE, WAITING
from bridge.dnc.numbers import listed_among
from bridge.events.outbox import Outbox
from bridge.storage.tables import campaign_attempts, campaign_recipients, campaigns

# Campaigns looked at per claim; the rest wait for the next tick.
CAMPAIGNS_PER_CLAIM = 20
# Due recipients read at once, and at most this many looked at per campaign and claim
# (closed hours and listed numbers are moved along without using a slot).
BATCH = 200
MAX_SCANNED = 2000
# Seconds of delay between a slot and its request that the pace allows for.
JITTER = 0.25


def slot_interval(rate: float) -> float:
    """Seconds between two dial slots of a campaign paced at `rate` calls per second.

    A call reaches the upstream a little after its slot: the worker may wake up to LATE
    after it (later, the slot is given back, see bridge.campaigns.worker), and the
    bridge writes its bookkeeping before the request. Slots JITTER seconds wider than
    1/rate keep every one-second window at the upstream within `rate` calls even when
    those delays add up to JITTER (measured here: p90 70 ms on a loaded machine)."""
    return (1.0 + JITTER) / rate


def attempt_key(campaign_id: str, recipient_id: int, attempt: int) -> str:
    """The Idempotency-Key of one attempt: a retry after an unknown placement replays it."""
    return f"campaign:{campaign_id}:{recipient_id}:{attempt}"


def aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """One recipient this worker is to dial at `slot`."""

    recipient_id: int
    campaign_id: str
    attempt: int
    phone: str
    variables: dict[str, Any] | None
    agent_id: str | None
    options: CampaignOptions
    slot: datetime
    takeover: bool = False

    @property
    def key(self) -> str:
        return attempt_key(self.campaign_id, self.recipient_id, self.attempt)


@dataclass
class Claimed:
    claims: list[Claim] = field(default_factory=list)
    scheduled: int = 0  # moved to their next local opening
    not_to_call: int = 0  # on the do-not-call list
    takeovers: int = 0


async def claim_due(
    connection: AsyncConnection,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    horizon: float = 1.0,
    ready: float = 0.0,
    room: int | None = None,
    events: Outbox | None = None,
) -> Claimed:
    """Claim what is due in `connection`'s transaction: the slots from `ready` seconds
    on (time to write the claims and start placing) to `horizon` seconds after that.
    `room`: how many more calls the concurrency cap allows (None: no cap)."""
    claimed = Claimed()
    rows = (
        await connection.execute(
            select(campaigns)
            .where(
                campaigns.c.state == "active",
                campaigns.c.start_at <= now,
                campaigns.c.next_dial_at <= now + timedelta(seconds=ready + horizon),
            )
            .order_by(campaigns.c.next_dial_at)
            .limit(CAMPAIGNS_PER_CLAIM)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        used = await _claim_campaign(
            connection,
            row,
            claimed,
            worker_id=worker_id,
            now=now,
            lease=lease,
            horizon=horizon,
            ready=ready,
            room=room,
            events=events,
        )
        if room is not None:
            room -= used
    return claimed


async def _claim_campaign(
    connection: AsyncConnection,
    campaign: Row[Any],
    claimed: Claimed,
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    horizon: float,
    ready: float,
    room: int | None,
    events: Outbox | None,
) -> int:
    """Claims for one campaign (its row locked); how many fresh dials it took."""
    options = CampaignOptions.model_validate(campaign.options)
    interval = slot_interval(options.rate)
    start = now + timedelta(seconds=ready)
    base = max(aware(campaign.next_dial_at), start)
    end = start + timedelta(seconds=horizon)
    slots = max(0, math.ceil((end - base).total_seconds() / interval))
    if slots == 0:
        return 0
    taken: list[Claim] = []

    def slot() -> datetime:
        return base + timedelta(seconds=interval * len(taken))

    # Taken over first: their callee has waited longest, and they already count in flight.
    for recipient in await _expired(connection, campaign.id, now, slots):
        taken.append(_claim_of(campaign, options, recipient, recipient.attempts, slot(), True))
        claimed.takeovers += 1
    in_flight = int(
        await connection.scalar(
            select(func.count())
            .select_from(campaign_recipients)
            .where(
                campaign_recipients.c.campaign_id == campaign.id,
                campaign_recipients.c.state.in_(ACTIVE),
            )
        )
        or 0
    )
    fresh_room = min(options.max_in_flight - in_flight, slots - len(taken))
    if room is not None:
        fresh_room = min(fresh_room, room)
    fresh = 0
    scanned = 0
    while fresh < fresh_room and scanned < MAX_SCANNED:
        batch = await _due(connection, campaign.id, now, BATCH, [c.recipient_id for c in taken])
        if not batch:
            break
        scanned += len(batch)
        listed = await listed_among(connection, [recipient.phone for recipient in batch])
        for recipient in batch:
            if fresh >= fresh_room:
                break
            reason = listed.get(recipient.phone)
            if reason is not None:
                await _not_to_call(connection, campaign.id, recipient, reason, now, events)
                claimed.not_to_call += 1
                continue
            opening = _opening(recipient, options, now)
            if opening is None:
                await _never_open(connection, campaign.id, recipient, now, events)
                continue
            if opening > now:
                await connection.execute(
                    update(campaign_recipients)
                    .where(campaign_recipients.c.id == recipient.id)
                    .values(state="scheduled", next_attempt_at=opening, updated_at=now)
                )
                claimed.scheduled += 1
                continue
            taken.append(
                _claim_of(campaign, options, recipient, recipient.attempts + 1, slot(), False)
            )
            fresh += 1
    if taken:
        await _hold(connection, taken, worker_id, slot() + lease, now)
        values: dict[str, Any] = {"next_dial_at": slot(), "updated_at": now}
        if campaign.started_at is None:
            values["started_at"] = now
            if events is not None:
                await events.enqueue(
                    connection,
                    "campaign.started",
                    {"campaign_id": campaign.id, "name": campaign.name},
                    dedupe_key=f"campaign.started:{campaign.id}",
                )
        await connection.execute(
            update(campaigns).where(campaigns.c.id == campaign.id).values(values)
        )
    claimed.claims.extend(taken)
    return fresh


def _claim_of(
    campaign: Row[Any],
    options: CampaignOptions,
    recipient: Row[Any],
    attempt: int,
    slot: datetime,
    takeover: bool,
) -> Claim:
    return Claim(
        recipient_id=recipient.id,
        campaign_id=campaign.id,
        attempt=attempt,
        phone=recipient.phone,
        variables=recipient.variables,
        agent_id=campaign.agent_id,
        options=options,
        slot=slot,
        takeover=takeover,
    )


async def _expired(
    connection: AsyncConnection, campaign_id: str, now: datetime, limit: int
) -> Sequence[Row[Any]]:
    return (
        await connection.execute(
            select(campaign_recipients)
            .where(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.state == "dialing",
                campaign_recipients.c.claim_expires_at < now,
            )
            .order_by(campaign_recipients.c.claim_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def _due(
    connection: AsyncConnection,
    campaign_id: str,
    now: datetime,
    limit: int,
    taken: Sequence[int],
) -> Sequence[Row[Any]]:
    """Due recipients, but those `taken` in this claim (written at its end)."""
    return (
        await connection.execute(
            select(campaign_recipients)
            .where(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.state.in_(WAITING),
                campaign_recipients.c.next_attempt_at <= now,
                campaign_recipients.c.id.not_in(taken),
            )
            .order_by(campaign_recipients.c.next_attempt_at, campaign_recipients.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def _hold(
    connection: AsyncConnection,
    taken: Sequence[Claim],
    worker_id: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Mark the claims `dialing`, held by `worker_id`, in a few statements: a claim of
    a hundred recipients must not take a hundred round trips past its first slots."""
    held = {
        "state": "dialing",
        "claimed_by": worker_id,
        "claim_expires_at": expires_at,
        "updated_at": now,
    }
    fresh = [claim for claim in taken if not claim.takeover]
    again = [claim.recipient_id for claim in taken if claim.takeover]
    if again:
        await connection.execute(
            update(campaign_recipients).where(campaign_recipients.c.id.in_(again)).values(held)
        )
    if fresh:
        await connection.execute(
            update(campaign_recipients)
            .where(campaign_recipients.c.id.in_([claim.recipient_id for claim in fresh]))
            .values(attempts=campaign_recipients.c.attempts + 1, **held)
        )
        await connection.execute(
            insert(campaign_attempts),
            [
                {
                    "recipient_id": claim.recipient_id,
                    "attempt": claim.attempt,
                    "idempotency_key": claim.key,
                    "started_at": claim.slot,
                }
                for claim in fresh
            ],
        )


def _opening(recipient: Row[Any], options: CampaignOptions, now: datetime) -> datetime | None:
    """When the recipient may be called (`now` if their hours are open); None: never."""
    zones = _zones(recipient, options)
    try:
        if hours.is_open(now, zones, options.calling_hours):
            return now
        return hours.next_opening(now, zones, options.calling_hours)
    except (hours.NeverOpen, hours.NoTimeZone, ValueError):
        return None


def _zones(recipient: Row[Any], options: CampaignOptions) -> tuple[str, ...]:
    if options.timezone:
        return (options.timezone,)
    stored = tuple(zone for zone in (recipient.time_zones or "").split(",") if zone)
    return stored or hours.zones_for(recipient.phone)


async def _not_to_call(
    connection: AsyncConnection,
    campaign_id: str,
    recipient: Row[Any],
    reason: str,
    now: datetime,
    events: Outbox | None,
) -> None:
    await _final(connection, campaign_id, recipient, "do_not_call", reason, now, events)


async def _never_open(
    connection: AsyncConnection,
    campaign_id: str,
    recipient: Row[Any],
    now: datetime,
    events: Outbox | None,
) -> None:
    reason = "the calling hours are never open in the number's time zones: set options.timezone"
    await _final(connection, campaign_id, recipient, "invalid", reason, now, events)


async def _final(
    connection: AsyncConnection,
    campaign_id: str,
    recipient: Row[Any],
    state: str,
    error: str,
    now: datetime,
    events: Outbox | None,
) -> None:
    await connection.execute(
        update(campaign_recipients)
        .where(
            and_(
                campaign_recipients.c.id == recipient.id,
                campaign_recipients.c.state.in_(WAITING),
            )
        )
        .values(state=state, error=error, next_attempt_at=None, updated_at=now, finished_at=now)
    )
    await recipient_finished(
        connection,
        events,
        campaign_id=campaign_id,
        recipient=recipient,
        state=state,
        attempts=recipient.attempts,
        call_sid=recipient.call_sid,
        error=error,
    )
