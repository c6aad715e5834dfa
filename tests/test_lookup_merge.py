"""The lookup's values over the rule's: action and agent replace, variables merge key by
key, overrides deep-merge."""

from __future__ import annotations

from bridge.elevenlabs.register_request import RegisterCallRequest
from bridge.lookup.answer import LookupAnswer
from bridge.lookup.merge import changed_names, deep_merge, merged_action, merged_request
from bridge.routing.rules import AgentAction, ForwardAction, SayAction

RULE = AgentAction(action="agent", agent_id="agent_rule", dynamic_variables={"tier": "basic"})
FORWARD = ForwardAction(action="forward", to=["+14155550199"])


def test_without_action_or_agent_the_rules_action_stays() -> None:
    assert merged_action(RULE, LookupAnswer()) is RULE


def test_agent_id_replaces_the_rules_agent() -> None:
    merged = merged_action(RULE, LookupAnswer(agent_id="agent_vip"))
    assert isinstance(merged, AgentAction)
    assert merged.agent_id == "agent_vip" and merged.dynamic_variables == {"tier": "basic"}


def test_action_replaces_the_rules_action_and_agent_id_applies_to_it() -> None:
    assert merged_action(RULE, LookupAnswer(action=FORWARD)) == FORWARD
    agent = AgentAction(action="agent", agent_id="agent_action")
    merged = merged_action(RULE, LookupAnswer(action=agent, agent_id="agent_top"))
    assert isinstance(merged, AgentAction) and merged.agent_id == "agent_top"


def test_agent_id_means_nothing_to_other_actions() -> None:
    say = SayAction(action="say", message="hi")
    assert merged_action(say, LookupAnswer(agent_id="agent_vip")) is say
    assert changed_names(say, LookupAnswer(agent_id="agent_vip")) == ()


def test_client_data_merges_over_the_rules() -> None:
    request = RegisterCallRequest(
        agent_id="a",
        from_number="+1",
        to_number="+2",
        client_data={
            "dynamic_variables": {"tier": "basic", "from": "+1"},
            "conversation_config_override": {
                "agent": {"first_message": "Hello", "language": "en"},
                "tts": {"voice_id": "v1"},
            },
        },
    )
    answer = LookupAnswer(
        client_data={
            "dynamic_variables": {"tier": "gold", "name": "Ada"},
            "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
            "user_id": "cust_1",
        }
    )
    merged = merged_request(request, answer)
    assert merged.client_data == {
        "dynamic_variables": {"tier": "gold", "from": "+1", "name": "Ada"},
        "conversation_config_override": {
            "agent": {"first_message": "Hi Ada", "language": "en"},
            "tts": {"voice_id": "v1"},
        },
        "user_id": "cust_1",
    }
    assert merged.agent_id == "a"
    assert merged_request(request, LookupAnswer()) is request


def test_client_data_without_the_rules() -> None:
    request = RegisterCallRequest(agent_id="a", from_number="+1", to_number="+2")
    merged = merged_request(request, LookupAnswer(client_data={"user_id": "u"}))
    assert merged.client_data == {"user_id": "u"}


def test_deep_merge_replaces_non_tables() -> None:
    assert deep_merge({"a": {"b": 1}, "c": 2}, {"a": 3, "c": {"d": 4}}) == {"a": 3, "c": {"d": 4}}


def test_changed_names_name_leaves_never_values() -> None:
    answer = LookupAnswer(
        client_data={
            "dynamic_variables": {"name": "Ada", "secret__pin": "9999"},
            "conversation_config_override": {"agent": {"first_message": "Hi"}},
            "custom_llm_extra_body": {"k": "v"},
        },
        agent_id="agent_vip",
        action=AgentAction(action="agent"),
    )
    names = changed_names(RULE, answer)
    assert names == (
        "action=agent",
        "agent_id",
        "dynamic_variables.name",
        "dynamic_variables.secret__pin",
        "conversation_config_override.agent.first_message",
        "custom_llm_extra_body",
    )
    assert "9999" not in repr(names)
