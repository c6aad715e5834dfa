"""bridge.calllog.log_lines: logfmt lines, one per call, the caller masked."""

from __future__ import annotations

import pytest

from bridge.call import Answer, Call
from bridge.calllog.log_lines import call_fields, logfmt

# --- logfmt ---------------------------------------------------------------------------


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
