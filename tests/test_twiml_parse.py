"""`twiml.parse_twiml`, the one TwiML parser: register-call's check, the simulator's
description of an answer and the sandbox's phone all read TwiML through it."""

from __future__ import annotations

import pytest

from bridge.simulate import voice_webhook as simulate
from twiml import InvalidTwiML, check_twiml, parse_twiml

SAY = "<Response><Say>Hello</Say><Reject reason='busy'/></Response>"


@pytest.mark.parametrize(
    "body",
    [SAY, SAY.encode(), "\ufeff  " + SAY + "\n", ("\ufeff" + SAY).encode()],
    ids=["text", "bytes", "bom-and-space", "bom-bytes"],
)
def test_parse_reads_text_and_bytes(body: str | bytes) -> None:
    root = parse_twiml(body)
    assert [child.tag for child in root] == ["Say", "Reject"]


def test_parse_takes_any_root_and_check_wants_response() -> None:
    assert parse_twiml("<Html><Body/></Html>").tag == "Html"
    with pytest.raises(InvalidTwiML) as excinfo:
        check_twiml("<Html><Body/></Html>")
    assert excinfo.value.reason == "wrong_root"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("<Response>", "not_xml"),
        ("<!DOCTYPE html><html></html>", "not_xml"),
        ('<!DOCTYPE r [<!ENTITY a "x">]><Response>&a;</Response>', "unsafe_xml"),
        (b"\xff<Response/>", "not_xml"),
        ("<Response>" + "x" * 70_000 + "</Response>", "too_large"),
    ],
)
def test_parse_refuses_what_check_refuses(body: str | bytes, reason: str) -> None:
    for read in (parse_twiml, check_twiml):
        with pytest.raises(InvalidTwiML) as excinfo:
            read(body)
        assert excinfo.value.reason == reason


def test_checked_twiml_keeps_its_parsed_root() -> None:
    checked = check_twiml(SAY)
    assert checked.root.tag == "Response"
    reject = checked.root.find("Reject")
    assert reject is not None and reject.get("reason") == "busy"
    # The root is for reading on; two checks of the same body are still equal.
    assert checked == check_twiml(SAY)
    assert "root" not in repr(checked)


@pytest.mark.parametrize(
    ("body", "described"),
    [
        ("\ufeff" + SAY, "Say 'Hello' -> Reject (busy)"),
        ("<Response/>", "(an empty Response: Twilio hangs up)"),
        ("<!DOCTYPE html><html></html>", "(not TwiML)"),
        ('<!DOCTYPE r [<!ENTITY a "x">]><Response>&a;</Response>', "(not TwiML)"),
    ],
)
def test_the_simulator_describes_with_the_same_parser(body: str, described: str) -> None:
    assert simulate.describe(body) == described
