"""The lookup's answer: ElevenLabs' client-data shape, plus agent_id and an action
checked exactly like a rule's."""

from __future__ import annotations

import json

import pytest

from bridge.lookup.answer import InvalidLookupAnswer, parse_answer
from bridge.routing.rules import AgentAction, ForwardAction


def parsed(body: object) -> object:
    return parse_answer(json.dumps(body).encode())


def test_the_elevenlabs_shape_is_kept_as_sent() -> None:
    answer = parse_answer(
        json.dumps(
            {
                "type": "conversation_initiation_client_data",
                "dynamic_variables": {"customer_name": "Ada", "vip": True, "secret__pin": "1"},
                "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
                "user_id": "cust_1",
            }
        ).encode()
    )
    assert answer.client_data == {
        "dynamic_variables": {"customer_name": "Ada", "vip": True, "secret__pin": "1"},
        "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
        "user_id": "cust_1",
    }
    assert answer.agent_id is None and answer.action is None


def test_an_empty_object_changes_nothing() -> None:
    answer = parse_answer(b"{}")
    assert answer.client_data == {} and answer.agent_id is None and answer.action is None


def test_agent_id_and_actions_are_ours() -> None:
    answer = parse_answer(
        json.dumps(
            {"agent_id": "agent_vip", "action": {"action": "forward", "to": ["+14155550199"]}}
        ).encode()
    )
    assert answer.agent_id == "agent_vip"
    assert isinstance(answer.action, ForwardAction)
    assert answer.action.to == ["+14155550199"] and answer.action.timeout == 20
    agent = parse_answer(b'{"action": {"action": "agent", "agent_id": "a2"}}')
    assert isinstance(agent.action, AgentAction) and agent.action.agent_id == "a2"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(b"not json", "(body): not JSON", id="not-json"),
        pytest.param(b"[1, 2]", "(body): not a JSON object", id="a-list"),
        pytest.param(b'{"type": "other"}', "type: must be", id="wrong-type"),
        pytest.param(b'{"agent_id": 3}', "agent_id: must be a non-empty string", id="agent-int"),
        pytest.param(b'{"agent_id": ""}', "agent_id: must be a non-empty string", id="agent-empty"),
        pytest.param(b'{"action": {"action": "fly"}}', "action: ", id="unknown-action"),
        pytest.param(
            b'{"action": {"action": "forward", "to": ["12"]}}',
            "action.to.0: '12' is not an E.164 number",
            id="forward-bad-number",
        ),
        pytest.param(
            b'{"action": {"action": "forward"}}', "action.to: required", id="forward-no-to"
        ),
        pytest.param(
            b'{"action": {"action": "say", "message": "x", "name": "r"}}',
            "action.name: unknown field",
            id="rule-keys-are-not-actions",
        ),
        pytest.param(
            b'{"action": {"action": "agent", "dynamic_variables": {"x": "{nope}"}}}',
            "unknown placeholder {nope}",
            id="template-like-a-rule",
        ),
        pytest.param(b'{"custom": 1}', "custom: unknown field", id="unknown-key"),
        pytest.param(
            b'{"conversation_config_override": {"agent": {"first_mesage": "x"}}}',
            "conversation_config_override.agent.first_mesage: unknown field",
            id="override-typo",
        ),
        pytest.param(
            b'{"dynamic_variables": {"x": [1]}}', "dynamic_variables.x", id="variable-list"
        ),
    ],
)
def test_invalid_answers_name_the_field(body: bytes, problem: str) -> None:
    with pytest.raises(InvalidLookupAnswer) as caught:
        parse_answer(body)
    assert problem in str(caught.value)


def test_problems_never_carry_a_variables_value() -> None:
    with pytest.raises(InvalidLookupAnswer) as caught:
        parse_answer(b'{"dynamic_variables": {"secret__pin": ["hidden-1234"]}}')
    assert "hidden-1234" not in str(caught.value)


def test_a_secret_variables_bad_template_is_not_quoted() -> None:
    body = {"action": {"action": "agent", "dynamic_variables": {"secret__t": "tok{en}-9876"}}}
    with pytest.raises(InvalidLookupAnswer) as caught:
        parsed(body)
    assert "action.dynamic_variables.secret__t: invalid value (not shown)" in str(caught.value)
    assert "9876" not in str(caught.value)
