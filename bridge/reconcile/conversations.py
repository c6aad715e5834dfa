"""ElevenLabs' conversations, read back: `GET /v1/convai/conversations/{id}` (the
same object a transcription webhook carries as `data`) and `GET
/v1/convai/conversations` (an agent's conversations since a time, `page_size` at
most 100, paged by `cursor` while `has_more`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bridge.reconcile.upstream import Fault, Pacer, client, get_json
from bridge.secret import Secret

CONVERSATIONS_PATH = "/v1/convai/conversations"
PAGE_SIZE = 100  # the API's largest page
# A long call's transcript with tool calls runs to megabytes.
CONVERSATION_BYTES = 16 * 1024 * 1024
TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Page:
    conversations: list[dict[str, Any]]
    next_cursor: str | None  # None: the last page


class Conversations:
    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        pacer: Pacer,
        timeout: float = TIMEOUT,
    ) -> None:
        self._api_key = api_key
        self._pacer = pacer
        self._http = client(base_url, transport, timeout)

    async def get(self, conversation_id: str) -> dict[str, Any]:
        """The conversation; `Missing` when ElevenLabs does not know it."""
        return await get_json(
            self._http,
            f"{CONVERSATIONS_PATH}/{quote(conversation_id, safe='')}",
            pacer=self._pacer,
            headers=self._headers(),
            max_bytes=CONVERSATION_BYTES,
        )

    async def page(self, agent_id: str, *, after_unix: int, cursor: str | None) -> Page:
        """One page of the agent's conversations that started after `after_unix`."""
        params: dict[str, Any] = {
            "agent_id": agent_id,
            "call_start_after_unix": after_unix,
            "page_size": PAGE_SIZE,
        }
        if cursor:
            params["cursor"] = cursor
        data = await get_json(
            self._http,
            CONVERSATIONS_PATH,
            pacer=self._pacer,
            params=params,
            headers=self._headers(),
            max_bytes=CONVERSATION_BYTES,
        )
        found = data.get("conversations")
        if not isinstance(found, list):
            raise Fault("the conversations list has no `conversations`")
        next_cursor = data.get("next_cursor")
        more = data.get("has_more") is True and isinstance(next_cursor, str) and next_cursor
        return Page(
            conversations=[item for item in found if isinstance(item, dict)],
            next_cursor=next_cursor if more else None,
        )

    def _headers(self) -> dict[str, str]:
        return {"xi-api-key": self._api_key.reveal()}

    async def aclose(self) -> None:
        await self._http.aclose()
