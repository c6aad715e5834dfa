"""bridge.twilio.form parses exactly as the standard library does, only faster."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest

from bridge.twilio.form import Form
from tests.helpers import twilio_form


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"a=1",
        b"a=1&b=2&a=3",
        b"From=%2B15551234567&To=%2B15557650000",
        b"CallerName=ADA+LOVELACE&FromCity=SAN%20FRANCISCO",
        b"empty=&novalue&=nameless",
        b"&&a=1&&",
        b"a=%E2%9C%93&b=%ZZ&c=%",
        b"eq=a=b=c",
        b"plus=%2B+%2B",
        b"latin=\xe9t\xe9",
        b"bad=%FF%FE",
        urlencode(twilio_form()).encode(),
        urlencode([("Digits", "1"), ("Digits", "2"), ("Sid", "CA1")]).encode(),
    ],
)
def test_form_parses_like_parse_qsl(body: bytes) -> None:
    expected = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
    assert Form.parse(body).multi_items() == expected


def test_get_gives_the_first_value() -> None:
    form = Form.parse(b"Digits=1&Digits=2")
    assert form.get("Digits") == "1"
    assert form.get("Missing") == ""
    assert form.get("Missing", "-") == "-"
