"""bridge.web.bodies: the one capped body reader, for ASGI and for Requests."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.web.bodies import BadBody, parse_json_object, read_capped


def receiver(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def chunk(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "messages", "expected"),
    [
        ({}, [chunk(b"abc")], b"abc"),
        ({"content-length": "6"}, [chunk(b"abc", more=True), chunk(b"def")], b"abcdef"),
        ({}, [chunk(b"")], b""),
        ({"content-length": "11"}, [], (413, "Request body is too large (at most 10 bytes).")),
        ({"content-length": "ten"}, [], (413, "Request body is too large (at most 10 bytes).")),
        (
            {},
            [chunk(b"x" * 6, more=True), chunk(b"x" * 5)],
            (413, "Request body is too large (at most 10 bytes)."),
        ),
        ({}, [chunk(b"ab", more=True), {"type": "http.disconnect"}], (400, "Client disconnected.")),
    ],
)
async def test_read_capped(
    headers: dict[str, str], messages: list[dict[str, Any]], expected: bytes | tuple[int, str]
) -> None:
    if isinstance(expected, bytes):
        assert await read_capped(headers, receiver(*messages), 10) == expected
        return
    with pytest.raises(BadBody) as caught:
        await read_capped(headers, receiver(*messages), 10)
    assert (caught.value.status, caught.value.message) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"", "Request body must be a JSON object."),
        (b"[1]", "Request body must be a JSON object."),
        (b"{", "Request body must be valid JSON."),
        (b"[" * 50_000, "Request body must be valid JSON."),
    ],
)
def test_parse_json_object(raw: bytes, expected: dict[str, Any] | str) -> None:
    if isinstance(expected, dict):
        assert parse_json_object(raw) == expected
        return
    with pytest.raises(BadBody) as caught:
        parse_json_object(raw)
    assert (caught.value.status, caught.value.message) == (400, expected)
