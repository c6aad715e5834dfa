"""Every shape of form `check_signature` takes is grouped by the one grouper
(bridge.twilio.form.Form), repeated names kept."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from bridge.secret import Secret
from bridge.simulate import voice_webhook as simulate
from bridge.twilio.form import Form
from bridge.twilio.signature import SignatureCheck, check_signature, sign

TOKEN = "form-shapes-auth-token"
URL = "https://bridge.example.com/twilio/inbound"
PAIRS = [("CallSid", "CA1"), ("Digits", "5678"), ("Digits", "1234"), ("From", "+14155550100")]


def signed(pairs: list[tuple[str, str]]) -> str:
    # The SDK's own reading of a multi-dict: every value of a repeated name, in order.
    signature: str = RequestValidator(TOKEN).compute_signature(URL, ImmutableMultiDict(pairs))
    return signature


@pytest.mark.parametrize(
    "params",
    [Form(PAIRS), ImmutableMultiDict(PAIRS), PAIRS, iter(PAIRS)],
    ids=["form", "multi-dict", "pairs", "iterator"],
)
def test_repeated_names_are_kept_in_every_shape(params: Any) -> None:
    result = check_signature(
        url=URL, params=params, signature=signed(PAIRS), auth_token=Secret(TOKEN)
    )
    assert result == SignatureCheck(True, "valid")


def test_a_plain_mapping_has_one_value_a_name() -> None:
    single = dict(PAIRS)  # Digits keeps its last value
    pairs = list(single.items())
    result = check_signature(
        url=URL, params=single, signature=signed(pairs), auth_token=Secret(TOKEN)
    )
    assert result.ok


def test_sign_is_what_the_check_accepts_and_the_sdk_computes() -> None:
    signature = sign(URL, PAIRS, TOKEN)
    assert signature == signed(PAIRS)
    assert check_signature(
        url=URL, params=Form(PAIRS), signature=signature, auth_token=Secret(TOKEN)
    ).ok
    # The simulator signs with it too.
    single = dict(PAIRS)
    assert simulate.signature(URL, single, TOKEN) == sign(URL, single, TOKEN)
