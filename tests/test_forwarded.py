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


def scope(client: tuple[str, int] | None, *headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "scheme": "http", "client": client, "headers": list(headers)}


PEER = ("10.1.2.3", 4711)
XFF = b"x-forwarded-for"


@pytest.mark.parametrize(
    ("proxies", "headers", "client", "scheme"),
    [
        # No trusted proxy: the socket peer, whatever the headers say.
        (0, [(XFF, b"203.0.113.9"), (b"x-forwarded-proto", b"https")], PEER, "http"),
        # One (Heroku's router): the rightmost entry, which the router appended.
        (1, [(XFF, b"203.0.113.9")], ("203.0.113.9", 0), "http"),
        (1, [(XFF, b"192.0.2.1, 203.0.113.9")], ("203.0.113.9", 0), "http"),
        (
            1,
            [(XFF, b"192.0.2.1,203.0.113.9 "), (b"x-forwarded-proto", b"https")],
            ("203.0.113.9", 0),
            "https",
        ),
        (2, [(XFF, b"192.0.2.1, 203.0.113.9, 10.0.0.1")], ("203.0.113.9", 0), "http"),
        # Fewer entries than proxies: the outermost one there is.
        (2, [(XFF, b"203.0.113.9")], ("203.0.113.9", 0), "http"),
        # No header: the peer.
        (1, [], PEER, "http"),
        (1, [(XFF, b" , ")], PEER, "http"),
        # Two header lines: which one a proxy appended to is unknown, so no address.
        (1, [(XFF, b"192.0.2.1"), (XFF, b"203.0.113.9")], None, "http"),
        # A scheme other than http(s) is ignored; the last entry is the nearest proxy's.
        (1, [(b"x-forwarded-proto", b"gopher")], PEER, "http"),
        (1, [(b"x-forwarded-proto", b"http, HTTPS")], PEER, "https"),
    ],
)
def test_behind_proxies_trusts_only_the_hops_the_deployment_adds(
    proxies: int,
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    scheme: str,
) -> None:
    request = scope(PEER, *headers)
    forwarded.behind_proxies(request, proxies)
    assert request["client"] == client
    assert request["scheme"] == scheme


def test_behind_proxies_leaves_lifespan_alone() -> None:
    lifespan: dict[str, object] = {"type": "lifespan"}
    forwarded.behind_proxies(lifespan, 1)
    assert lifespan == {"type": "lifespan"}
