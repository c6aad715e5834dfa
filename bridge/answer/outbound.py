"""When a call placed through Twilio is answered: a person gets the agent, a machine
gets what the request asked for (hang up, a spoken message, or the agent anyway)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import twiml
from bridge.answer.actions import client_data as action_client_data
from bridge.answer.actions import render
from bridge.call import Answer, Call
from bridge.elevenlabs.register_call import ElevenLabsClient, RegisterCallError, RegisterCallRequest
from bridge.lookup.hook import Lookups, note
from bridge.lookup.merge import deep_merge, merged_action
from bridge.outbound.pending import PendingCalls
from bridge.outbound.sealing import Sealer
from bridge.routing.rules import AgentAction
from bridge.storage.database import Database

logger = logging.getLogger(__name__)

OUTBOUND_FALLBACK = twiml.say_and_hangup("Sorry, we could not connect this call. Goodbye.")
# Statuses after which a call can no longer be answered: its pending row can go.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Headroom past register-call's own deadline for the database work around it.
ANSWER_SLACK = 2.0
# A pending row older than this can no longer be answered either (ring timeout <= 600 s).
PENDING_LIFETIME = timedelta(hours=1)
# The step of an action the lookup hook chose for an outbound call.
OUTBOUND_LOOKUP_STEP = "lookup:outbound"


def _fallback(
    agent_id: str,
    reason: str,
    upstream_status: int | None = None,
    upstream_latency: float | None = None,
    attempts: int = 0,
) -> Answer:
    """What a callee hears when their call cannot reach the agent."""
    return Answer(
        OUTBOUND_FALLBACK,
        rule="outbound",
        action="agent",
        outcome="fallback",
        agent_id=agent_id,
        reason=reason,
        upstream_status=upstream_status,
        upstream_latency=upstream_latency,
        attempts=attempts,
    )


def is_machine(answered_by: str) -> bool:
    """Twilio's AnsweredBy: human, machine_start, machine_end_beep, ..., fax, unknown."""
    return answered_by.startswith("machine") or answered_by == "fax"


