"""Checking `X-Twilio-Signature`: the URL Twilio signed, and the SDK's validator.

Behind a TLS-terminating proxy the app sees `http://` and maybe an internal host,
while Twilio signed the public https URL; so the URL is rebuilt from
PUBLIC_BASE_URL (or trusted X-Forwarded-Proto/Host) plus the raw path and query.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from twilio.request_validator import RequestValidator

from bridge import forwarded
from bridge.secret import Secret
from bridge.twilio.form import Form


class MultiItems(Protocol):
    """A form that keeps repeated names: Starlette's multi-dicts."""

    def multi_items(self) -> list[tuple[str, str]]: ...


# A form: bridge.twilio.form.Form (used as it is), a multi-dict, a plain mapping (one value a
# name), or (name, value) pairs.
Params = Form | MultiItems | Mapping[str, str] | Iterable[tuple[str, str]]


def _as_form(params: MultiItems | Mapping[str, str] | Iterable[tuple[str, str]]) -> Form:
    """Any other shape of a form as a Form: repeated names kept, in the shape the SDK
    reads (`getall`) without its costly fallbacks."""
    if hasattr(params, "multi_items"):
        return Form(params.multi_items())
    if isinstance(params, Mapping):
        return Form(list(params.items()))
    return Form(list(params))


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
    scheme, host = forwarded.origin(
        target.scheme, target.host, target.headers, trust=trust_forwarded
    )
    return f"{scheme}://{host}{path}"


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    # "valid", "valid_previous_token", "skipped", "missing_signature", "no_auth_token",
    # "mismatch"
    reason: str


def check_signature(
    *,
    url: str,
    params: Params,
    signature: str | None,
    auth_token: Secret,
    previous_auth_token: Secret | None = None,
    skip: bool = False,
) -> SignatureCheck:
    """Check a form post's signature. Pass the form with its repeated keys kept.

    During an auth token rotation Twilio signs with whichever token is primary at
    the time, so a signature made with `previous_auth_token` is accepted too.
    """
    if skip:
        return SignatureCheck(True, "skipped")
    if not auth_token:
        return SignatureCheck(False, "no_auth_token")
    if not signature:
        return SignatureCheck(False, "missing_signature")
    grouped = params if isinstance(params, Form) else _as_form(params)
    tokens = [(auth_token, "valid")]
    if previous_auth_token:
        tokens.append((previous_auth_token, "valid_previous_token"))
    validators = [(RequestValidator(token.reveal()), verdict) for token, verdict in tokens]
    # Fast path: the URL exactly as rebuilt, with each token. `validate` computes the
    # signature twice more (with and without :443/:80), which costs more than the rest
    # of a webhook; it is only needed when the exact URL does not match.
    for validator, verdict in validators:
        expected: str = validator.compute_signature(url, grouped)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return SignatureCheck(True, verdict)
    for validator, verdict in validators:
        if validator.validate(url, grouped, signature):
            return SignatureCheck(True, verdict)
    return SignatureCheck(False, "mismatch")


# The header Twilio signs its requests with (Starlette's headers ignore its case).
HEADER = "X-Twilio-Signature"


def sign(url: str, params: Params, auth_token: str) -> str:
    """The signature Twilio sends for a form posted to exactly `url` (query included),
    as the simulator and the sandbox send it; repeated names are kept."""
    grouped = params if isinstance(params, Form) else _as_form(params)
    signed: str = RequestValidator(auth_token).compute_signature(url, grouped)
    return signed
