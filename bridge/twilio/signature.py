"""Checking `X-Twilio-Signature`: the URL Twilio signed, and the SDK's validator.

Behind a TLS-terminating proxy the app sees `http://` and maybe an internal host,
while Twilio signed the public https URL; so the URL is rebuilt from
PUBLIC_BASE_URL (or trusted X-Forwarded-Proto/Host) plus the raw path and query.

Webhook shared keys (Twilio's Webhooks configuration API, public beta): when a
Webhook Rule signs a URL with a SharedKey, Twilio still sends the signature in
X-Twilio-Signature, over the same text (the URL, then the sorted names and values),
but as an HMAC with the SharedKey's secret and the algorithm named in
`X-Twilio-Webhooks-Signature-Settings: key=<the key's id>,algorithm=HMAC_SHA256`.
With that header the request is checked with TWILIO_WEBHOOK_SHARED_KEY only; without
it, with the auth token (and the previous one) as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

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


class HostNotAllowed(Exception):
    """The request's host is not one TWILIO_ALLOWED_HOSTS lists."""


def signed_url(
    target: RequestTarget,
    *,
    public_base_url: str,
    trust_forwarded: bool,
    allowed_hosts: tuple[str, ...] = (),
) -> str:
    """The URL Twilio signed. Without PUBLIC_BASE_URL it is rebuilt from the request,
    whose host the client chose: then only `allowed_hosts` (when set) are accepted,
    else HostNotAllowed, so a webhook signed for another app cannot be replayed here."""
    path = target.raw_path + (f"?{target.query}" if target.query else "")
    if public_base_url:
        return public_base_url.rstrip("/") + path
    scheme, host = forwarded.origin(
        target.scheme, target.host, target.headers, trust=trust_forwarded
    )
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        raise HostNotAllowed(host)
    return f"{scheme}://{host}{path}"


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether `host` (a Host header: name and maybe port) is one of `allowed` (lower
    case; an entry without a port allows the name on any port)."""
    host = host.strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return host in allowed or name.rstrip(".") in allowed


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    # "valid", "valid_previous_token", "valid_shared_key", "skipped",
    # "missing_signature", "malformed_signature", "no_auth_token", "mismatch",
    # and with X-Twilio-Webhooks-Signature-Settings: "no_shared_key",
    # "malformed_signature_settings", "unknown_algorithm"
    reason: str


# X-Twilio-Signature is the base64 of a 20-byte HMAC-SHA1: always 28 characters.
SIGNATURE_LENGTH = 28

# The algorithms X-Twilio-Webhooks-Signature-Settings may name: each one's hash. Any
# other name is refused.
ALGORITHMS = {"HMAC_SHA256": hashlib.sha256, "HMAC_SHA1": hashlib.sha1}
_DIGEST_SIZES = {name: digest().digest_size for name, digest in ALGORITHMS.items()}
_SETTINGS_NAME_CHARS = 64  # a longer key id or algorithm name is not Twilio's


@dataclass(frozen=True)
class SignatureSettings:
    """What X-Twilio-Webhooks-Signature-Settings says: the SharedKey's id (not a
    secret; sent in clear, so it proves nothing) and the algorithm's name."""

    key: str
    algorithm: str


def parse_signature_settings(header: str) -> SignatureSettings | None:
    """`key=<id>,algorithm=<name>` (names in any case, spaces around parts ignored,
    other parts ignored), or None when it is not of that form or names no algorithm."""
    values: dict[str, str] = {}
    for part in header.split(","):
        name, equals, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not equals or not name or name in values or len(value) > _SETTINGS_NAME_CHARS:
            return None
        values[name] = value
    algorithm = values.get("algorithm", "")
    if not algorithm or not algorithm.isprintable():
        return None
    key = values.get("key", "")
    return SignatureSettings(key=key if key.isprintable() else "", algorithm=algorithm.upper())


