"""The one place that reads `X-Forwarded-*`.

Behind a TLS-terminating proxy the server sees `http://`, an internal host and the
proxy's address. The proxy's headers say what the client used, but anyone can send
them too:

- `behind_proxies` decides the client address and scheme of every request (the
  webhook allowlist, login throttling, logs, cookies and signed URLs read them from
  the scope): with TRUSTED_PROXY_COUNT = n, the n-th `X-Forwarded-For` entry from
  the right, the one the outermost trusted proxy appended (a client can only write
  entries to the left of it); with 0, the socket peer and nothing from the headers.
- `origin` reads `X-Forwarded-Host` only when TRUST_FORWARDED_HEADERS is on.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any


def origin(scheme: str, host: str, headers: Mapping[str, str], *, trust: bool) -> tuple[str, str]:
    """(scheme, host) as the client used them: the forwarded ones when trusted and sent."""
    if not trust:
        return scheme, host
    # A proxy chain appends: the first entry is what the client used.
    return (
        _first(headers.get("x-forwarded-proto")) or scheme,
        _first(headers.get("x-forwarded-host")) or host,
    )


def _first(value: str | None) -> str:
    return value.split(",")[0].strip() if value else ""


_SCHEMES = ("http", "https")


def behind_proxies(scope: MutableMapping[str, Any], trusted_proxies: int) -> None:
    """Set the scope's `client` and `scheme` to what the trusted proxies saw.

    With no trusted proxy, the socket peer and scheme stay. Two `X-Forwarded-For`
    lines make the address unknown (None): which one a proxy appended to is not known.
    """
    if trusted_proxies <= 0 or scope["type"] != "http":
        return
    hops: list[str] = []
    lines = 0
    proto = ""
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            lines += 1
            hops = [hop.strip() for hop in value.decode("latin-1").split(",") if hop.strip()]
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
    if lines > 1:
        scope["client"] = None
    elif hops:
        scope["client"] = (hops[max(0, len(hops) - trusted_proxies)], 0)
    if proto in _SCHEMES:
        scope["scheme"] = proto
