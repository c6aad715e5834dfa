"""Checking the `ElevenLabs-Signature` header of post-call webhooks.

The header is `t=<unix seconds>,v0=<hex>`, where the hex is
HMAC-SHA256(secret, t + "." + raw body), over the body bytes exactly as received
(never a re-serialised JSON). Parts may come in any order with whitespace around
them; several `v0=` values may be sent (any one may match); unknown keys are
ignored. The `t` text is signed as sent, so a re-formatted timestamp does not match.

A request is accepted when some configured secret matches some `v0`, and `t` is
neither older than `tolerance` (30 minutes, like ElevenLabs' SDK) nor further
ahead than `future_skew` (5 minutes of clock skew). Every secret and every `v0`
is compared, in constant time. Reasons never carry a secret or a digest.

Rotating the secret: set `ELEVENLABS_WEBHOOK_SECRET="new,old"` (commas and/or
whitespace separate secrets) while ElevenLabs may still sign with either, then
set it to just `new`:

    verify(header, body, secrets_from(settings.elevenlabs_webhook_secret))

An endpoint can refuse before it reads the body: `check_header` looks at the
header's presence, shape and timestamp alone, and `BodyHasher` takes the body a
chunk at a time as it arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bridge.secret import Secret

HEADER = "ElevenLabs-Signature"
DEFAULT_TOLERANCE = 30 * 60
DEFAULT_FUTURE_SKEW = 5 * 60
MAX_HEADER_LENGTH = 4096

Reason = Literal[
    "valid",
    "no_secret",
    "missing_header",
    "malformed_header",
    "mismatch",
    "stale_timestamp",
    "future_timestamp",
]

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: Reason


def secrets_from(value: Secret | str) -> list[str]:
    """The secrets in a setting: split on commas and whitespace, empties and repeats dropped."""
    raw = value.reveal() if isinstance(value, Secret) else value
    return list(dict.fromkeys(part for part in _SEPARATORS.split(raw) if part))


def sign(body: bytes, secret: Secret | str, timestamp: int) -> str:
    """The header value ElevenLabs would send for `body` at `timestamp`."""
    return f"t={timestamp},v0={_digest(_reveal(secret), str(timestamp), body)}"


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """A header fit to be checked against a body: `t` as sent, and the v0 digests."""

    stamp: str
    digests: list[bytes]


def check_header(
    header: str | None,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    future_skew: float = DEFAULT_FUTURE_SKEW,
) -> SignedHeader | Verdict:
    """What can be told from the header alone: a refusing Verdict (missing, malformed,
    stale, future), or the header to check the body against."""
    signed = _signed_header(header)
    if isinstance(signed, Verdict):
        return signed
    return _timely(signed.stamp, now, tolerance, future_skew) or signed


def _signed_header(header: str | None) -> SignedHeader | Verdict:
    if not header or not header.strip():
        return Verdict(False, "missing_header")
    parsed = _parse(header)
    if parsed is None:
        return Verdict(False, "malformed_header")
    return SignedHeader(*parsed)


class BodyHasher:
    """The HMACs of a body fed a chunk at a time, one per secret; `verdict` compares
    them with a header's digests (every secret and every digest, constant time)."""

    def __init__(self, secrets: Sequence[Secret | str], stamp: str) -> None:
        keys = [key for key in (_reveal(secret) for secret in secrets) if key]
        self._macs = [hmac.new(key.encode(), stamp.encode() + b".", hashlib.sha256) for key in keys]

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def verdict(self, signed: SignedHeader) -> Verdict:
        if not self._macs:
            return Verdict(False, "no_secret")
        matched = False
        for mac in self._macs:
            expected = mac.hexdigest().encode()
            for candidate in signed.digests:
                matched |= hmac.compare_digest(expected, candidate)
        return Verdict(True, "valid") if matched else Verdict(False, "mismatch")


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[Secret | str],
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    future_skew: float = DEFAULT_FUTURE_SKEW,
) -> Verdict:
    """Whether `header` signs `body` with one of `secrets`, at an acceptable time."""
    if isinstance(secrets, str | Secret):
        raise TypeError("secrets must be a sequence of secrets; use secrets_from() on a setting")
    if tolerance < 0 or future_skew < 0:
        raise ValueError("tolerance and future_skew must not be negative")
    if not any(_reveal(secret) for secret in secrets):
        return Verdict(False, "no_secret")
    signed = _signed_header(header)
    if isinstance(signed, Verdict):
        return signed
    hasher = BodyHasher(secrets, signed.stamp)
    hasher.update(body)
    # The digest before the time: a forged header learns nothing about the window.
    matched = hasher.verdict(signed)
    if not matched.ok:
        return matched
    return _timely(signed.stamp, now, tolerance, future_skew) or matched


def _timely(stamp: str, now: float | None, tolerance: float, future_skew: float) -> Verdict | None:
    """A refusing Verdict when `stamp` is outside the window, else None."""
    if tolerance < 0 or future_skew < 0:
        raise ValueError("tolerance and future_skew must not be negative")
    current = time.time() if now is None else now
    if int(stamp) < current - tolerance:
        return Verdict(False, "stale_timestamp")
    if int(stamp) > current + future_skew:
        return Verdict(False, "future_timestamp")
    return None


def _parse(header: str) -> tuple[str, list[bytes]] | None:
    """(t as sent, lower-case v0 digests), or None when the header cannot be trusted."""
    if len(header) > MAX_HEADER_LENGTH:
        return None
    stamps: set[str] = set()
    digests: list[bytes] = []
    for part in header.split(","):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name:
            return None
        if name == "t":
            if not _TIMESTAMP.fullmatch(value):
                return None
            stamps.add(value)
        elif name == "v0":
            if not _DIGEST.fullmatch(value):
                return None
            digests.append(value.lower().encode())
    if len(stamps) != 1 or not digests:
        return None
    return stamps.pop(), digests


def _digest(secret: str, stamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _reveal(secret: Secret | str) -> str:
    return secret.reveal() if isinstance(secret, Secret) else secret
