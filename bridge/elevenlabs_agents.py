"""Reading and changing ElevenLabs agents (`GET`/`PATCH /v1/convai/agents/{agent_id}`).

register-call only works with agents that speak μ-law 8000 Hz both ways; this is
how `bridge doctor` checks and fixes that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bridge.elevenlabs_api import ElevenLabsError, error_message
from bridge.http import USER_AGENT
from bridge.settings import Secret

AGENT_PATH = "/v1/convai/agents/"
DEFAULT_TIMEOUT = 10.0
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


class ElevenLabsAgents:
    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
        )

    async def get(self, agent_id: str) -> dict[str, Any]:
        """The agent document; ElevenLabsError(status=404) when there is no such agent."""
        return await self._request("GET", agent_id)

    async def update(self, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH the agent (objects are merged); returns the agent as the API answers."""
        return await self._request("PATCH", agent_id, changes)

    async def _request(
        self, method: str, agent_id: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        # The id goes into the path: escape it so that "../x" cannot reach another endpoint.
        path = AGENT_PATH + quote(agent_id, safe="")
        try:
            response = await self._http.request(
                method, path, json=body, headers={"xi-api-key": self._api_key.reveal()}
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise ElevenLabsError("timed out connecting", not_sent=True) from None
        except httpx.ConnectError as exc:
            raise ElevenLabsError(str(exc) or type(exc).__name__, not_sent=True) from None
        except httpx.TimeoutException:
            raise ElevenLabsError("timed out waiting for a response") from None
        except httpx.HTTPError as exc:
            raise ElevenLabsError(str(exc) or type(exc).__name__) from None
        if not response.is_success:
            raise ElevenLabsError(error_message(response), status=response.status_code)
        try:
            data = response.json()
        except ValueError:
            raise ElevenLabsError("the response is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise ElevenLabsError("the response is not a JSON object", status=response.status_code)
        return data

    async def aclose(self) -> None:
        await self._http.aclose()
