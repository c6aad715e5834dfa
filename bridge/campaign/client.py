"""Placing one call through the bridge's `POST /calls` API, and the row's Idempotency-Key.

The key is derived from the campaign name and the destination number only: not from
the row number or the file's bytes, which change when rows are inserted or fixed, nor
from the row's other cells, which would make an edited row a new call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    """What `POST /calls` answered. `placed` is None when nobody can tell."""

    status: int | None
    body: dict[str, Any]
    placed: bool | None
    error: str = ""
    replayed: bool = False


async def post_call(
    client: httpx.AsyncClient, body: Mapping[str, Any], *, idempotency_key: str | None = None
) -> Answer:
    headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
    try:
        response = await client.post("/calls", json=dict(body), headers=headers)
    except httpx.TransportError as exc:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        detail = str(exc) or type(exc).__name__
        return Answer(
            None,
            {},
            placed=False if never_sent else None,
            error=f"cannot reach the bridge: {detail}",
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    replayed = response.headers.get("idempotent-replayed") == "true"
    status = response.status_code
    if not isinstance(data, dict):
        # Not the bridge's answer: a proxy's error page. Past the proxy, who knows.
        text = " ".join(response.text.split())[:200]
        return Answer(
            status, {}, placed=None if status >= 500 else False, error=f"HTTP {status}: {text}"
        )
    if status == 201:
        return Answer(status, data, placed=True, replayed=replayed)
    message = data.get("error") if isinstance(data.get("error"), str) else response.text[:200]
    placed = None if data.get("placed") == "unknown" else False
    return Answer(status, data, placed=placed, error=f"HTTP {status}: {message}", replayed=replayed)


def idempotency_key(campaign: str, number: str) -> str:
    digest = hashlib.sha256(f"{campaign}\n{number}".encode()).hexdigest()
    return f"campaign-{digest[:40]}"
