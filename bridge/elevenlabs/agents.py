"""Reading and changing ElevenLabs agents (`GET`/`PATCH /v1/convai/agents/{agent_id}`).

register-call only works with agents that speak μ-law 8000 Hz both ways; this is
how `callbridge doctor` checks and fixes that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bridge.elevenlabs.api import ElevenLabsAPI

AGENT_PATH = "/v1/convai/agents/"
TELEPHONY_FORMAT = "ulaw_8000"
# (section of conversation_config, field): what register-call needs to be ulaw_8000.
INPUT_FORMAT = ("asr", "user_input_audio_format")
OUTPUT_FORMAT = ("tts", "agent_output_audio_format")
FORMAT_FIELDS = (INPUT_FORMAT, OUTPUT_FORMAT)


@dataclass(frozen=True)
class AudioFormats:
    """An agent's audio formats by dotted name ("asr.user_input_audio_format"); None
    when the agent document does not say."""

    values: dict[str, str | None]

    @classmethod
    def of(cls, agent: dict[str, Any]) -> AudioFormats:
        config = agent.get("conversation_config")
        values: dict[str, str | None] = {}
        for section, name in FORMAT_FIELDS:
            part = config.get(section) if isinstance(config, dict) else None
            value = part.get(name) if isinstance(part, dict) else None
            values[f"{section}.{name}"] = value if isinstance(value, str) else None
        return cls(values)

    @property
    def wrong(self) -> dict[str, str | None]:
        """The formats that are not ulaw_8000, with what they are."""
        return {name: value for name, value in self.values.items() if value != TELEPHONY_FORMAT}


def telephony_patch(wrong: dict[str, str | None]) -> dict[str, Any]:
    """The PATCH body that sets these (dotted) format fields to ulaw_8000."""
    config: dict[str, dict[str, str]] = {}
    for dotted in wrong:
        section, _, name = dotted.partition(".")
        config.setdefault(section, {})[name] = TELEPHONY_FORMAT
    return {"conversation_config": config}


class ElevenLabsAgents(ElevenLabsAPI):
    """Agent reads and changes; errors are ElevenLabsError, as in ElevenLabsAPI."""

    async def get(self, agent_id: str) -> dict[str, Any]:
        """The agent document; ElevenLabsError(status=404) when there is no such agent."""
        return await self._request("GET", agent_path(agent_id))

    async def update(self, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH the agent (objects are merged); returns the agent as the API answers."""
        return await self._request("PATCH", agent_path(agent_id), changes)


def agent_path(agent_id: str) -> str:
    # The id goes into the path: escape it so that "../x" cannot reach another endpoint.
    return AGENT_PATH + quote(agent_id, safe="")
