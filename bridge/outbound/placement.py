"""Placing a call for `POST /calls`: the destination guard, the Idempotency-Key
flow, the dial, the metrics and the call log, in that order.

No HTTP here: `place` returns a `Placed` (status, body, whether it is a replay)
that the endpoint renders as it is. With an Idempotency-Key a retry never rings
a phone twice:

- a key already finished answers the stored response again (`replayed`);
- a key in use by another request, or reused with another body, is a KeyConflict;
- a call definitely not placed releases the key, so a retry may try again;
- a call that may have been placed (a timeout, an interruption, bookkeeping that
  failed once the upstream had the call) keeps the key with that answer, so every
  retry learns it instead of placing a second call.

Whatever fails, the answer is JSON with `placed`: true (201), false or "unknown".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge import phone
from bridge.calllog.capacity import calls_in_progress
from bridge.calllog.log_lines import logfmt
from bridge.calllog.records import CallRecords
from bridge.dnc.numbers import listed_reason
from bridge.metrics import Metrics
from bridge.outbound.destinations import destination_problem
from bridge.outbound.dialer import Dialer, NotPlaced, OutboundRequest
from bridge.outbound.idempotency import IdempotencyKeys, KeyConflict
from bridge.storage.database import Database

logger = logging.getLogger("bridge.outbound")

SCOPE = "calls"
OUTCOME_UNKNOWN = {
    "error": "The bridge was interrupted while placing this call; it may have been placed.",
    "placed": "unknown",
}
BAD_KEY = "Idempotency-Key must be 1 to 255 characters."
NOT_CHECKED = (
    "The do-not-call list and the call capacity could not be checked; nothing was dialled."
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Placed:
    """What to answer `POST /calls` with."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Placement:
    """What placing a call needs; one per app."""

    dialer: Dialer
    keys: IdempotencyKeys
    records: CallRecords
    metrics: Metrics
    allowed_countries: tuple[str, ...]
    # Where the do-not-call list and the calls in progress are read; None: neither is
    # checked (unit tests of the rest).
    database: Database | None = None
    # OUTBOUND_MAX_CONCURRENT_CALLS: at this many calls in progress (inbound included),
    # 429; 0: no cap.
    max_concurrent_calls: int = 0
    now: Callable[[], datetime] = _utcnow

    async def place(
        self, call: OutboundRequest, body: dict[str, Any], key: str | None = None
    ) -> Placed:
        """Place `call` (parsed from `body`, which the key's fingerprint covers)."""
        problem = destination_problem(call.to, self.allowed_countries)
        if problem:
            log("call_refused", to=call.to, reason=problem)
            return Placed(403, {"error": problem, "placed": False})
        if key is not None:
            if not 1 <= len(key) <= 255:
                return Placed(400, {"error": BAD_KEY})
            try:
                replay = await self.keys.begin(SCOPE, key, self.keys.fingerprint(SCOPE, body))
            except KeyConflict as conflict:
                return Placed(conflict.status, {"error": conflict.message})
            if replay is not None:
                return Placed(replay.status, replay.body, replayed=True)
        # After the key, so that a retry of a call placed before its number was listed
        # still learns it was placed; a refusal releases the key (nothing was dialled).
        refusal = await self._refusal(call)
        if refusal is not None:
            if key is not None:
                await self.keys.release(SCOPE, key)
            return refusal
        return await self._dial(call, key)

    async def _refusal(self, call: OutboundRequest) -> Placed | None:
        """403 for a number on the do-not-call list, 429 at OUTBOUND_MAX_CONCURRENT_CALLS,
        503 when the database cannot say; None to dial."""
        if self.database is None:
            return None
        try:
            engine = await self.database.engine()
            async with engine.connect() as connection:
                reason = await listed_reason(connection, call.to)
                in_progress = (
                    await calls_in_progress(connection, self.now())
                    if self.max_concurrent_calls > 0 and reason is None
                    else 0
                )
        except Exception:
            logger.exception("event=call_not_checked to=%s", phone.mask(call.to))
            return Placed(503, {"error": NOT_CHECKED, "placed": False})
        if reason is not None:
            log("call_refused", to=call.to, reason="do_not_call")
            return Placed(
                403, {"error": f"{call.to} is {reason}", "placed": False, "do_not_call": True}
            )
        if self.max_concurrent_calls > 0 and in_progress >= self.max_concurrent_calls:
            log("call_refused", to=call.to, reason="at_capacity", in_progress=in_progress)
            return Placed(
                429,
                {
                    "error": (
                        f"The bridge has {in_progress} calls in progress and "
                        f"OUTBOUND_MAX_CONCURRENT_CALLS is {self.max_concurrent_calls}: "
                        "try again when one has ended."
                    ),
                    "placed": False,
                    "calls_in_progress": in_progress,
                },
            )
        return None

    async def _dial(self, call: OutboundRequest, key: str | None) -> Placed:
        requested = self.metrics.outbound_requests
        try:
            placed = await self.dialer.place(call)
        except NotPlaced as failure:
            mode = call.mode or self.dialer.default_mode()
            requested.labels(mode, "not_placed" if failure.definite else "unknown").inc()
            log("call_not_placed", to=call.to, status=failure.status, reason=failure.message)
            if failure.definite:
                await self._not_placed(call, mode, failure)
            if key is not None:
                if failure.definite:
                    await self.keys.release(SCOPE, key)
                else:
                    await self.keys.finish(SCOPE, key, failure.status, failure.body())
            return Placed(failure.status, failure.body())
        except Exception:
            # The bridge failed while dialling (its bookkeeping, say, once the upstream
            # had created the call): the call may exist.
            logger.exception("event=call_outcome_unknown to=%s", phone.mask(call.to))
            requested.labels(call.mode or self.dialer.default_mode(), "unknown").inc()
            await self._keep_unknown(key)
            return Placed(500, OUTCOME_UNKNOWN)
        except BaseException:
            requested.labels(call.mode or self.dialer.default_mode(), "unknown").inc()
            await self._keep_unknown(key)
            raise
        requested.labels(placed["mode"], "placed").inc()
        if key is not None:
            try:
                await self.keys.finish(SCOPE, key, 201, placed)
            except Exception:
                # Placed, but a retry would find the key still in progress: say so.
                logger.exception("event=call_outcome_unrecorded call_sid=%s", placed["call_sid"])
                return Placed(500, OUTCOME_UNKNOWN)
        try:
            await self.records.record_placed(placed, idempotency_key=key)
        except Exception:
            # The call is placed whatever the log says: report it, and say why it is missing.
            logger.exception("event=call_log_failed call_sid=%s", placed.get("call_sid"))
        log("call_placed", to=call.to, mode=placed["mode"], call_sid=placed.get("call_sid"))
        return Placed(201, placed)

    async def _not_placed(self, call: OutboundRequest, mode: str, failure: NotPlaced) -> None:
        """A `call.failed` event for a call not placed; its failure never changes the answer."""
        try:
            await self.records.record_not_placed(
                to=call.to,
                mode=mode,
                agent_id=call.agent_id,
                status=failure.status,
                reason=failure.message,
            )
        except Exception:
            logger.exception("event=call_event_not_written to=%s", phone.mask(call.to))

    async def _keep_unknown(self, key: str | None) -> None:
        """Every retry with this key gets "unknown" rather than a second ring."""
        if key is None:
            return
        try:
            await asyncio.shield(self.keys.finish(SCOPE, key, 500, OUTCOME_UNKNOWN))
        except Exception:
            # Left in progress: retries are refused (409) until the key expires.
            logger.exception("event=idempotency_key_not_finished")


def log(event: str, **fields: object) -> None:
    """One logfmt line on the outbound logger, with the number masked."""
    if "to" in fields:
        fields["to"] = phone.mask(str(fields["to"]))
    logger.info(logfmt({"event": event, **fields}))
