"""The lookup hook's answer, validated: ElevenLabs' `conversation_initiation_client_data`
shape (the same checks as the bridge's own client data), plus `agent_id` and an
`action` checked exactly like a rule's in the routing file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bridge.elevenlabs.client_data import ClientData, field_errors
from bridge.routing.rules import ACTION_NAMES, Action, TaggedAction

ANSWER_TYPE = "conversation_initiation_client_data"
_ACTION = TypeAdapter[Action](TaggedAction)


class InvalidLookupAnswer(ValueError):
    """The body cannot be used. `problems` name fields, never values."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class LookupAnswer:
    # Only what the endpoint set: dynamic_variables, conversation_config_override, ...
    client_data: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    action: Action | None = None


def parse_answer(body: bytes) -> LookupAnswer:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidLookupAnswer(["(body): not JSON"]) from None
    if not isinstance(data, dict):
        raise InvalidLookupAnswer(["(body): not a JSON object"])
    problems: list[str] = []
    kind = data.pop("type", ANSWER_TYPE)
    if kind != ANSWER_TYPE:
        problems.append(f"type: must be {ANSWER_TYPE!r}")
    agent_id = data.pop("agent_id", None)
    if agent_id is not None and not (isinstance(agent_id, str) and agent_id):
        problems.append("agent_id: must be a non-empty string")
        agent_id = None
    action: Action | None = None
    raw_action = data.pop("action", None)
    if raw_action is not None:
        try:
            action = _ACTION.validate_python(raw_action)
        except ValidationError as exc:
            problems += _lines(exc, "action")
    client_data: dict[str, Any] = {}
    try:
        client_data = ClientData.model_validate(data).to_json()
    except ValidationError as exc:
        problems += _lines(exc, "")
    if problems:
        raise InvalidLookupAnswer(problems)
    return LookupAnswer(client_data=client_data, agent_id=agent_id, action=action)


def _lines(error: ValidationError, prefix: str) -> list[str]:
    lines = []
    for item in field_errors(error, prefix=prefix):
        name = item["field"]
        # pydantic puts the chosen action (the union tag) in the path; nobody wrote it.
        head, _, rest = name.partition(".")
        tag, _, tail = rest.partition(".")
        if prefix and head == prefix and tag in ACTION_NAMES:
            name = f"{head}.{tail}" if tail else head
        # A rule's template errors quote the value: never a secret variable's.
        problem = "invalid value (not shown)" if "secret__" in name else item["problem"]
        lines.append(f"{name}: {problem}")
    return lines
