"""bridge.calllog.log_lines: logfmt lines, one per call, one key per field, the caller masked."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.call import Answer, Call
from bridge.calllog.log_lines import call_fields, log_answer, logfmt
from bridge.routing import parse_routes
from tests.helpers import make_settings, post_signed, twilio_form

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


# --- details: one key per field ------------------------------------------------

CALL = Call(call_sid="CA1", from_number="+14155550100", to_number="+15551234567")
ANSWER = Answer("<Response/>", rule="outbound", action="agent", outcome="connected")


def parse(line: str) -> dict[str, str]:
    """A logfmt line of bare values back into its fields (a reader's view of the line)."""
    return dict(part.split("=", 1) for part in line.split(" "))


def call_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bridge.calls"]


@pytest.mark.parametrize(
    ("event", "details", "expected"),
    [
        pytest.param(
            "outbound_answer",
            {"answered_by": "human"},
            "event=outbound_answer answered_by=human call_sid=CA1 ",
            id="answered-by",
        ),
        pytest.param(
            "dial_complete",
            {"dial_status": "no-answer"},
            "event=dial_complete dial_status=no-answer call_sid=CA1 ",
            id="dial-status",
        ),
        pytest.param("inbound_call", {}, "event=inbound_call call_sid=CA1 ", id="no-details"),
    ],
)
def test_details_are_keys_of_their_own(
    caplog: pytest.LogCaptureFixture, event: str, details: dict[str, str], expected: str
) -> None:
    with caplog.at_level(logging.INFO, logger="bridge.calls"):
        log_answer(CALL, ANSWER, event=event, **details)
    (line,) = call_lines(caplog)
    assert line.startswith(expected)
    assert '"' not in line
    fields = parse(line)
    assert fields["event"] == event
    assert {key: fields[key] for key in details} == details


def test_a_detail_from_the_request_is_quoted_not_a_new_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="bridge.calls"):
        log_answer(CALL, ANSWER, event="outbound_answer", answered_by="human outcome=forged")
    (line,) = call_lines(caplog)
    assert line.startswith('event=outbound_answer answered_by="human outcome=forged" call_sid=CA1 ')


ROUTES = """
[[rules]]
name = "desk"
action = "forward"
to = ["+15550001111"]
"""


@pytest.mark.parametrize(
    ("form_status", "logged"), [("no-answer", "no-answer"), ("busy", "busy"), (None, "-")]
)
def test_dial_complete_logs_the_dial_status_as_its_own_key(
    caplog: pytest.LogCaptureFixture, form_status: str | None, logged: str
) -> None:
    app = create_app(make_settings(), table=parse_routes(ROUTES))
    form = twilio_form(CallStatus="in-progress")
    if form_status is not None:
        form["DialCallStatus"] = form_status
    with caplog.at_level(logging.INFO, logger="bridge.calls"), TestClient(app) as client:
        response = post_signed(client, "/twilio/dial-complete?step=rule%3Adesk", form)
    assert response.status_code == 200
    (line,) = call_lines(caplog)
    assert line.startswith(f"event=dial_complete dial_status={logged} call_sid=")
