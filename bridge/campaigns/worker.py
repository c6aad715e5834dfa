"""The campaign worker: claims due recipients, places their calls at their pace slots,
settles the calls that ended, and finishes campaigns. Any number of them may run on
one PostgreSQL database (`callbridge worker`, and one inside each `callbridge serve`
unless CAMPAIGN_WORKER=false); on SQLite, one.

A placement's answer decides what happens to the claim:

- placed (201): `in_progress` with its call SID, settled when the call ends;
- unknown (the bridge could not tell whether the call was placed): the claim is kept
  and its lease left to expire; the next claim replays the same Idempotency-Key, so
  the callee is never rung twice for one attempt. A replayed unknown is settled by the
  call log (a call recorded with that key), else as failed, never dialled again;
- the key still in use (409: the first worker may still be placing): kept, likewise;
- at the concurrency cap (429) or the bridge not set up to dial (503): given back,
  due again a little later, the attempt not counted;
- on the do-not-call list (403 naming it): `do_not_call`; any other refusal: `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge import phone
from bridge.calllog.capacity import calls_in_progress
from bridge.calllog.log_lines import logfmt
from bridge.campaigns.budget import ClaimBudget
from bridge.campaigns.claims import Claim, claim_due
from bridge.campaigns.events import recipient_finished
from bridge.campaigns.pacing import LATE, LEAD, SLOT, PacedTwilio, Slot
from bridge.campaigns.settle import Settled, finish_campaigns, settle_calls
from bridge.events.outbox import Outbox
from bridge.metrics import Metrics
from bridge.outbound.dialer import OutboundRequest
from bridge.outbound.placement import Placed, Placement
from bridge.reconcile.lease import holder_name
from bridge.storage.database import Database
from bridge.storage.tables import calls, campaign_attempts, campaign_recipients

logger = logging.getLogger("bridge.campaigns")

# A claim is held this long past its slot; then any worker takes it over (and the
# bridge's Idempotency-Key counts a placement as abandoned after the same time).
DEFAULT_LEASE = timedelta(minutes=2)
# How often a worker looks for due recipients and ended calls.
DEFAULT_POLL = 0.25
# A claim's first slot is this far ahead: time to write the claims and start placing.
DEFAULT_READY = 1.2
# Claims a worker holds at once (waiting for their slot or being placed) at most; the
# budget (bridge.campaigns.budget) keeps it to what the process places in time.
DEFAULT_MAX_PLACING = 200
# A claim given back (at the cap, the bridge not set up) is due again after this.
DEFER = timedelta(seconds=15)
PLACEMENT_UNKNOWN = "the call may have been placed (its placement's outcome is unknown)"


@dataclass
class Tick:
    """What one pass did (tests read it)."""

    claims: list[Claim] = field(default_factory=list)
    settled: list[Settled] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    scheduled: int = 0
    not_to_call: int = 0
    takeovers: int = 0


class CampaignWorker:
    def __init__(
        self,
        *,
        database: Database,
        placement: Placement,
        metrics: Metrics,
        events: Outbox | None = None,
        max_concurrent_calls: int = 0,
        inbound_reserve: int = 1,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        poll: float = DEFAULT_POLL,
        horizon: float = 1.0,
        ready: float = DEFAULT_READY,
        max_placing: int = DEFAULT_MAX_PLACING,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.database = database
        self.placement = placement
        self.metrics = metrics
        self.events = events
        self.max_concurrent_calls = max_concurrent_calls
        self.inbound_reserve = inbound_reserve
        self.worker_id = worker_id or holder_name()
        self.lease = lease
        self.poll = poll
        self.horizon = horizon
        self.ready = ready
        self.max_placing = max_placing
        self.now = now
        self.sleep = sleep

    # --- one pass -----------------------------------------------------------------

    async def tick(self, limit: int | None = None) -> Tick:
        """Settle what ended, claim what is due (in the room the settled calls left),
        finish what is done. The claims are returned, not placed: `place` each at its
        slot. `limit`: at most this many fresh claims."""
        engine = await self.database.engine()
        now = self.now()
        async with engine.begin() as connection:
            settled = await settle_calls(connection, now=now, events=self.events)
        for one in settled:
            then = "retry" if one.state == "scheduled" else "final"
            self.metrics.campaign_outcomes.labels(one.outcome, then).inc()
        async with engine.begin() as connection:
            room = await self._room(connection, now)
            if limit is not None:
                room = limit if room is None else min(room, limit)
            claimed = await claim_due(
                connection,
                worker_id=self.worker_id,
                now=now,
                lease=self.lease,
                horizon=self.horizon,
                ready=self.ready,
                room=room,
                events=self.events,
            )
        if claimed.takeovers:
            self.metrics.campaign_takeovers.inc(claimed.takeovers)
        async with engine.begin() as connection:
            finished = await finish_campaigns(connection, now=now, events=self.events)
        for campaign_id in finished:
            logger.info(logfmt({"event": "campaign_finished", "campaign_id": campaign_id}))
        return Tick(
            claims=claimed.claims,
            settled=settled,
            finished=finished,
            scheduled=claimed.scheduled,
            not_to_call=claimed.not_to_call,
            takeovers=claimed.takeovers,
        )

    async def run_once(self) -> Tick:
        """A pass with its claims placed (each at its slot): what tests drive."""
        tick = await self.tick()
        for claim in tick.claims:
            await self.place(claim)
        return tick

    async def _room(self, connection: AsyncConnection, now: datetime) -> int | None:
        """How many more calls campaigns may start under OUTBOUND_MAX_CONCURRENT_CALLS,
        leaving CAMPAIGN_INBOUND_RESERVE slots to inbound callers; None: no cap."""
        if self.max_concurrent_calls <= 0:
            return None
        dialing = await connection.scalar(
            select(func.count())
            .select_from(campaign_recipients)
            .where(campaign_recipients.c.state == "dialing")
        )
        busy = await calls_in_progress(connection, now) + int(dialing or 0)
        return max(0, self.max_concurrent_calls - self.inbound_reserve - busy)

    # --- placing one claim ----------------------------------------------------------

    async def place(self, claim: Claim) -> str:
        """Dial `claim` at its slot and record what came of it; the result's name."""
        # A dialer whose Twilio client waits for the slot itself is started LEAD early.
        lead = LEAD if self._gated(claim) else timedelta(0)
        wait = (claim.slot - lead - self.now()).total_seconds()
        if wait > 0:
            await self.sleep(wait)
        elif self.now() - claim.slot > LATE:
            await self._missed(claim)
            _log("campaign_slot_missed", claim)
            return self._count("late")
        try:
            request = _request(claim, self._opened(claim.variables))
        except ValidationError as error:
            problem = "; ".join(str(item["msg"]) for item in error.errors())
            await self._conclude(claim, "invalid", f"not a valid call: {problem}")
            return self._count("refused")
        except ValueError as error:  # a sealed secret__ variable that cannot be opened
            await self._conclude(claim, "invalid", str(error))
            return self._count("refused")
        body = request.model_dump(mode="json", exclude_none=True)
        slot = Slot(claim.slot)
        token = SLOT.set(slot)
        try:
            placed = await self.placement.place(request, body, claim.key)
        finally:
            SLOT.reset(token)
        if slot.missed:
            # Nothing was sent and the key was released: a new slot, the same attempt.
            await self._missed(claim)
            _log("campaign_slot_missed", claim)
            return self._count("late")
        return await self._record(claim, placed)

    def _opened(self, variables: dict[str, Any] | None) -> dict[str, Any] | None:
        """The recipient's variables with their `secret__` ones unsealed (they are
        stored sealed; the dialer seals them again for the pending call)."""
        sealer = self.placement.dialer.sealer
        if not variables or sealer is None:
            return variables
        opened = sealer.unseal({"dynamic_variables": variables}) or {}
        found: dict[str, Any] | None = opened.get("dynamic_variables")
        return found

    def _gated(self, claim: Claim) -> bool:
        dialer = self.placement.dialer
        mode = claim.options.mode or dialer.default_mode()
        return mode == "twilio" and isinstance(dialer.twilio, PacedTwilio)

    async def _record(self, claim: Claim, placed: Placed) -> str:
        status, body = placed.status, placed.body
        if status == 201:
            await self._in_progress(claim, body.get("call_sid") or body.get("conversation_id"))
            return self._count("placed")
        if status == 409 or (body.get("placed") == "unknown" and not placed.replayed):
            # Left to the lease: the next claim replays the key and learns the outcome.
            _log("campaign_dial_unknown", claim, status=status)
            return self._count("unknown")
        if body.get("placed") == "unknown":
            call_sid = await self._recorded_call(claim.key)
            if call_sid is not None:
                await self._in_progress(claim, call_sid)
                return self._count("placed")
            await self._conclude(claim, "failed", PLACEMENT_UNKNOWN)
            return self._count("refused")
        error = str(body.get("error") or f"not placed (HTTP {status})")
        if status in (429, 503):
            await self._defer(claim, error)
            return self._count("deferred")
        if status == 403 and "do-not-call" in error:
            await self._conclude(claim, "do_not_call", error)
        else:
            await self._conclude(claim, "failed", error)
        return self._count("refused")

    def _count(self, result: str) -> str:
        self.metrics.campaign_dials.labels(result).inc()
        return result

    def _held(self, claim: Claim) -> Any:
        """The recipient row as `claim` left it (no other attempt has moved it on)."""
        return and_(
            campaign_recipients.c.id == claim.recipient_id,
            campaign_recipients.c.state == "dialing",
            campaign_recipients.c.attempts == claim.attempt,
        )

    async def _in_progress(self, claim: Claim, call_sid: str | None) -> None:
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                update(campaign_recipients)
                .where(self._held(claim))
                .values(
                    state="in_progress",
                    call_sid=call_sid,
                    claimed_by=None,
                    claim_expires_at=None,
                    updated_at=self.now(),
                )
            )
            await connection.execute(
                update(campaign_attempts).where(self._attempt(claim)).values(call_sid=call_sid)
            )
        _log("campaign_dialled", claim, call_sid=call_sid)

    async def _conclude(self, claim: Claim, state: str, error: str) -> None:
        """A final state without a call to wait for."""
        now = self.now()
        engine = await self.database.engine()
        async with engine.begin() as connection:
            result = await connection.execute(
                update(campaign_recipients)
                .where(self._held(claim))
                .values(
                    state=state,
                    error=error,
                    outcome="failed" if state == "failed" else None,
                    claimed_by=None,
                    claim_expires_at=None,
                    next_attempt_at=None,
                    updated_at=now,
                    finished_at=now,
                )
            )
            if not result.rowcount:
                return
            await connection.execute(
                update(campaign_attempts)
                .where(self._attempt(claim))
                .values(outcome=state, error=error, finished_at=now)
            )
            recipient = (
                await connection.execute(
                    select(campaign_recipients).where(
                        campaign_recipients.c.id == claim.recipient_id
                    )
                )
            ).one()
            await recipient_finished(
                connection,
                self.events,
                campaign_id=claim.campaign_id,
                recipient=recipient,
                state=state,
                attempts=claim.attempt,
                call_sid=None,
                error=error,
            )
        _log("campaign_not_dialled", claim, state=state)

    async def _missed(self, claim: Claim) -> None:
        """A slot reached too late: a fresh claim is given back, due at once; a claim
        taken over (its key may have been used) is left for the next takeover."""
        if not claim.takeover:
            await self._give_back(claim, due=self.now(), error=None)
            return
        engine = await self.database.engine()
        async with engine.begin() as connection:
            await connection.execute(
                update(campaign_recipients)
                .where(self._held(claim))
                .values(claim_expires_at=self.now() - timedelta(seconds=1))
            )

    async def _defer(self, claim: Claim, error: str) -> None:
        await self._give_back(claim, due=self.now() + DEFER, error=error)
        _log("campaign_dial_deferred", claim, reason=error)

    async def _give_back(self, claim: Claim, *, due: datetime, error: str | None) -> None:
        """Give the claim back, due again at `due`; the attempt never happened."""
        now = self.now()
        engine = await self.database.engine()
        async with engine.begin() as connection:
            result = await connection.execute(
                update(campaign_recipients)
                .where(self._held(claim))
                .values(
                    state="pending" if claim.attempt == 1 else "scheduled",
                    attempts=claim.attempt - 1,
                    claimed_by=None,
                    claim_expires_at=None,
                    next_attempt_at=due,
                    error=error,
                    updated_at=now,
                )
            )
            if result.rowcount:
                await connection.execute(delete(campaign_attempts).where(self._attempt(claim)))

    def _attempt(self, claim: Claim) -> Any:
        return and_(
            campaign_attempts.c.recipient_id == claim.recipient_id,
            campaign_attempts.c.attempt == claim.attempt,
        )

    async def _recorded_call(self, key: str) -> str | None:
        """The call the call log has for this attempt's key, if it was placed after all."""
        engine = await self.database.engine()
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    select(calls.c.call_sid, calls.c.conversation_id)
                    .where(calls.c.idempotency_key == key)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        found: str | None = row.call_sid or row.conversation_id
        return found

    # --- the loop -------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Pass after pass until `stopping` is set; then the calls claimed are placed
        (their slots are at most `horizon` away) before it returns."""
        placing: set[asyncio.Task[None]] = set()
        budget = ClaimBudget(ceiling=self.max_placing)
        logger.info(logfmt({"event": "campaign_worker_started", "worker": self.worker_id}))
        while not stopping.is_set():
            budget.next_pass()
            try:
                tick = await self.tick(limit=budget.room(len(placing)))
            except Exception:
                logger.exception("event=campaign_tick_failed")
                tick = Tick()
            for claim in tick.claims:
                task = asyncio.create_task(self._place_logged(claim, budget, budget.generation))
                placing.add(task)
                task.add_done_callback(placing.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.poll)
        if placing:
            await asyncio.gather(*placing, return_exceptions=True)
        logger.info(logfmt({"event": "campaign_worker_stopped", "worker": self.worker_id}))

    async def _place_logged(self, claim: Claim, budget: ClaimBudget, generation: int) -> None:
        try:
            if await self.place(claim) == "late":
                budget.trouble(generation)
        except Exception:
            budget.trouble(generation)
            # The claim stays held; its lease expires and the key replays.
            logger.exception("event=campaign_dial_failed recipient=%s", claim.recipient_id)


@dataclass
class Running:
    """A worker running as a task (inside the server)."""

    task: asyncio.Task[None]
    stopping: asyncio.Event


def start(worker: CampaignWorker) -> Running:
    stopping = asyncio.Event()
    return Running(asyncio.create_task(worker.run(stopping)), stopping)


async def stop(running: Running | None) -> None:
    """Stop claiming, let what was claimed be placed, and return."""
    if running is None:
        return
    running.stopping.set()
    await running.task


def _request(claim: Claim, variables: dict[str, Any] | None) -> OutboundRequest:
    options = claim.options
    return OutboundRequest.model_validate(
        {
            "to": claim.phone,
            "agent_id": claim.agent_id,
            "mode": options.mode,
            "dynamic_variables": variables or None,
            "machine_detection": options.machine_detection,
            "on_machine": options.on_machine,
            "machine_message": options.machine_message,
            "ring_timeout": options.ring_timeout,
        }
    )


def _log(event: str, claim: Claim, **fields: object) -> None:
    logger.info(
        logfmt(
            {
                "event": event,
                "campaign_id": claim.campaign_id,
                "recipient": claim.recipient_id,
                "attempt": claim.attempt,
                "to": phone.mask(claim.phone),
                **fields,
            }
        )
    )
