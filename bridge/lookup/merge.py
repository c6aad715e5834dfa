"""The lookup's values over the rule's: its `action` replaces the rule's for this call,
its `agent_id` replaces the agent, dynamic variables merge key by key and the config
overrides deep-merge (the lookup wins on each leaf)."""

from __future__ import annotations

import dataclasses
from typing import Any

from bridge.elevenlabs.register_request import RegisterCallRequest
from bridge.lookup.answer import LookupAnswer
from bridge.routing.rules import Action, AgentAction


def merged_action(action: Action, answer: LookupAnswer) -> Action:
    chosen = answer.action or action
    if answer.agent_id is not None and isinstance(chosen, AgentAction):
        chosen = chosen.model_copy(update={"agent_id": answer.agent_id})
    return chosen


def merged_request(request: RegisterCallRequest, answer: LookupAnswer) -> RegisterCallRequest:
    if not answer.client_data:
        return request
    data = deep_merge(request.client_data or {}, answer.client_data)
    return dataclasses.replace(request, client_data=data)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def changed_names(action: Action, answer: LookupAnswer) -> tuple[str, ...]:
    """What the lookup changed, by name only (a `secret__` value never leaves here)."""
    names: list[str] = []
    if answer.action is not None:
        names.append(f"action={answer.action.action}")
    if answer.agent_id is not None and isinstance(merged_action(action, answer), AgentAction):
        names.append("agent_id")
    names += _leaves(answer.client_data, "")
    return tuple(names)


def _leaves(data: dict[str, Any], prefix: str) -> list[str]:
    names: list[str] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name != "custom_llm_extra_body":
            names += _leaves(value, f"{name}.")
        else:
            names.append(name)
    return names
