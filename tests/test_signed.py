"""bridge.signed: the one codec of signed cookie values."""

from __future__ import annotations

import pytest

from bridge import signed
from bridge.secret import Secret
from tests.helpers import make_settings

KEY = b"k" * 32


@pytest.mark.parametrize("data", [{"exp": 1}, {"description": "Caf\u00e9 \u201cZ\u201d"}, [1, "x"]])
def test_what_is_dumped_loads_back_with_the_same_key(data: object) -> None:
    value = signed.dump(data, KEY)
    assert signed.load(value, KEY) == data
    assert signed.load(value, b"other" * 8) is None


@pytest.mark.parametrize("value", [None, "", "junk", ".", "e30.", "e30." + "A" * 43, "%%%.x"])
def test_anything_not_signed_loads_as_none(value: str | None) -> None:
    assert signed.load(value, KEY) is None


def test_a_tampered_body_fails_the_signature() -> None:
    body, _, signature = signed.dump({"exp": 1}, KEY).partition(".")
    tampered = signed.dump({"exp": 9}, KEY).partition(".")[0]
    assert signed.load(f"{tampered}.{signature}", KEY) is None
    assert signed.load(f"{body}.{signature}", KEY) == {"exp": 1}


def test_the_session_key_is_session_secret_else_derived_from_the_api_token() -> None:
    assert signed.session_key(make_settings(session_secret=Secret("s3"))) == b"s3"
    derived = signed.session_key(make_settings(bridge_api_token=Secret("t")))
    assert derived != b"t" and len(derived) == 32
