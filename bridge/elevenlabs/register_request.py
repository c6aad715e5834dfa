"""The register-call request: what the bridge asks ElevenLabs for an inbound call.

Apart from the client (`register_call`), so that `callbridge route` can show the
request without importing an HTTP stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

REGISTER_CALL_PATH = "/v1/convai/twilio/register-call"


@dataclass(frozen=True)
class RegisterCallRequest:
    agent_id: str
    from_number: str
    to_number: str
    direction: Literal["inbound", "outbound"] | None = "inbound"
    client_data: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "agent_id": self.agent_id,
            "from_number": self.from_number,
            "to_number": self.to_number,
        }
        # The API rejects an explicit null direction; leave the key out instead.
        if self.direction is not None:
            body["direction"] = self.direction
        if self.client_data:
            body["conversation_initiation_client_data"] = self.client_data
        return body
