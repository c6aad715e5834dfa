"""Reading request bodies: the one capped reader and the one error for bad bodies.

The reader speaks ASGI (`receive`), so the Twilio webhooks, which skip Starlette's
Request on their hot path, share it with the endpoints that have a Request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import Receive

MAX_BODY_BYTES = 64 * 1024
# A whole body must arrive within this (a slowly dripping one holds a socket and a
# task): Twilio gives up on a webhook after 15 s, Heroku's router after 30 s.
BODY_READ_SECONDS = 20.0
NOT_JSON = "Request body must be valid JSON."
NOT_OBJECT = "Request body must be a JSON object."
DISCONNECTED = "Client disconnected."
TOO_SLOW = "Request body was not received in time."


def too_large(limit: int) -> str:
    return f"Request body is too large (at most {limit} bytes)."


class BadBody(Exception):
    """The body cannot be used: `status` and `message` are what the client gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_capped(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The whole body, read no further than `limit` bytes; else BadBody (413, 400
    when the client went away, 408 when it took over BODY_READ_SECONDS)."""
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            return await _read_capped(headers, receive, limit)
    except TimeoutError:
        raise BadBody(408, TOO_SLOW) from None


async def _read_capped(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadBody(413, too_large(limit))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadBody(400, DISCONNECTED)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadBody(413, too_large(limit))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """`read_capped` for an endpoint with a Request."""
    return await read_capped(request.headers, request.receive, limit)


async def read_feeding(request: Request, limit: int, feed: Callable[[bytes], None]) -> bytes:
    """`read`, handing each chunk to `feed` as it arrives (a streamed HMAC)."""

    async def receive() -> Any:
        message = await request.receive()
        if message["type"] == "http.request":
            feed(message.get("body", b""))
        return message

    return await read_capped(request.headers, receive, limit)


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object; else BadBody (400)."""
    if not raw.strip():
        raise BadBody(400, NOT_OBJECT)
    try:
        # NaN and Infinity are not JSON (and PostgreSQL refuses them in JSON columns).
        data = json.loads(raw, parse_constant=_not_a_number)
    except (ValueError, RecursionError):
        raise BadBody(400, NOT_JSON) from None
    if not isinstance(data, dict):
        raise BadBody(400, NOT_OBJECT)
    return data


async def json_object(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object, read no further than `limit` bytes; else BadBody."""
    return parse_json_object(await read(request, limit))
