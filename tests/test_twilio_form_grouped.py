"""`Form.grouped()`: the one way the sandbox and the fake Twilio group a form's pairs."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from bridge.twilio.form import Form


@pytest.mark.parametrize(
    "body",
    [
        "",
        "To=%2B14155550100&From=%2B14155550101",
        "StatusCallbackEvent=initiated&StatusCallbackEvent=answered&Url=",
        "Twiml=%3CResponse%3E%3CSay%3EGr%C3%BC%C3%9Fe+dich%3C%2FSay%3E%3C%2FResponse%3E",
        "A=1&&B=2&A=3",
    ],
)
def test_grouped_is_what_parse_qs_gives(body: str) -> None:
    assert Form.parse(body.encode()).grouped() == parse_qs(body, keep_blank_values=True)


def test_grouped_is_a_copy() -> None:
    form = Form.parse(b"A=1&A=2")
    form.grouped()["A"].append("3")
    assert form.getall("A") == ["1", "2"]
