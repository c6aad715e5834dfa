"""Which lookup a call gets, and how much of the call's deadline it may use.

The call has one deadline (INBOUND_DEADLINE_SECONDS) for everything it waits on.
The lookup gets at most its own timeout and never so much that register-call is
left less than REGISTER_CALL_RESERVE (or half the deadline, if that is shorter):
register-call then gets whatever the lookup left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from bridge.call import Call, LookupNote
from bridge.lookup.client import LookupClient, LookupResult
from bridge.lookup.merge import changed_names
from bridge.lookup.request import lookup_body, message_id
from bridge.routing.rules import Action, AgentAction, RuleLookup
from bridge.secret import Secret

logger = logging.getLogger(__name__)

REGISTER_CALL_RESERVE = 1.0


@dataclass(frozen=True)
class LookupTarget:
    url: str
    timeout: float


def lookup_budget(timeout: float, deadline: float) -> float:
    """Seconds the lookup may take out of a call's `deadline`."""
    reserve = min(REGISTER_CALL_RESERVE, deadline / 2)
    return max(min(timeout, deadline - reserve), 0.0)


class Lookups:
    """The configured lookup hook: the global one (LOOKUP_URL) and the rules' own."""

    def __init__(self, client: LookupClient, *, url: str, timeout: float) -> None:
        self.client = client
        self.url = url
        self.timeout = timeout

    def target(self, rule_lookup: RuleLookup | Literal[False] | None) -> LookupTarget | None:
        if rule_lookup is False:
            return None
        if rule_lookup is not None:
            return LookupTarget(rule_lookup.url, rule_lookup.timeout or self.timeout)
        return LookupTarget(self.url, self.timeout) if self.url else None

    async def ask(
        self,
        target: LookupTarget,
        call: Call,
        *,
        rule: str,
        action: Action,
        default_agent_id: str,
        direction: str,
        deadline: float,
    ) -> LookupResult:
        agent_id = (
            (action.agent_id or default_agent_id or None)
            if isinstance(action, AgentAction)
            else None
        )
        body = lookup_body(call, rule=rule, agent_id=agent_id, direction=direction)
        result = await self.client.lookup(
            target.url,
            body,
            message_id=message_id(call),
            timeout=lookup_budget(target.timeout, deadline),
        )
        if result.result != "ok":
            # The call goes on with the rule's own values.
            logger.warning(
                "event=lookup_failed call_sid=%s result=%s detail=%r",
                call.call_sid or "-",
                result.result,
                result.detail,
            )
        return result


def note(result: LookupResult, action: Action) -> LookupNote:
    changed = changed_names(action, result.answer) if result.answer is not None else ()
    return LookupNote(result.result, result.latency, changed, result.status)


def lookups_for(
    *,
    url: str,
    timeout: float,
    secrets: Sequence[Secret],
    rule_lookups: Iterable[RuleLookup | Literal[False] | None],
    transport: httpx.AsyncBaseTransport,
) -> Lookups | None:
    """The lookup hook if any is configured (LOOKUP_URL or a rule's own), else None."""
    if not url and not any(rule_lookup for rule_lookup in rule_lookups):
        return None
    return Lookups(LookupClient(secrets=secrets, transport=transport), url=url, timeout=timeout)
