"""Webhooks signed with a Twilio webhook shared key: X-Twilio-Webhooks-Signature-Settings.

The recipe (twilio-node's examples/WebhookSignatureValidation.md, Twilio's "Sign
webhooks with shared keys"): the signature is still X-Twilio-Signature over the full
URL followed by each name and value, sorted; only the HMAC changes, keyed with the
SharedKey's secret and hashed with the header's algorithm, then base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

import pytest
from starlette.datastructures import ImmutableMultiDict

from bridge.secret import Secret
from bridge.twilio.signature import (
    SignatureCheck,
    SignatureSettings,
    check_signature,
    parse_signature_settings,
    refusal,
    well_formed,
)
from tests.helpers import twilio_signature

AUTH_TOKEN = Secret("12345")
SHARED_KEY = "shared-key-secret-0123456789abcdef"
SETTINGS = "key=webhooks_sharedkey_01abcdefghijklmnopqrstuvwx,algorithm=HMAC_SHA256"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
REPEATED = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]

# Fixed vectors: HMAC-SHA256 with SHARED_KEY, base64 (44 characters).
SIGNATURE = "hgcffglKoXyCEo7JlVH+YSExmPjAGh2EDWeGco8/uu0="
SIGNATURE_443 = "/rFfQMwEmkPVBQj0rJhSz6MA2rZ56Jp6iTWO/gOUPlE="
REPEATED_SIGNATURE = "lGUWLcgs+ayIsoHAJK5bNWohiR4tb8XUJC2Q2D+UeKI="
REPEATED_SIGNATURE_443 = "95+kyDNw2cnGkBKJ43XycyAtj+6cD30air+7rPbfExM="
SHA1_SIGNATURE = "RKHy0BAUg3BEpLQD+9w/ngEo2Eo="  # the same text, HMAC_SHA1 with SHARED_KEY


def recipe(url: str, pairs: Iterable[tuple[str, str]], key: str = SHARED_KEY) -> str:
    """The documented recipe, written out apart from the code under test."""
    text = url + "".join(name + value for name, value in sorted(pairs))
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def check(
    url: str,
    pairs: Iterable[tuple[str, str]],
    signature: str | None,
    *,
    settings: str | None = SETTINGS,
    shared_key: str = SHARED_KEY,
    auth_token: Secret = AUTH_TOKEN,
) -> SignatureCheck:
    return check_signature(
        url=url,
        params=ImmutableMultiDict(list(pairs)),
        signature=signature,
        auth_token=auth_token,
        previous_auth_token=Secret("67890"),
        shared_key=Secret(shared_key),
        signature_settings=settings,
    )


@pytest.mark.parametrize(
    ("url", "pairs", "signature"),
    [
        (URL, list(PARAMS.items()), SIGNATURE),
        (URL_443, list(PARAMS.items()), SIGNATURE_443),
        (URL, REPEATED, REPEATED_SIGNATURE),
        (URL_443, REPEATED, REPEATED_SIGNATURE_443),
    ],
)
def test_fixed_vectors_are_the_recipe(
    url: str, pairs: list[tuple[str, str]], signature: str
) -> None:
    assert recipe(url, pairs) == signature
    assert check(url, pairs, signature) == SignatureCheck(True, "valid_shared_key")


@pytest.mark.parametrize("url", [URL, URL_443])
@pytest.mark.parametrize("signed_for", [URL, URL_443])
def test_url_with_and_without_the_default_port(url: str, signed_for: str) -> None:
    assert check(url, PARAMS.items(), recipe(signed_for, PARAMS.items())).ok


def test_repeated_keys_are_all_signed() -> None:
    assert check(URL, REPEATED, REPEATED_SIGNATURE).ok
    one_digits = [pair for pair in REPEATED if pair != ("Digits", "5678")]
    assert check(URL, one_digits, REPEATED_SIGNATURE) == SignatureCheck(False, "mismatch")


def test_a_json_style_request_signs_the_url_alone() -> None:
    url = "https://mycompany.com/myapp?bodySHA256=5ccde7145dfb8f56479710896586cb9d5911809d8"
    assert check(url, [], recipe(url, [])) == SignatureCheck(True, "valid_shared_key")


def test_sha1_with_the_shared_key_when_the_header_names_it() -> None:
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA1"
    assert check(URL, PARAMS.items(), SHA1_SIGNATURE, settings=settings).ok
    assert not check(URL, PARAMS.items(), SHA1_SIGNATURE).ok  # the header says SHA256


@pytest.mark.parametrize(
    ("signature", "settings", "shared_key", "reason"),
    [
        pytest.param(
            recipe(URL, PARAMS.items(), "wrong"), SETTINGS, SHARED_KEY, "mismatch", id="wrong-key"
        ),
        pytest.param(SIGNATURE, SETTINGS, "another-key", "mismatch", id="other-key-configured"),
        pytest.param(
            SIGNATURE, "key=k,algorithm=HMAC_SHA512", SHARED_KEY, "unknown_algorithm", id="sha512"
        ),
        pytest.param(SIGNATURE, "key=k,algorithm=MD5", SHARED_KEY, "unknown_algorithm", id="md5"),
        pytest.param(SIGNATURE, "key=k", SHARED_KEY, "malformed_signature_settings", id="no-algo"),
        pytest.param(SIGNATURE, "", SHARED_KEY, "malformed_signature_settings", id="empty"),
        pytest.param(
            SIGNATURE, "HMAC_SHA256", SHARED_KEY, "malformed_signature_settings", id="bare"
        ),
        pytest.param(SIGNATURE, SETTINGS, "", "no_shared_key", id="no-key-configured"),
        pytest.param(None, SETTINGS, SHARED_KEY, "missing_signature", id="no-signature"),
        pytest.param(SIGNATURE[:-4], SETTINGS, SHARED_KEY, "malformed_signature", id="short"),
        pytest.param(
            twilio_signature(URL, PARAMS, "12345"),
            SETTINGS,
            SHARED_KEY,
            "malformed_signature",
            id="auth-token-sha1-under-the-header",
        ),
    ],
)
def test_refusals_name_the_reason(
    signature: str | None, settings: str, shared_key: str, reason: str
) -> None:
    result = check(URL, PARAMS.items(), signature, settings=settings, shared_key=shared_key)
    assert result == SignatureCheck(False, reason)


def test_the_header_missing_falls_back_to_the_auth_token() -> None:
    signed = twilio_signature(URL, PARAMS, "12345")
    assert check(URL, PARAMS.items(), signed, settings=None) == SignatureCheck(True, "valid")
    previous = twilio_signature(URL, PARAMS, "67890")
    assert check(URL, PARAMS.items(), previous, settings=None).reason == "valid_previous_token"
    # A shared-key signature without the header is not the auth token's.
    assert check(URL, PARAMS.items(), SIGNATURE, settings=None) == SignatureCheck(
        False, "malformed_signature"
    )


def test_with_the_header_the_auth_tokens_are_not_tried() -> None:
    sha1_settings = "key=k,algorithm=HMAC_SHA1"
    signed = twilio_signature(URL, PARAMS, "12345")
    assert check(URL, PARAMS.items(), signed, settings=sha1_settings) == SignatureCheck(
        False, "mismatch"
    )


def test_a_shared_key_alone_is_enough_with_the_header() -> None:
    result = check(URL, PARAMS.items(), SIGNATURE, auth_token=Secret(""))
    assert result == SignatureCheck(True, "valid_shared_key")
    assert check(URL, PARAMS.items(), SIGNATURE, settings=None, auth_token=Secret("")) == (
        SignatureCheck(False, "no_auth_token")
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            SETTINGS,
            SignatureSettings("webhooks_sharedkey_01abcdefghijklmnopqrstuvwx", "HMAC_SHA256"),
        ),
        ("algorithm=hmac_sha256, key=KY1", SignatureSettings("KY1", "HMAC_SHA256")),
        (" Key = KY1 , Algorithm = HMAC_SHA256 ", SignatureSettings("KY1", "HMAC_SHA256")),
        ("algorithm=HMAC_SHA256", SignatureSettings("", "HMAC_SHA256")),
        ("key=KY1,algorithm=HMAC_SHA256,version=2", SignatureSettings("KY1", "HMAC_SHA256")),
        ("key=KY1,algorithm=", None),
        ("key=KY1,key=KY2,algorithm=HMAC_SHA256", None),
        ("key=KY1;algorithm=HMAC_SHA256", None),
        ("algorithm=" + "A" * 65, None),
        ("algorithm=HMAC\x00SHA256", None),
        ("key=\x1b[31m,algorithm=HMAC_SHA256", SignatureSettings("", "HMAC_SHA256")),
    ],
)
def test_parse_signature_settings(header: str, expected: SignatureSettings | None) -> None:
    assert parse_signature_settings(header) == expected


@pytest.mark.parametrize(
    ("signature", "algorithm", "expected"),
    [
        (SIGNATURE, "HMAC_SHA256", True),
        (SIGNATURE, "HMAC_SHA1", False),
        (SHA1_SIGNATURE, "HMAC_SHA1", True),
        (SHA1_SIGNATURE, "HMAC_SHA256", False),
        ("!" * 44, "HMAC_SHA256", False),
    ],
)
def test_well_formed_fits_the_algorithm(signature: str, algorithm: str, expected: bool) -> None:
    assert well_formed(signature, algorithm) is expected


def test_refusal_before_the_body() -> None:
    key = Secret(SHARED_KEY)
    assert refusal(SIGNATURE, AUTH_TOKEN, signature_settings=SETTINGS, shared_key=key) is None
    assert refusal(SIGNATURE, AUTH_TOKEN) == "malformed_signature"
    assert refusal(SIGNATURE, AUTH_TOKEN, signature_settings=SETTINGS) == "no_shared_key"
