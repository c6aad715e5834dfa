"""Reading a JSON object from an API request, with a size cap."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

MAX_BODY_BYTES = 64 * 1024
BODY_TOO_LARGE = f"Request body is too large (at most {MAX_BODY_BYTES} bytes)."
NOT_JSON = "Request body must be valid JSON."
NOT_OBJECT = "Request body must be a JSON object."


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, read no further than MAX_BODY_BYTES; else BodyError."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyError(413, BODY_TOO_LARGE)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyError(413, BODY_TOO_LARGE)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BodyError(400, NOT_OBJECT)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BodyError(400, NOT_JSON) from None
    if not isinstance(data, dict):
        raise BodyError(400, NOT_OBJECT)
    return data
