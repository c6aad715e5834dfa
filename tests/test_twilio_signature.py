from __future__ import annotations

import pytest
from starlette.datastructures import Headers, ImmutableMultiDict

from bridge.secret import Secret
from bridge.twilio.signature import RequestTarget, SignatureCheck, check_signature, signed_url
from tests.helpers import twilio_signature

TOKEN = Secret("12345")
EXAMPLE_URL = "https://example.com/myapp.php?foo=1&bar=2"
MYCOMPANY_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
MYCOMPANY_URL_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"

# Twilio's documentation example ("Validating requests", security page).
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
# twilio-python's tests/unit/test_request_validator.py.
SDK_PARAMS = {**DOCS_PARAMS, "Caller": "+14158675309", "From": "+14158675309"}
SDK_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SDK_SIGNATURE_WITH_PORT = "kvajT1Ptam85bY51eRf/AJRuM3w="

REPEATED_PAIRS = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
REPEATED_SIGNATURE = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def check(
    url: str,
    params: ImmutableMultiDict[str, str],
    signature: str | None,
    *,
    token: Secret = TOKEN,
    skip: bool = False,
) -> SignatureCheck:
    return check_signature(url=url, params=params, signature=signature, auth_token=token, skip=skip)


# --- known-answer vectors --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (EXAMPLE_URL, DOCS_PARAMS, "L/OH5YylLD5NRKLltdqwSvS0BnU="),
        (MYCOMPANY_URL, DOCS_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        (MYCOMPANY_URL, SDK_PARAMS, SDK_SIGNATURE),
        (MYCOMPANY_URL_443, SDK_PARAMS, SDK_SIGNATURE_WITH_PORT),
    ],
)
def test_twilio_known_answer_vectors(url: str, params: dict[str, str], signature: str) -> None:
    assert check(url, ImmutableMultiDict(params), signature) == SignatureCheck(True, "valid")


@pytest.mark.parametrize("url", [MYCOMPANY_URL, MYCOMPANY_URL_443])
@pytest.mark.parametrize("signature", [SDK_SIGNATURE, SDK_SIGNATURE_WITH_PORT])
def test_url_with_and_without_default_port_both_validate(url: str, signature: str) -> None:
    # Like the SDK: a signature made over either form of the URL is accepted for both.
    assert check(url, ImmutableMultiDict(SDK_PARAMS), signature).ok


def test_docs_vector_is_bound_to_its_url() -> None:
    result = check(MYCOMPANY_URL, ImmutableMultiDict(DOCS_PARAMS), "L/OH5YylLD5NRKLltdqwSvS0BnU=")
    assert result == SignatureCheck(False, "mismatch")


def test_repeated_keys_are_all_signed() -> None:
    params: ImmutableMultiDict[str, str] = ImmutableMultiDict(REPEATED_PAIRS)
    assert params.getlist("Digits") == ["5678", "1234"]
    assert check(MYCOMPANY_URL, params, REPEATED_SIGNATURE) == SignatureCheck(True, "valid")


def test_plain_dict_loses_a_repeated_key_and_fails() -> None:
    flattened = dict(REPEATED_PAIRS)
    assert flattened["Digits"] == "1234"  # "5678" is gone
    result = check_signature(
        url=MYCOMPANY_URL, params=flattened, signature=REPEATED_SIGNATURE, auth_token=TOKEN
    )
    assert result == SignatureCheck(False, "mismatch")


