"""The one place that trusts `X-Forwarded-Proto` and `X-Forwarded-Host`.

Behind a TLS-terminating proxy the server sees `http://` and an internal host. The
proxy's headers say what the client used, but anyone can send them, so they count
only when TRUST_FORWARDED_HEADERS is on.
"""

from __future__ import annotations

from collections.abc import Mapping


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
