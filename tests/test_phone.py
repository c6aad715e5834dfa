from __future__ import annotations

import pytest

from bridge import phone
from bridge.call import GEO_FIELDS, Answer, Call
from bridge.calllog.log_lines import call_fields, logfmt

# --- phone.is_anonymous ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        " anonymous ",
        "restricted",
        "Restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "",
        "+266696687",  # ANONYMOUS on a keypad
        "+86282452253",  # UNAVAILABLE
        "+8656696",  # UNKNOWN
        "+2562533",  # BLOCKED
        "+7378742833",  # RESTRICTED
    ],
)
def test_is_anonymous(value: str) -> None:
    assert phone.is_anonymous(value)


@pytest.mark.parametrize(
    "value",
    [
        "+14155550100",
        "+442071234567",
        "+81312345678",
        "+26622312345",  # a Lesotho number, like +266696687 but not it
        "+8613800138000",
        "+73787428330",
        "client:alice",
        "sip:alice@example.com",
    ],
)
def test_real_numbers_are_not_anonymous(value: str) -> None:
    assert not phone.is_anonymous(value)


# --- phone.country_of -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550100", "US"),
        ("+442071234567", "GB"),
        ("+81312345678", "JP"),
        ("+4930123456", "DE"),
        ("+16135550100", "CA"),
        ("anonymous", None),
        ("+266696687", None),
        ("", None),
        ("4155550100", None),
        ("client:alice", None),
        ("+999123456789", None),
    ],
)
def test_country_of(value: str, expected: str | None) -> None:
    assert phone.country_of(value) == expected


# --- phone.mask ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550100", "+14*****0100"),
        ("+442071234567", "+44******4567"),
        ("+8613800138000", "+86*******8000"),
        ("+12345", "+*****"),
        ("anonymous", "anonymous"),
        ("", "-"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert phone.mask(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "+14155550100",
        "+442071234567",
        "+4930123456",
        "+12345678",
        "+1234567",
        "5551234",  # a 7-digit local number, dialable as is
        "+123456",
        "12345",
        "sip:alice@example.com",
    ],
)
def test_mask_keeps_at_most_first_three_and_last_four(value: str) -> None:
    masked = phone.mask(value)
    assert len(masked) == len(value)
    assert masked != value, "a masked number must hide something"
    shown = [i for i, (a, b) in enumerate(zip(value, masked, strict=True)) if a == b != "*"]
    allowed = set(range(3)) | set(range(len(value) - 4, len(value)))
    assert set(shown) <= allowed


# --- calllog.logfmt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"event": "inbound_call"}, "event=inbound_call"),
        ({"a": "1", "b": "2"}, "a=1 b=2"),
        ({"caller": "+14*****0100"}, "caller=+14*****0100"),
        ({"url": "wss://api.example.com/v1/x"}, "url=wss://api.example.com/v1/x"),
        ({"who": "alice@example.com"}, "who=alice@example.com"),
        ({"n": 3}, "n=3"),
        ({"ok": True}, "ok=True"),
        ({"ms": 12.345}, "ms=12.3"),
        ({"ms": 0.04}, "ms=0.0"),
        ({"a": None, "b": "x"}, "b=x"),
        ({"a": None}, ""),
        ({}, ""),
        ({"m": ""}, 'm=""'),
        ({"m": "hello world"}, 'm="hello world"'),
        ({"m": "a=b"}, 'm="a=b"'),
        ({"m": 'say "hi"'}, 'm="say \\"hi\\""'),
        ({"m": "C:\\dir"}, 'm="C:\\\\dir"'),
        ({"m": 'a\\"b'}, 'm="a\\\\\\"b"'),
        ({"m": "caf\u00e9"}, 'm="caf\u00e9"'),
    ],
)
def test_logfmt(fields: dict[str, object], expected: str) -> None:
    assert logfmt(fields) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\nb", 'm="a\\nb"'),
        ("a\r\nevent=forged", 'm="a\\r\\nevent=forged"'),
        ("plain\n", 'm="plain\\n"'),
    ],
)
def test_logfmt_keeps_one_line(value: str, expected: str) -> None:
    # A value from a webhook must not be able to start a new (forged) log line.
    text = logfmt({"m": value})
    assert "\n" not in text
    assert "\r" not in text
    assert text == expected


def test_call_fields_mask_the_caller() -> None:
    call = Call(call_sid="CA1", from_number="+14155550100", to_number="+15551234567")
    answer = Answer("<Response/>", rule="default", action="agent", outcome="connected")
    line = logfmt(call_fields(call, answer, event="inbound_call"))
    assert "+14155550100" not in line
    assert "caller=+14*****0100" in line
    assert "called=+15551234567" in line
    assert line.startswith("event=inbound_call call_sid=CA1 ")


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
