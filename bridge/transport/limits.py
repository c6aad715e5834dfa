"""How much of an upstream's answer a transport reads into memory.

Each caller says what its endpoint can legitimately return, in the request's
`RESPONSE_LIMIT` extension (register-call's TwiML is a few hundred bytes, a
created call's JSON a few KB); a request that says nothing gets
`MAX_RESPONSE_BYTES`. A longer body is an `httpx.RemoteProtocolError`, read no
further, on every transport.
"""

from __future__ import annotations

import httpx

MAX_RESPONSE_BYTES = 1024 * 1024
RESPONSE_LIMIT = "callbridge.max_response_bytes"
# A JSON answer about one call (created, updated, placed), or an error page.
CALL_RESPONSE_BYTES = 64 * 1024


def response_limit(request: httpx.Request) -> int:
    limit = request.extensions.get(RESPONSE_LIMIT)
    return limit if isinstance(limit, int) and limit > 0 else MAX_RESPONSE_BYTES


class ResponseTooLarge(httpx.RemoteProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")
