"""What the bridge POSTs to the lookup hook: the call, as ElevenLabs' personalization
webhook describes it (`caller_id`, `called_number`, `call_sid`, `agent_id`) and more."""

from __future__ import annotations

from typing import Any

from bridge.call import Call

MESSAGE_ID_PREFIX = "lkp_"


def lookup_body(call: Call, *, rule: str, agent_id: str | None, direction: str) -> dict[str, Any]:
    return {
        "caller_id": call.from_number,
        "called_number": call.to_number,
        "call_sid": call.call_sid,
        "agent_id": agent_id,
        "rule": rule,
        "direction": direction,
        "caller_name": call.caller_name or None,
        # Twilio's own FromCountry when it sent one: parsing the number costs ~0.1 ms.
        "caller_country": call.geo.get("FromCountry") or call.caller_country,
        "forwarded_from": call.forwarded_from or None,
        "account_sid": call.account_sid or None,
        "geo": dict(call.geo),
    }


def message_id(call: Call) -> str:
    """The `webhook-id`: one per call, so the receiver can tell a retried call apart."""
    return f"{MESSAGE_ID_PREFIX}{call.call_sid or '-'}"
