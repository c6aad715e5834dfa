"""What the lookup hook is sent about a call."""

from __future__ import annotations

from bridge.call import Call
from bridge.lookup.request import lookup_body, message_id


def test_twilios_country_comes_first_then_the_numbers() -> None:
    call = Call(
        call_sid="CA1", from_number="+14155550123", to_number="+2", geo={"FromCountry": "CA"}
    )
    assert lookup_body(call, rule="r", agent_id=None, direction="inbound")["caller_country"] == "CA"
    bare = Call(call_sid="CA1", from_number="+442079460123", to_number="+2")
    assert lookup_body(bare, rule="r", agent_id=None, direction="inbound")["caller_country"] == "GB"


def test_an_anonymous_call() -> None:
    call = Call(call_sid="", from_number="anonymous", to_number="+14155550100")
    body = lookup_body(call, rule="default", agent_id="a", direction="inbound")
    assert body["caller_id"] == "anonymous" and body["caller_country"] is None
    assert body["caller_name"] is None and body["geo"] == {}
    assert message_id(call) == "lkp_-"


def test_the_message_id_is_stable_per_call() -> None:
    call = Call(call_sid="CA" + "9" * 32, from_number="+1", to_number="+2")
    assert message_id(call) == message_id(call) == "lkp_CA" + "9" * 32
