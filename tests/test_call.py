"""bridge.call: a Call read from Twilio's webhook form."""

from __future__ import annotations

import pytest

from bridge.call import GEO_FIELDS, Call

# --- calls.Call.from_form -------------------------------------------------------------------


def test_from_form_reads_the_webhook_fields() -> None:
    call = Call.from_form(
        [
            ("CallSid", "CA0123"),
            ("AccountSid", "AC0123"),
            ("From", "+14155550100"),
            ("To", "+15551234567"),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
            ("CallerName", "ALICE SMITH"),
            ("ForwardedFrom", "+15550000000"),
            ("StirVerstat", "TN-Validation-Passed-A"),
            ("ApiVersion", "2010-04-01"),
        ]
    )
    assert call == Call(
        call_sid="CA0123",
        from_number="+14155550100",
        to_number="+15551234567",
        account_sid="AC0123",
        call_status="ringing",
        direction="inbound",
        caller_name="ALICE SMITH",
        forwarded_from="+15550000000",
        stir_verstat="TN-Validation-Passed-A",
    )
    assert not call.anonymous
    assert call.caller_country == "US"


@pytest.mark.parametrize("from_value", ["anonymous", "Anonymous", "+266696687", ""])
def test_from_form_anonymous_caller(from_value: str) -> None:
    call = Call.from_form([("CallSid", "CA1"), ("From", from_value), ("To", "+15551234567")])
    assert call.from_number == from_value
    assert call.anonymous
    assert call.caller_country is None


def test_from_form_collects_geo_fields() -> None:
    form = [
        ("CallSid", "CA1"),
        ("From", "+14155550100"),
        ("To", "+15551234567"),
        ("FromCity", "SAN FRANCISCO"),
        ("FromState", "CA"),
        ("FromZip", "94105"),
        ("FromCountry", "US"),
        ("ToCountry", "US"),
        ("CallerCity", "SAN FRANCISCO"),
        ("CalledZip", ""),  # empty fields are left out
        ("ToCity", ""),
        ("Digits", "1"),  # not a geo field
    ]
    call = Call.from_form(form)
    assert dict(call.geo) == {
        "FromCity": "SAN FRANCISCO",
        "FromState": "CA",
        "FromZip": "94105",
        "FromCountry": "US",
        "ToCountry": "US",
        "CallerCity": "SAN FRANCISCO",
    }
    assert set(call.geo) <= set(GEO_FIELDS)
    values = call.template_values()
    assert values["from_city"] == "SAN FRANCISCO"
    assert values["to_country"] == "US"
    assert values["to_city"] == ""


def test_from_form_repeated_key_first_wins() -> None:
    call = Call.from_form(
        [
            ("CallSid", "CA-first"),
            ("From", "+14155550100"),
            ("From", "+442071234567"),
            ("To", "+15551234567"),
            ("CallSid", "CA-second"),
            ("FromCountry", "US"),
            ("FromCountry", "GB"),
        ]
    )
    assert call.call_sid == "CA-first"
    assert call.from_number == "+14155550100"
    assert call.geo["FromCountry"] == "US"


@pytest.mark.parametrize(
    ("form", "from_number", "to_number"),
    [
        ([("Caller", "+14155550100"), ("Called", "+15551234567")], "+14155550100", "+15551234567"),
        (
            [("From", "+14155550100"), ("Caller", "+19999999999"), ("To", "+15551234567")],
            "+14155550100",
            "+15551234567",
        ),
        ([], "", ""),
    ],
)
def test_from_form_falls_back_to_caller_and_called(
    form: list[tuple[str, str]], from_number: str, to_number: str
) -> None:
    call = Call.from_form(form)
    assert (call.from_number, call.to_number) == (from_number, to_number)
    assert call.direction == "inbound"
