from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from bridge.elevenlabs.webhook_signature import (
    DEFAULT_FUTURE_SKEW,
    DEFAULT_TOLERANCE,
    Reason,
    Verdict,
    secrets_from,
    sign,
    verify,
)
from bridge.secret import Secret

SECRET = "wsec_test"
OLD_SECRET = "wsec_old"
T = 1700000000
BODY = b'{"type":"post_call_transcription","data":{}}'
# Computed once with `printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac wsec_test`
# and checked again below with a hand-built HMAC (RFC 2104 over hashlib.sha256).
EXPECTED = "6f63229c4c17b7adb882899091e036ca1b6abcd57ee5673a8e16e3fbca80764e"
EXPECTED_OLD = "25202b721530bf5db95058bab58a5e71ec41ebda695adfacab9b4ee4a05411b4"
# Not UTF-8: openssl over the bytes b"1700000000.\xff\xfe{}".
BINARY_BODY = b"\xff\xfe{}"
EXPECTED_BINARY = "ea0d00628793f3ce5d3f8523ff6974250dab896a7698977ede5f0dd619e7cf6e"
HEADER = f"t={T},v0={EXPECTED}"
OTHER_DIGEST = "0" * 64


def rfc2104(key: bytes, message: bytes) -> str:
    block = 64
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).hexdigest()


@pytest.mark.parametrize(
    ("secret", "body", "expected"),
    [
        (SECRET, BODY, EXPECTED),
        (OLD_SECRET, BODY, EXPECTED_OLD),
        (SECRET, BINARY_BODY, EXPECTED_BINARY),
    ],
)
def test_known_answers(secret: str, body: bytes, expected: str) -> None:
    message = f"{T}.".encode() + body
    assert rfc2104(secret.encode(), message) == expected
    assert hmac.new(secret.encode(), message, hashlib.sha256).hexdigest() == expected
    assert sign(body, secret, T) == f"t={T},v0={expected}"
    assert sign(body, Secret(secret), T) == f"t={T},v0={expected}"
    assert verify(f"t={T},v0={expected}", body, [secret], now=T) == Verdict(True, "valid")


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        (HEADER, BODY, "valid"),
        (f"t={T},v0={EXPECTED.upper()}", BODY, "valid"),
        (f"  v0={EXPECTED} ,  t={T}  ", BODY, "valid"),
        (f"t={T},v0={EXPECTED},v1=whatever,scheme=", BODY, "valid"),
        (f"t={T},,v0={EXPECTED},", BODY, "valid"),
        (f"t={T},t={T},v0={EXPECTED}", BODY, "valid"),
        (HEADER, BODY + b" ", "mismatch"),
        (HEADER, BODY.replace(b"{}", b'{"x":1}'), "mismatch"),
        (HEADER, b"", "mismatch"),
        (f"t={T + 1},v0={EXPECTED}", BODY, "mismatch"),
        (f"t=0{T},v0={EXPECTED}", BODY, "mismatch"),
        (f"t={T},v0={OTHER_DIGEST}", BODY, "mismatch"),
        (f"t={T},v0={EXPECTED_OLD}", BODY, "mismatch"),
    ],
)
def test_body_and_timestamp_are_signed(header: str, body: bytes, reason: Reason) -> None:
    assert verify(header, body, [SECRET], now=T) == Verdict(reason == "valid", reason)


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (T, "valid"),
        (T + DEFAULT_TOLERANCE - 1, "valid"),
        (T + DEFAULT_TOLERANCE, "valid"),
        (T + DEFAULT_TOLERANCE + 0.5, "stale_timestamp"),
        (T + DEFAULT_TOLERANCE + 1, "stale_timestamp"),
        (T + 86400, "stale_timestamp"),
        (T - DEFAULT_FUTURE_SKEW, "valid"),
        (T - DEFAULT_FUTURE_SKEW - 0.5, "future_timestamp"),
        (T - DEFAULT_FUTURE_SKEW - 1, "future_timestamp"),
        (T - 86400, "future_timestamp"),
    ],
)
def test_timestamp_window(now: float, reason: Reason) -> None:
    assert verify(HEADER, BODY, [SECRET], now=now) == Verdict(reason == "valid", reason)


