"""Twilio's record of a call, read back: `GET /2010-04-01/Accounts/{AccountSid}/Calls/
{CallSid}.json` with the account's Basic auth."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from bridge.reconcile.upstream import Pacer, client, get_json
from bridge.secret import Secret

TIMEOUT = 15.0


class TwilioCalls:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: Secret,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        pacer: Pacer,
        timeout: float = TIMEOUT,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._pacer = pacer
        self._http = client(base_url, transport, timeout)

    async def fetch(self, call_sid: str) -> dict[str, Any]:
        """The Call resource; `Missing` when Twilio does not know the call."""
        path = (
            f"/2010-04-01/Accounts/{quote(self._account_sid, safe='')}"
            f"/Calls/{quote(call_sid, safe='')}.json"
        )
        return await get_json(
            self._http,
            path,
            pacer=self._pacer,
            auth=httpx.BasicAuth(self._account_sid, self._auth_token.reveal()),
        )

    async def aclose(self) -> None:
        await self._http.aclose()