# --- failures and their reasons ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "signature", "token", "skip", "expected"),
    [
        pytest.param(
            EXAMPLE_URL,
            {**DOCS_PARAMS, "Digits": "9999"},
            "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            TOKEN,
            False,
            SignatureCheck(False, "mismatch"),
            id="tampered-parameter",
        ),
        pytest.param(
            EXAMPLE_URL,
            {**DOCS_PARAMS, "Extra": "1"},
            "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            TOKEN,
            False,
            SignatureCheck(False, "mismatch"),
            id="added-parameter",
        ),
        pytest.param(
            "https://example.com/myapp.php?foo=1&bar=3",
            DOCS_PARAMS,
            "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            TOKEN,
            False,
            SignatureCheck(False, "mismatch"),
            id="tampered-query",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            Secret("54321"),
            False,
            SignatureCheck(False, "mismatch"),
            id="wrong-token",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            "not-a-signature",
            TOKEN,
            False,
            SignatureCheck(False, "malformed_signature"),
            id="garbage-signature",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            None,
            TOKEN,
            False,
            SignatureCheck(False, "missing_signature"),
            id="no-header",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            "",
            TOKEN,
            False,
            SignatureCheck(False, "missing_signature"),
            id="empty-header",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            Secret(""),
            False,
            SignatureCheck(False, "no_auth_token"),
            id="no-auth-token",
        ),
        pytest.param(
            EXAMPLE_URL,
            DOCS_PARAMS,
            None,
            Secret(""),
            False,
            SignatureCheck(False, "no_auth_token"),
            id="no-auth-token-and-no-signature",
        ),
        pytest.param(
            EXAMPLE_URL,
            {**DOCS_PARAMS, "Digits": "9999"},
            None,
            Secret(""),
            True,
            SignatureCheck(True, "skipped"),
            id="skip-flag",
        ),
    ],
)
def test_rejections_name_the_reason(
    url: str,
    params: dict[str, str],
    signature: str | None,
    token: Secret,
    skip: bool,
    expected: SignatureCheck,
) -> None:
    assert check(url, ImmutableMultiDict(params), signature, token=token, skip=skip) == expected


# --- the URL Twilio signed -----------------------------------------------------------


def target(
    headers: dict[str, str] | None = None,
    *,
    raw_path: str = "/twilio/inbound",
    query: str = "",
) -> RequestTarget:
    return RequestTarget(
        scheme="http",
        host="internal:8000",
        raw_path=raw_path,
        query=query,
        headers=Headers(headers or {}),
    )


PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bridge.example.com"}


@pytest.mark.parametrize(
    ("request_target", "public_base_url", "trust", "expected"),
    [
        pytest.param(
            target(),
            "https://bridge.example.com",
            True,
            "https://bridge.example.com/twilio/inbound",
            id="public-base-url",
        ),
        pytest.param(
            target(),
            "https://bridge.example.com/",
            True,
            "https://bridge.example.com/twilio/inbound",
            id="public-base-url-trailing-slash",
        ),
        pytest.param(
            target(query="step=rule%3Asales&x=a+b"),
            "https://bridge.example.com",
            True,
            "https://bridge.example.com/twilio/inbound?step=rule%3Asales&x=a+b",
            id="public-base-url-keeps-raw-query",
        ),
        pytest.param(
            target(raw_path="/twilio/in%20bound", query="a=%2F"),
            "https://bridge.example.com",
            False,
            "https://bridge.example.com/twilio/in%20bound?a=%2F",
            id="public-base-url-keeps-raw-path",
        ),
        pytest.param(
            target(),
            "https://example.com/bridge",
            True,
            "https://example.com/bridge/twilio/inbound",
            id="public-base-url-with-path-prefix",
        ),
        pytest.param(
            target({"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example.net"}),
            "https://bridge.example.com",
            True,
            "https://bridge.example.com/twilio/inbound",
            id="public-base-url-beats-forwarded-headers",
        ),
        pytest.param(
            target(PROXY, query="a=1"),
            "",
            True,
            "https://bridge.example.com/twilio/inbound?a=1",
            id="trusted-forwarded-headers",
        ),
        pytest.param(
            target(
                {
                    "X-Forwarded-Proto": "https, http",
                    "X-Forwarded-Host": "bridge.example.com, internal:8000",
                }
            ),
            "",
            True,
            "https://bridge.example.com/twilio/inbound",
            id="trusted-forwarded-headers-first-of-list",
        ),
        pytest.param(
            target({"X-Forwarded-Proto": "https"}),
            "",
            True,
            "https://internal:8000/twilio/inbound",
            id="trusted-forwarded-proto-only",
        ),
        pytest.param(
            target(),
            "",
            True,
            "http://internal:8000/twilio/inbound",
            id="trusted-but-no-forwarded-headers",
        ),
        pytest.param(
            target(PROXY, query="a=1"),
            "",
            False,
            "http://internal:8000/twilio/inbound?a=1",
            id="untrusted-forwarded-headers-ignored",
        ),
    ],
)
def test_signed_url(
    request_target: RequestTarget, public_base_url: str, trust: bool, expected: str
) -> None:
    assert signed_url(request_target, public_base_url=public_base_url, trust_forwarded=trust) == (
        expected
    )


