"""Answering a call: route it, run the action, and fall back when anything fails.

Every path returns valid TwiML; nothing here raises to the caller's line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

import twiml
from bridge.answer.actions import register_request, render
from bridge.call import Answer, Call
from bridge.elevenlabs.register_call import ElevenLabsClient, RegisterCallError
from bridge.lookup.answer import LookupAnswer
from bridge.lookup.hook import Lookups, LookupTarget, note
from bridge.lookup.merge import merged_action, merged_request
from bridge.outbound.sealing import Sealer
from bridge.routing import RoutingTable
from bridge.routing.rules import (
    Action,
    AgentAction,
    FallbackAction,
    ForwardAction,
    NoAnswerAction,
    SayAction,
)
from bridge.routing.table import DEFAULT_FALLBACK_MESSAGE, GLOBAL_FALLBACK_STEP, Decision

logger = logging.getLogger(__name__)

# The last resort if even a configured fallback cannot be rendered.
EMERGENCY_TWIML = twiml.say_and_hangup(DEFAULT_FALLBACK_MESSAGE)
# The <Dial action> step of a live transfer (POST /calls/{sid}/transfer).
TRANSFER_STEP = "transfer"
# The step of an action the lookup hook chose: no rule of the file names it. A forward
# it chose carries its on_no_answer (and the lookup's client data) sealed in the step,
# `lookup:RULE:SEALED`: the <Dial> may end in another process.
LOOKUP_STEP_PREFIX = "lookup:"
_NO_ANSWER = TypeAdapter[NoAnswerAction](NoAnswerAction)
_NO_ANSWER_AGENT_FALLBACK = SayAction(action="say", message=DEFAULT_FALLBACK_MESSAGE)


class InboundBridge:
    def __init__(
        self,
        *,
        table: RoutingTable,
        elevenlabs: ElevenLabsClient | None,
        default_agent_id: str,
        deadline: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookups: Lookups | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.table = table
        # Seals what a lookup-chosen forward does when nobody answers (None: not kept).
        self.sealer = sealer
        self.elevenlabs = elevenlabs
        self.default_agent_id = default_agent_id
        self.deadline = deadline
        self.now = now
        # None when no lookup is configured anywhere: the hot path is then unchanged.
        self.lookups = lookups

    async def answer(self, call: Call) -> Answer:
        decision = self.table.choose(call, self.now())
        if self.lookups is not None:
            target = self.lookups.target(decision.lookup)
            if target is not None:
                return await self._answer_with_lookup(decision, call, self.lookups, target)
        return await self._run(
            decision.action,
            call,
            rule=decision.rule,
            step=decision.step,
            fallback=decision.fallback,
            fallback_step=decision.fallback_step,
        )

    async def _answer_with_lookup(
        self, decision: Decision, call: Call, lookups: Lookups, target: LookupTarget
    ) -> Answer:
        """The lookup first, within the call's deadline; whatever it answers, the call
        goes on (with the rule's own values if the lookup failed)."""
        started = time.monotonic()
        result = await lookups.ask(
            target,
            call,
            rule=decision.rule,
            action=decision.action,
            default_agent_id=self.default_agent_id,
            direction="inbound",
            deadline=self.deadline,
        )
        action, step = decision.action, decision.step
        if result.answer is not None:
            action = merged_action(decision.action, result.answer)
            if result.answer.action is not None:
                step = self._lookup_step(decision.rule, action, result.answer)
        answer = await self._run(
            action,
            call,
            rule=decision.rule,
            step=step,
            fallback=decision.fallback,
            fallback_step=decision.fallback_step,
            timeout=self.deadline - (time.monotonic() - started),
            lookup=result.answer,
        )
        return dataclasses.replace(answer, lookup=note(result, decision.action))

    def _lookup_step(self, rule: str, action: Action, answer: LookupAnswer) -> str:
        step = f"{LOOKUP_STEP_PREFIX}{rule}"
        if self.sealer is None or not isinstance(action, ForwardAction):
            return step
        kept = {
            "on_no_answer": action.on_no_answer.model_dump(mode="json", exclude_unset=True),
            "client_data": answer.client_data,
        }
        return f"{step}:{self.sealer.seal_text(json.dumps(kept, separators=(',', ':')))}"

    def _kept_no_answer(self, sealed: str) -> tuple[NoAnswerAction, LookupAnswer] | None:
        """What a lookup-chosen forward does when nobody answers, from its step."""
        if self.sealer is None or not sealed:
            return None
        try:
            kept = json.loads(self.sealer.open_text(sealed))
            action = _NO_ANSWER.validate_python(kept["on_no_answer"])
        except (ValueError, KeyError, TypeError):
            return None
        return action, LookupAnswer(client_data=kept.get("client_data") or {})

    async def never_failing(
        self, work: Coroutine[Any, Any, Answer], call: Call, what: str
    ) -> Answer:
        """`work`'s answer; the global fallback if it raised: a bug never reaches the caller.

        No timeout here: the only waits in answering a call are the lookup hook and
        register-call, which share the call's deadline (bridge.lookup.hook).
        """
        try:
            return await work
        except Exception:
            logger.exception("event=%s_failed call_sid=%s", what, call.call_sid or "-")
            return self.last_resort("internal_error")

    def last_resort(self, reason: str) -> Answer:
        """The global fallback, for when answering the call itself went wrong."""
        return self._fallback(
            self.table.global_fallback, GLOBAL_FALLBACK_STEP, rule="-", action="-", reason=reason
        )

    async def dial_complete(self, call: Call, *, step: str, dial_status: str) -> Answer:
        """After a <Dial>: hang up if someone answered, else run the rule's on_no_answer."""
        sealed = ""
        if step.startswith(LOOKUP_STEP_PREFIX):
            rule, _, sealed = step.removeprefix(LOOKUP_STEP_PREFIX).partition(":")
        else:
            rule = step.partition(":")[2] or step
        if dial_status in ("completed", "answered"):
            return Answer(twiml.hangup(), rule=rule, action="hangup", outcome="handled")
        if step == TRANSFER_STEP:
            return self._fallback(
                _NO_ANSWER_AGENT_FALLBACK,
                step,
                rule="transfer",
                action="transfer",
                reason="transfer_not_answered",
            )
        if sealed:
            kept = self._kept_no_answer(sealed)
            if kept is not None:
                on_no_answer, lookup = kept
                return await self._run(
                    on_no_answer,
                    call,
                    rule=rule,
                    step=f"{LOOKUP_STEP_PREFIX}{rule}",
                    fallback=_NO_ANSWER_AGENT_FALLBACK,
                    fallback_step=step,
                    lookup=lookup,
                )
        forward = self.table.forward_for(step)
        if forward is None:
            # The routing file changed while the call was ringing; end politely.
            return self._fallback(
                _NO_ANSWER_AGENT_FALLBACK, step, rule=rule, action="forward", reason="unknown_step"
            )
        # An agent after no answer falls back to a goodbye, never to another <Dial> loop.
        return await self._run(
            forward.on_no_answer,
            call,
            rule=rule,
            step=step,
            fallback=_NO_ANSWER_AGENT_FALLBACK,
            fallback_step=step,
        )

    async def _run(
        self,
        action: Action,
        call: Call,
        *,
        rule: str,
        step: str,
        fallback: FallbackAction,
        fallback_step: str,
        timeout: float | None = None,
        lookup: LookupAnswer | None = None,
    ) -> Answer:
        if isinstance(action, AgentAction):
            return await self._connect(
                action, call, rule, fallback, fallback_step, timeout=timeout, lookup=lookup
            )
        try:
            return Answer(
                render(action, step=step), rule=rule, action=action.action, outcome="handled"
            )
        except ValueError as exc:
            logger.error("rule %r cannot be rendered: %s", rule, exc)
            return self._fallback(
                fallback, fallback_step, rule=rule, action=action.action, reason="render_error"
            )

    async def _connect(
        self,
        action: AgentAction,
        call: Call,
        rule: str,
        fallback: FallbackAction,
        fallback_step: str,
        *,
        timeout: float | None = None,
        lookup: LookupAnswer | None = None,
    ) -> Answer:
        request = register_request(action, call, default_agent_id=self.default_agent_id)
        if request is not None and lookup is not None:
            request = merged_request(request, lookup)
        if request is None:
            return self._fallback(
                fallback, fallback_step, rule=rule, action="agent", reason="no_agent_id"
            )
        if self.elevenlabs is None:
            return self._fallback(
                fallback,
                fallback_step,
                rule=rule,
                action="agent",
                agent_id=request.agent_id,
                reason="elevenlabs_not_configured",
            )
        try:
            registered = await self.elevenlabs.register_call(
                request, timeout=self.deadline if timeout is None else timeout
            )
        except RegisterCallError as exc:
            return self._fallback(
                fallback,
                fallback_step,
                rule=rule,
                action="agent",
                agent_id=request.agent_id,
                reason=exc.reason,
                upstream_status=exc.status,
                upstream_latency=exc.latency,
                attempts=exc.attempts,
            )
        return Answer(
            registered.twiml.xml,
            rule=rule,
            action="agent",
            outcome="connected",
            agent_id=request.agent_id,
            upstream_status=registered.status,
            upstream_latency=registered.latency,
            attempts=registered.attempts,
            conversation_id=registered.twiml.conversation_id,
        )

    def _fallback(
        self,
        fallback: FallbackAction,
        step: str,
        *,
        rule: str,
        action: str,
        reason: str,
        agent_id: str | None = None,
        upstream_status: int | None = None,
        upstream_latency: float | None = None,
        attempts: int = 0,
    ) -> Answer:
        try:
            text = render(fallback, step=step)
        except (ValueError, TypeError) as exc:
            logger.error("fallback for rule %r cannot be rendered: %s", rule, exc)
            text = EMERGENCY_TWIML
        return Answer(
            text,
            rule=rule,
            action=action,
            outcome="fallback",
            agent_id=agent_id,
            upstream_status=upstream_status,
            upstream_latency=upstream_latency,
            attempts=attempts,
            reason=reason,
        )