@pytest.mark.parametrize(
    ("now", "tolerance", "future_skew", "reason"),
    [
        (T + 60, 60, 0, "valid"),
        (T + 61, 60, 0, "stale_timestamp"),
        (T, 0, 0, "valid"),
        (T - 1, 0, 0, "future_timestamp"),
        (T - 10, 0, 10, "valid"),
    ],
)
def test_custom_window(now: float, tolerance: float, future_skew: float, reason: Reason) -> None:
    verdict = verify(HEADER, BODY, [SECRET], now=now, tolerance=tolerance, future_skew=future_skew)
    assert verdict == Verdict(reason == "valid", reason)


def test_default_clock_is_wall_time() -> None:
    fresh = sign(BODY, SECRET, int(time.time()))
    assert verify(fresh, BODY, [SECRET]) == Verdict(True, "valid")
    assert verify(HEADER, BODY, [SECRET]) == Verdict(False, "stale_timestamp")


def test_a_forged_stale_request_is_a_mismatch_not_stale() -> None:
    forged = f"t={T},v0={OTHER_DIGEST}"
    assert verify(forged, BODY, [SECRET], now=T + 86400) == Verdict(False, "mismatch")


@pytest.mark.parametrize(
    ("configured", "signed_with", "ok"),
    [
        # During rotation both are configured and both are accepted, in either order.
        ([SECRET, OLD_SECRET], SECRET, True),
        ([SECRET, OLD_SECRET], OLD_SECRET, True),
        ([OLD_SECRET, SECRET], SECRET, True),
        ([Secret(SECRET), Secret(OLD_SECRET)], OLD_SECRET, True),
        (secrets_from(f"{SECRET},{OLD_SECRET}"), OLD_SECRET, True),
        (secrets_from(Secret(f"{SECRET}, {OLD_SECRET}")), SECRET, True),
        # After rotation only the new one.
        ([SECRET], SECRET, True),
        ([SECRET], OLD_SECRET, False),
        (secrets_from(SECRET), OLD_SECRET, False),
        # Empty entries are skipped, not treated as a key.
        (["", SECRET], SECRET, True),
        ([Secret(""), OLD_SECRET], SECRET, False),
    ],
)
def test_rotation(configured: list[Secret | str], signed_with: str, ok: bool) -> None:
    verdict = verify(sign(BODY, signed_with, T), BODY, configured, now=T)
    assert verdict == (Verdict(True, "valid") if ok else Verdict(False, "mismatch"))


@pytest.mark.parametrize(
    "header",
    [
        f"t={T},v0={OTHER_DIGEST},v0={EXPECTED}",
        f"t={T},v0={EXPECTED},v0={OTHER_DIGEST}",
        f"v0={EXPECTED_OLD},t={T},v0={EXPECTED}",
    ],
)
def test_any_v0_value_may_match(header: str) -> None:
    assert verify(header, BODY, [SECRET], now=T) == Verdict(True, "valid")


