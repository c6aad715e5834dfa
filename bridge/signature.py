"""Checking `X-Twilio-Signature`: the URL Twilio signed, and the SDK's validator.

Behind a TLS-terminating proxy the app sees `http://` and maybe an internal host,
while Twilio signed the public https URL; so the URL is rebuilt from
PUBLIC_BASE_URL (or trusted X-Forwarded-Proto/Host) plus the raw path and query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from twilio.request_validator import RequestValidator

from bridge.settings import Secret


class FormParams(Protocol):
    """A form that keeps repeated keys (Starlette's FormData, ImmutableMultiDict)."""

    def getlist(self, key: str) -> list[str]: ...

    def __iter__(self) -> object: ...


@dataclass(frozen=True)
class RequestTarget:
    """What the server saw of the request line and headers."""

    scheme: str
    host: str
    raw_path: str
    query: str
    headers: Mapping[str, str]


def signed_url(target: RequestTarget, *, public_base_url: str, trust_forwarded: bool) -> str:
    path = target.raw_path + (f"?{target.query}" if target.query else "")
    if public_base_url:
        return public_base_url.rstrip("/") + path
    scheme, host = target.scheme, target.host
    if trust_forwarded:
        # A proxy chain appends: the first entry is what the client (Twilio) used.
        scheme = _first(target.headers.get("x-forwarded-proto")) or scheme
        host = _first(target.headers.get("x-forwarded-host")) or host
    return f"{scheme}://{host}{path}"


def _first(value: str | None) -> str:
    return value.split(",")[0].strip() if value else ""


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    reason: str  # "valid", "skipped", "missing_signature", "no_auth_token", "mismatch"


def check_signature(
    *,
    url: str,
    params: FormParams,
    signature: str | None,
    auth_token: Secret,
    skip: bool = False,
) -> SignatureCheck:
    if skip:
        return SignatureCheck(True, "skipped")
    if not auth_token:
        return SignatureCheck(False, "no_auth_token")
    if not signature:
        return SignatureCheck(False, "missing_signature")
    # The SDK compares in constant time and tries the URL with and without :443/:80.
    validator = RequestValidator(auth_token.reveal())
    if validator.validate(url, params, signature):
        return SignatureCheck(True, "valid")
    return SignatureCheck(False, "mismatch")
