"""bridge.phone's field types: what a request model says about a bad number."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from bridge import phone


class Numbered(BaseModel):
    to: phone.E164Number


class Dialled(BaseModel):
    to: phone.DialTarget


def problem(model: type[BaseModel], value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"to": value})
    (error,) = caught.value.errors()
    return str(error["msg"])


@pytest.mark.parametrize("value", ["+14155550123", "+442071838750"])
def test_e164_numbers_pass(value: str) -> None:
    assert Numbered(to=value).to == value
    assert Dialled(to=value).to == value


@pytest.mark.parametrize(
    "value", ["4155550123", "16175550111", "+1 415 555 0123", "+14155550123x", "+0123456789"]
)
def test_a_bad_number_names_the_format_with_an_example(value: str) -> None:
    assert problem(Numbered, value) == "should be an E.164 number like +14155550123"
    assert problem(Dialled, value) == (
        "should be an E.164 number like +14155550123 or a SIP URI like sip:alice@example.com"
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("sip:alice@example.com", True),
        ("SIP:desk@10.0.0.5;transport=tls", True),
        ("sip:example.com", False),
        ("sips:alice@example.com", False),
    ],
)
def test_sip_destinations_are_taken_as_forward_rules_take_them(value: str, accepted: bool) -> None:
    assert phone.is_sip_uri(value) is accepted
    if accepted:
        assert Dialled(to=value).to == value
    else:
        assert "SIP URI" in problem(Dialled, value) or "E.164" in problem(Dialled, value)
    with pytest.raises(ValidationError):
        Numbered(to=value)