class OutboundAnswerer:
    def __init__(
        self,
        *,
        database: Database,
        sealer: Sealer | None,
        elevenlabs: ElevenLabsClient | None,
        deadline: float,
        lookups: Lookups | None = None,
        lookup_by_default: bool = False,
    ) -> None:
        self.database = database
        self.sealer = sealer
        self.elevenlabs = elevenlabs
        self.deadline = deadline
        # The global lookup hook (LOOKUP_URL), asked at answer time when the request
        # said `lookup: true`, or said nothing and OUTBOUND_LOOKUP is on.
        self.lookups = lookups
        self.lookup_by_default = lookup_by_default

    async def answer_in_time(
        self, pending_id: str, *, call_sid: str, answered_by: str, lookup: bool | None = None
    ) -> Answer:
        """`answer`, or the fallback when it failed or would not fit in Twilio's 15 s."""
        try:
            # The database and register-call together must fit in Twilio's 15 s.
            async with asyncio.timeout(self.deadline + ANSWER_SLACK):
                return await self.answer(
                    pending_id, call_sid=call_sid, answered_by=answered_by, lookup=lookup
                )
        except TimeoutError:
            logger.warning("event=outbound_answer_deadline call_sid=%s", call_sid or "-")
            reason = "deadline"
        except Exception:
            logger.exception("event=outbound_answer_failed call_sid=%s", call_sid or "-")
            reason = "internal_error"
        return Answer(
            OUTBOUND_FALLBACK, rule="outbound", action="-", outcome="fallback", reason=reason
        )

    async def answer(
        self, pending_id: str, *, call_sid: str, answered_by: str, lookup: bool | None = None
    ) -> Answer:
        # Used once: the sealed secrets do not stay longer than they must.
        row = await PendingCalls(self.database).take(pending_id)
        if row is None:
            return Answer(
                twiml.hangup(),
                rule="outbound",
                action="hangup",
                outcome="fallback",
                reason="unknown_call",
            )
        if is_machine(answered_by) and row.on_machine != "agent":
            if row.on_machine == "message" and row.machine_message:
                return Answer(
                    twiml.say_and_hangup(row.machine_message),
                    rule="outbound",
                    action="machine_message",
                    outcome="handled",
                    agent_id=row.agent_id,
                )
            return Answer(
                twiml.hangup(),
                rule="outbound",
                action="machine_hangup",
                outcome="handled",
                agent_id=row.agent_id,
            )
        asks = self.lookup_by_default if lookup is None else lookup
        return await self._connect(
            row.agent_id,
            row.from_number,
            row.to_number,
            row.client_data,
            call_sid=call_sid,
            lookups=self.lookups if asks else None,
        )

    async def _connect(
        self,
        agent_id: str,
        from_number: str,
        to_number: str,
        sealed: object,
        *,
        call_sid: str = "",
        lookups: Lookups | None = None,
    ) -> Answer:
        fallback = functools.partial(_fallback, agent_id)
        if self.elevenlabs is None or self.sealer is None:
            return fallback("elevenlabs_not_configured")
        try:
            client_data = self.sealer.unseal(sealed if isinstance(sealed, dict) else None)
        except ValueError:
            return fallback("sealed_secret_unreadable")
        timeout = self.deadline
        target = lookups.target(None) if lookups is not None else None
        if lookups is not None and target is not None:
            started = time.monotonic()
            call = Call(
                call_sid=call_sid,
                from_number=from_number,
                to_number=to_number,
                direction="outbound-api",
            )
            requested = AgentAction(action="agent", agent_id=agent_id)
            result = await lookups.ask(
                target,
                call,
                rule="outbound",
                action=requested,
                default_agent_id=agent_id,
                direction="outbound",
                deadline=self.deadline,
            )
            lookup_note = note(result, requested)
            timeout = self.deadline - (time.monotonic() - started)
            if result.answer is not None:
                action = merged_action(requested, result.answer)
                if not isinstance(action, AgentAction):
                    # The lookup sent this call elsewhere (a forward, a message, ...).
                    return Answer(
                        render(action, step=OUTBOUND_LOOKUP_STEP),
                        rule="outbound",
                        action=action.action,
                        outcome="handled",
                        lookup=lookup_note,
                    )
                agent_id = action.agent_id or agent_id
                extra: dict[str, Any] = {}
                if result.answer.action is not None:
                    extra = action_client_data(action, call)
                client_data = (
                    deep_merge(deep_merge(client_data or {}, extra), result.answer.client_data)
                    or None
                )
            answer = await self._register(agent_id, from_number, to_number, client_data, timeout)
            return dataclasses.replace(answer, lookup=lookup_note)
        return await self._register(agent_id, from_number, to_number, client_data, timeout)

    async def _register(
        self,
        agent_id: str,
        from_number: str,
        to_number: str,
        client_data: dict[str, Any] | None,
        timeout: float,
    ) -> Answer:
        fallback = functools.partial(_fallback, agent_id)
        assert self.elevenlabs is not None
        request = RegisterCallRequest(
            agent_id=agent_id,
            from_number=from_number,
            to_number=to_number,
            direction="outbound",
            client_data=client_data,
        )
        try:
            registered = await self.elevenlabs.register_call(request, timeout=timeout)
        except RegisterCallError as exc:
            return fallback(
                exc.reason,
                upstream_status=exc.status,
                upstream_latency=exc.latency,
                attempts=exc.attempts,
            )
        return Answer(
            registered.twiml.xml,
            rule="outbound",
            action="agent",
            outcome="connected",
            agent_id=agent_id,
            upstream_status=registered.status,
            upstream_latency=registered.latency,
            attempts=registered.attempts,
            conversation_id=registered.twiml.conversation_id,
        )

    async def forget(self, call_sid: str, status: str, now: datetime | None = None) -> None:
        """After a final status, or for rows too old to be answered, drop pending rows."""
        if status not in FINAL_STATUSES:
            return
        cutoff = (now or datetime.now(UTC)) - PENDING_LIFETIME
        await PendingCalls(self.database).forget(call_sid, created_before=cutoff)