def well_formed(signature: str, algorithm: str = "HMAC_SHA1") -> bool:
    """Whether `signature` could be an X-Twilio-Signature made with `algorithm` at all:
    a cheap test that lets junk be refused before its body is read."""
    digest_size = _DIGEST_SIZES[algorithm]
    if len(signature) != 4 * ((digest_size + 2) // 3):
        return False
    try:
        return len(base64.b64decode(signature, validate=True)) == digest_size
    except ValueError:  # binascii.Error
        return False


def refusal(
    signature: str | None,
    auth_token: Secret,
    *,
    signature_settings: str | None = None,
    shared_key: Secret | None = None,
) -> str | None:
    """Why a request must be refused before its body is read ("no_auth_token",
    "missing_signature", "malformed_signature"; with a signature settings header
    "no_shared_key", "malformed_signature_settings", "unknown_algorithm"), or None
    to go on."""
    algorithm = "HMAC_SHA1"
    if signature_settings is not None:
        if not shared_key:
            return "no_shared_key"
        settings = parse_signature_settings(signature_settings)
        if settings is None:
            return "malformed_signature_settings"
        if settings.algorithm not in ALGORITHMS:
            return "unknown_algorithm"
        algorithm = settings.algorithm
    elif not auth_token:
        return "no_auth_token"
    if not signature:
        return "missing_signature"
    if not well_formed(signature, algorithm):
        return "malformed_signature"
    return None


def check_signature(
    *,
    url: str,
    params: Params,
    signature: str | None,
    auth_token: Secret,
    previous_auth_token: Secret | None = None,
    shared_key: Secret | None = None,
    signature_settings: str | None = None,
    skip: bool = False,
) -> SignatureCheck:
    """Check a form post's signature. Pass the form with its repeated keys kept.

    During an auth token rotation Twilio signs with whichever token is primary at
    the time, so a signature made with `previous_auth_token` is accepted too.

    `signature_settings` is X-Twilio-Webhooks-Signature-Settings when the request
    has it (None when not): then only an HMAC with `shared_key` and the algorithm it
    names is accepted; the auth tokens are not tried.

    The cost is bounded for junk: the signed text is built once, then one HMAC per
    token over the URL as given, and one more per token over its default-port
    variant (as the SDK accepts) only when the first did not match.
    """
    if skip:
        return SignatureCheck(True, "skipped")
    refused = refusal(
        signature, auth_token, signature_settings=signature_settings, shared_key=shared_key
    )
    if refused is not None or signature is None:
        return SignatureCheck(False, refused or "missing_signature")
    grouped = params if isinstance(params, Form) else _as_form(params)
    signed_params = _signed_params(grouped).encode()
    given = signature.encode()
    hash_name = hashlib.sha1
    tokens = [(auth_token, "valid")]
    if signature_settings is not None and shared_key:
        settings = parse_signature_settings(signature_settings)
        # Checked by refusal() above: the settings parse and name a known algorithm.
        hash_name = ALGORITHMS[settings.algorithm] if settings else hashlib.sha1
        tokens = [(shared_key, "valid_shared_key")]
    elif previous_auth_token:
        tokens.append((previous_auth_token, "valid_previous_token"))
    for candidate in _url_variants(url):
        for token, verdict in tokens:
            mac = hmac.new(token.reveal().encode(), candidate.encode(), hash_name)
            mac.update(signed_params)
            if hmac.compare_digest(base64.b64encode(mac.digest()), given):
                return SignatureCheck(True, verdict)
    return SignatureCheck(False, "mismatch")


def _signed_params(form: Form) -> str:
    """What Twilio appends to the URL before signing: each name with each of its
    values, sorted (as twilio's RequestValidator.compute_signature builds it)."""
    parts = []
    for name in sorted(form):
        for value in sorted(set(form.getall(name))):
            parts.append(name)
            parts.append(value)
    return "".join(parts)


def _url_variants(url: str) -> Iterator[str]:
    """The URL, then the same with the scheme's default port added or removed: Twilio
    signs either form (the SDK tries both). A URL with another port has no variant."""
    yield url
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        return
    if default is None or parts.hostname is None:
        return
    name = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if port is None:
        yield parts._replace(netloc=f"{parts.netloc}:{default}").geturl()
    elif port == default:
        yield parts._replace(netloc=name).geturl()


# The header Twilio signs its requests with (Starlette's headers ignore its case).
HEADER = "X-Twilio-Signature"
# The header that says a webhook shared key signed the request, and how.
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def sign(url: str, params: Params, auth_token: str) -> str:
    """The signature Twilio sends for a form posted to exactly `url` (query included),
    as the simulator and the sandbox send it; repeated names are kept."""
    grouped = params if isinstance(params, Form) else _as_form(params)
    signed: str = RequestValidator(auth_token).compute_signature(url, grouped)
    return signed
