"""Choosing what to do with a call: rules tried in order, first match wins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bridge.call import Call
from bridge.routing.rules import (
    Action,
    AgentAction,
    FallbackAction,
    ForwardAction,
    Rule,
    RuleLookup,
    SayAction,
    When,
)
from bridge.routing.schedule import Schedule

DEFAULT_RULE_NAME = "default"
DEFAULT_FALLBACK_MESSAGE = (
    "Sorry, we can't take your call right now. Please try again later. Goodbye."
)
DEFAULT_FALLBACK: FallbackAction = SayAction(action="say", message=DEFAULT_FALLBACK_MESSAGE)
# Steps: "rule:NAME" (a rule's action), "fallback:NAME" (its fallback), "fallback" (global).
GLOBAL_FALLBACK_STEP = "fallback"
DEFAULT_ACTION = AgentAction(action="agent")
RULE_STEP_PREFIX = "rule:"
FALLBACK_STEP_PREFIX = "fallback:"


@dataclass(frozen=True)
class Decision:
    """The rule that matched, what to do, and what to do if that fails."""

    rule: str
    action: Action
    fallback: FallbackAction
    # Name the action and the fallback so that a <Dial action=...> callback, which is a
    # later webhook, can find what to do when nobody answers.
    step: str
    fallback_step: str
    # The rule's own lookup hook; None: the global one (LOOKUP_URL), False: none.
    lookup: RuleLookup | Literal[False] | None = None


@dataclass(frozen=True)
class RoutingTable:
    rules: tuple[Rule, ...] = ()
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    fallback: FallbackAction | None = None
    source: str = "(no routing file)"

    @property
    def global_fallback(self) -> FallbackAction:
        return self.fallback or DEFAULT_FALLBACK

    def choose(self, call: Call, at: datetime) -> Decision:
        for rule in self.rules:
            if self._matches(rule.when, call, at):
                # A rule is its action too (AgentRule is an AgentAction, ...).
                return Decision(
                    rule=rule.name,
                    action=rule,
                    fallback=rule.fallback or self.global_fallback,
                    step=f"{RULE_STEP_PREFIX}{rule.name}",
                    fallback_step=(
                        f"{FALLBACK_STEP_PREFIX}{rule.name}"
                        if rule.fallback
                        else GLOBAL_FALLBACK_STEP
                    ),
                    lookup=rule.lookup,
                )
        return Decision(
            rule=DEFAULT_RULE_NAME,
            action=DEFAULT_ACTION,
            fallback=self.global_fallback,
            step=DEFAULT_RULE_NAME,
            fallback_step=GLOBAL_FALLBACK_STEP,
        )

    def fallback_for(self, step: str) -> FallbackAction:
        """The fallback that belongs with a step, for actions that run in a later webhook."""
        rule = self._rule_named(_rule_name(step))
        return (rule.fallback if rule else None) or self.global_fallback

    def forward_for(self, step: str) -> ForwardAction | None:
        """The forward action a step names, if it names one."""
        candidate: object = None
        if step == GLOBAL_FALLBACK_STEP:
            candidate = self.global_fallback
        elif step.startswith(FALLBACK_STEP_PREFIX):
            rule = self._rule_named(_rule_name(step))
            candidate = rule.fallback if rule else None
        elif step.startswith(RULE_STEP_PREFIX):
            candidate = self._rule_named(_rule_name(step))
        return candidate if isinstance(candidate, ForwardAction) else None

    def _rule_named(self, name: str | None) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def _matches(self, when: When, call: Call, at: datetime) -> bool:
        if when.called and call.to_number not in when.called:
            return False
        if when.callers and call.from_number not in when.callers:
            return False
        if when.caller_prefixes and not (
            not call.anonymous and call.from_number.startswith(tuple(when.caller_prefixes))
        ):
            return False
        if when.caller_countries and call.caller_country not in when.caller_countries:
            return False
        if when.anonymous is not None and call.anonymous != when.anonymous:
            return False
        if when.during is not None and not self.schedules[when.during].is_open(at):
            return False
        if when.outside is not None and self.schedules[when.outside].is_open(at):
            return False
        for name, allowed in when.geo.items():
            value = call.geo.get(name, "").casefold()
            if value not in {option.casefold() for option in allowed}:
                return False
        return True


def _rule_name(step: str) -> str | None:
    for prefix in (RULE_STEP_PREFIX, FALLBACK_STEP_PREFIX):
        if step.startswith(prefix):
            return step.removeprefix(prefix)
    return None
