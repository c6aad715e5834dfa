"""bridge.forwarded: X-Forwarded-* count only when trusted."""

from __future__ import annotations

import pytest

from bridge import forwarded

PROXY = {"x-forwarded-proto": "https, http", "x-forwarded-host": "bridge.example.com, internal"}


@pytest.mark.parametrize(
    ("headers", "trust", "expected"),
    [
        (PROXY, True, ("https", "bridge.example.com")),
        (PROXY, False, ("http", "internal:8000")),
        ({}, True, ("http", "internal:8000")),
        ({"x-forwarded-proto": " https "}, True, ("https", "internal:8000")),
    ],
)
def test_origin(headers: dict[str, str], trust: bool, expected: tuple[str, str]) -> None:
    assert forwarded.origin("http", "internal:8000", headers, trust=trust) == expected