def test_several_v0_values_and_several_secrets() -> None:
    header = f"t={T},v0={OTHER_DIGEST},v0={EXPECTED_OLD}"
    assert verify(header, BODY, ["nope", OLD_SECRET], now=T) == Verdict(True, "valid")
    assert verify(header, BODY, ["nope", SECRET], now=T) == Verdict(False, "mismatch")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_header"),
        ("", "missing_header"),
        ("   ", "missing_header"),
        (",", "malformed_header"),
        ("garbage", "malformed_header"),
        (f"v0={EXPECTED}", "malformed_header"),
        (f"t={T}", "malformed_header"),
        (f"t={T},v0=", "malformed_header"),
        (f"t=,v0={EXPECTED}", "malformed_header"),
        (f"t=abc,v0={EXPECTED}", "malformed_header"),
        (f"t=-{T},v0={EXPECTED}", "malformed_header"),
        (f"t=+{T},v0={EXPECTED}", "malformed_header"),
        (f"t={T}.5,v0={EXPECTED}", "malformed_header"),
        (f"t=1_700_000_000,v0={EXPECTED}", "malformed_header"),
        # Arabic-Indic digits: str.isdigit() and int() accept them.
        ("t=\u0661\u0667" + "\u0660" * 8 + f",v0={EXPECTED}", "malformed_header"),
        (f"t={'9' * 16},v0={EXPECTED}", "malformed_header"),
        (f"t={T},t={T + 1},v0={EXPECTED}", "malformed_header"),
        (f"t={T},v0={EXPECTED[:-1]}g", "malformed_header"),
        (f"t={T},v0={EXPECTED[:-2]}", "malformed_header"),
        (f"t={T},v0={EXPECTED}00", "malformed_header"),
        (f"t={T},v0=0x{EXPECTED[2:]}", "malformed_header"),
        (f"t={T},v0={OTHER_DIGEST},v0=zz", "malformed_header"),
        (f"t={T},=x,v0={EXPECTED}", "malformed_header"),
        (f"t={T},v0={EXPECTED},x", "malformed_header"),
        (f"t={T};v0={EXPECTED}", "malformed_header"),
        (f"T={T},V0={EXPECTED}", "malformed_header"),
        (f"t={T},v0={EXPECTED}," + "x=1," * 1200, "malformed_header"),
    ],
)
def test_malformed_headers(header: str | None, reason: Reason) -> None:
    assert verify(header, BODY, [SECRET], now=T) == Verdict(False, reason)


@pytest.mark.parametrize(
    "secrets",
    [[], [""], [Secret("")], ["", Secret("")], secrets_from(""), secrets_from(" , ,")],
)
def test_no_secret(secrets: list[Secret | str]) -> None:
    assert verify(HEADER, BODY, secrets, now=T) == Verdict(False, "no_secret")
    assert verify(None, BODY, secrets, now=T) == Verdict(False, "no_secret")


@pytest.mark.parametrize("secrets", [SECRET, Secret(SECRET)])
def test_a_bare_secret_is_a_type_error(secrets: str | Secret) -> None:
    with pytest.raises(TypeError):
        verify(HEADER, BODY, secrets, now=T)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tolerance", "future_skew"), [(-1, 300), (1800, -1)])
def test_negative_window_is_a_value_error(tolerance: float, future_skew: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        verify(HEADER, BODY, [SECRET], now=T, tolerance=tolerance, future_skew=future_skew)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("  ", []),
        ("new", ["new"]),
        (" new ", ["new"]),
        ("new,old", ["new", "old"]),
        ("new, old", ["new", "old"]),
        ("new old", ["new", "old"]),
        ("new\n\told,", ["new", "old"]),
        (",new,,old,new", ["new", "old"]),
        (Secret("new,old"), ["new", "old"]),
    ],
)
def test_secrets_from(value: str | Secret, expected: list[str]) -> None:
    assert secrets_from(value) == expected


@pytest.mark.parametrize(
    "header",
    [
        HEADER,
        f"t={T},v0={OTHER_DIGEST}",
        f"t={T},v0=zz",
        f"t={T - 86400},v0={EXPECTED}",
    ],
)
def test_verdicts_never_show_secrets_or_digests(header: str) -> None:
    verdict = verify(header, BODY, [Secret(SECRET), OLD_SECRET], now=T)
    computed = [EXPECTED, EXPECTED_OLD, sign(BODY, SECRET, T - 86400).split("v0=")[1]]
    for shown in (repr(verdict), str(verdict), verdict.reason):
        for hidden in [SECRET, OLD_SECRET, *computed]:
            assert hidden not in shown