# --- auth token rotation -------------------------------------------------------------

NEW_TOKEN = Secret("the-new-primary-token")


@pytest.mark.parametrize(
    ("signed_with", "current", "previous", "expected"),
    [
        pytest.param(
            TOKEN,
            NEW_TOKEN,
            TOKEN,
            SignatureCheck(True, "valid_previous_token"),
            id="before-promotion-old-token-signs",
        ),
        pytest.param(
            NEW_TOKEN,
            NEW_TOKEN,
            TOKEN,
            SignatureCheck(True, "valid"),
            id="after-promotion-new-token-signs",
        ),
        pytest.param(
            TOKEN,
            NEW_TOKEN,
            None,
            SignatureCheck(False, "mismatch"),
            id="old-token-once-rotation-is-over",
        ),
        pytest.param(
            Secret("someone-else"),
            NEW_TOKEN,
            TOKEN,
            SignatureCheck(False, "mismatch"),
            id="neither-token",
        ),
    ],
)
def test_either_token_signs_during_a_rotation(
    signed_with: Secret, current: Secret, previous: Secret | None, expected: SignatureCheck
) -> None:
    params = ImmutableMultiDict(DOCS_PARAMS)
    signature = twilio_signature(EXAMPLE_URL, DOCS_PARAMS, signed_with.reveal())
    result = check_signature(
        url=EXAMPLE_URL,
        params=params,
        signature=signature,
        auth_token=current,
        previous_auth_token=previous,
    )
    assert result == expected


@pytest.mark.parametrize(
    ("url", "signed_over", "ok"),
    [
        ("https://mycompany.com/a", "https://mycompany.com:443/a", True),
        ("https://mycompany.com:443/a", "https://mycompany.com/a", True),
        ("http://mycompany.com/a", "http://mycompany.com:80/a", True),
        # Another port is another origin: no variant applies.
        ("https://mycompany.com:8443/a", "https://mycompany.com/a", False),
        ("https://mycompany.com/a", "https://mycompany.com:8443/a", False),
        ("https://mycompany.com/a", "http://mycompany.com/a", False),
        # A Host header the client made up: checked as it is, never an error.
        ("https://mycompany.com:99999/a", "https://mycompany.com:99999/a", True),
        ("https://mycompany.com:x/a", "https://mycompany.com/a", False),
        ("ftp://mycompany.com/a", "ftp://mycompany.com:21/a", False),
    ],
)
@pytest.mark.parametrize("previous", [False, True], ids=["token", "previous-token"])
def test_only_the_default_port_variant_is_accepted(
    url: str, signed_over: str, ok: bool, previous: bool
) -> None:
    old = Secret("old-token")
    signature = twilio_signature(signed_over, SDK_PARAMS, (old if previous else TOKEN).reveal())
    result = check_signature(
        url=url,
        params=SDK_PARAMS,
        signature=signature,
        auth_token=TOKEN,
        previous_auth_token=old,
    )
    assert result.ok is ok
