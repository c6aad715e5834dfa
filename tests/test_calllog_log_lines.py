"""The call log line (logfmt): one key per field, the caller masked."""

from __future__ import annotations

import logging

import pytest
from conftest import make_settings, post_signed, twilio_form
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.call import Answer, Call
from bridge.calllog.log_lines import log_answer
from bridge.routing import parse_routes

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
