"""Signed cookie values: `base64url(json).base64url(hmac_sha256(key, that))`.

The one codec for the AI caller's session (`callbridge_session`) and the call-log
page's sign-in (`callbridge_ui`). Values are signed, not encrypted: they hold
nothing secret, only what must not be forged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from bridge.settings import Settings

_SESSION_KEY_LABEL = b"callbridge session cookie v1"


def session_key(settings: Settings) -> bytes:
    """SESSION_SECRET, else a key derived from BRIDGE_API_TOKEN with HMAC-SHA256."""
    if settings.session_secret:
        return settings.session_secret.reveal().encode()
    token = settings.bridge_api_token.reveal()
    if not token:
        raise ValueError("neither SESSION_SECRET nor BRIDGE_API_TOKEN is set")
    return hmac.new(token.encode(), _SESSION_KEY_LABEL, hashlib.sha256).digest()


def dump(data: Any, key: bytes) -> str:
    """`data` as JSON, signed with `key`."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    body = _b64encode(payload)
    return f"{body}.{signature(key, body)}"


def load(value: str | None, key: bytes) -> Any | None:
    """What `dump` signed with `key`; None for anything else (unsigned, forged, not JSON)."""
    if not value:
        return None
    body, _, given = value.rpartition(".")
    if not body or not hmac.compare_digest(signature(key, body).encode(), given.encode()):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None


def signature(key: bytes, body: str) -> str:
    return _b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
