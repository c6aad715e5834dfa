from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from twiml import check_twiml, forward, hangup, reject, say_and_hangup, voicemail

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def parse(doc: str) -> Element:
    assert doc.startswith(XML_DECLARATION)
    root: Element = fromstring(doc)
    assert root.tag == "Response"
    return root


def verbs(root: Element) -> list[str]:
    return [child.tag for child in root]


# --- say_and_hangup -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected_attrs"),
    [
        ({}, {}),
        ({"voice": "Polly.Joanna"}, {"voice": "Polly.Joanna"}),
        ({"language": "de-DE"}, {"language": "de-DE"}),
        ({"voice": "alice", "language": "en-GB"}, {"voice": "alice", "language": "en-GB"}),
    ],
)
def test_say_and_hangup(kwargs: dict[str, Any], expected_attrs: dict[str, str]) -> None:
    root = parse(say_and_hangup("Sorry, we are closed.", **kwargs))
    assert verbs(root) == ["Say", "Hangup"]
    say = root[0]
    assert say.text == "Sorry, we are closed."
    assert say.attrib == expected_attrs


@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
def test_say_and_hangup_blank_message_only_hangs_up(message: str) -> None:
    assert verbs(parse(say_and_hangup(message))) == ["Hangup"]


SPECIAL_TEXTS = [
    "Tom & Jerry",
    "1 < 2 > 0",
    'She said "hi"',
    "it's",
    "]]> <![CDATA[ x ]]>",
    "&amp; already escaped",
    "<Hangup/>",
    "Grüße, 你好 👋",
    "line one\nline two",
]


@pytest.mark.parametrize("text", SPECIAL_TEXTS)
def test_say_text_round_trips(text: str) -> None:
    root = parse(say_and_hangup(text))
    assert verbs(root) == ["Say", "Hangup"]
    assert root[0].text == text


@pytest.mark.parametrize("text", SPECIAL_TEXTS)
def test_attribute_values_round_trip(text: str) -> None:
    root = parse(forward(["+15550100"], caller_id=text, action_url=f"https://x/cb?q={text}"))
    dial = root[0]
    assert dial.get("callerId") == text
    assert dial.get("action") == f"https://x/cb?q={text}"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: say_and_hangup("bell \x07"), "message"),
        (lambda: say_and_hangup("hi", voice="a\x00"), "voice"),
        (lambda: forward(["+1555\x1b"]), "targets[0]"),
        (lambda: forward(["+1555"], caller_id="\x0b"), "caller_id"),
        (lambda: voicemail(None, action_url="/vm\x01"), "action_url"),
    ],
)
def test_text_xml_cannot_carry_is_rejected(call: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        call()


# --- reject / hangup ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected_reason"),
    [((), "rejected"), (("rejected",), "rejected"), (("busy",), "busy")],
)
def test_reject(args: tuple[str, ...], expected_reason: str) -> None:
    root = parse(reject(*args))  # type: ignore[arg-type]
    assert verbs(root) == ["Reject"]
    assert root[0].attrib == {"reason": expected_reason}


def test_reject_unknown_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        reject("nope")  # type: ignore[arg-type]


def test_hangup() -> None:
    root = parse(hangup())
    assert verbs(root) == ["Hangup"]
    assert root[0].attrib == {}


# --- forward --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "expected_nouns"),
    [
        (["+15550100"], [("Number", "+15550100")]),
        (["sip:agent@pbx.example.com"], [("Sip", "sip:agent@pbx.example.com")]),
        (["SIP:Agent@pbx.example.com"], [("Sip", "SIP:Agent@pbx.example.com")]),
        (["  +15550100  "], [("Number", "+15550100")]),
        (
            ["+15550100", "sip:a@b.example;transport=tls", "+15550199"],
            [
                ("Number", "+15550100"),
                ("Sip", "sip:a@b.example;transport=tls"),
                ("Number", "+15550199"),
            ],
        ),
        (("+15550100", "+15550101"), [("Number", "+15550100"), ("Number", "+15550101")]),
        # Only the "sip:" scheme selects <Sip>, not a bare "sip" prefix.
        (["sipper"], [("Number", "sipper")]),
    ],
)
def test_forward_nouns(targets: list[str], expected_nouns: list[tuple[str, str]]) -> None:
    root = parse(forward(targets))
    assert verbs(root) == ["Dial", "Hangup"]
    assert [(noun.tag, noun.text) for noun in root[0]] == expected_nouns


@pytest.mark.parametrize(
    ("kwargs", "expected_verbs", "expected_dial_attrs"),
    [
        ({}, ["Dial", "Hangup"], {"timeout": "20"}),
        ({"timeout": 5}, ["Dial", "Hangup"], {"timeout": "5"}),
        ({"timeout": 600}, ["Dial", "Hangup"], {"timeout": "600"}),
        (
            {"caller_id": "+15550123"},
            ["Dial", "Hangup"],
            {"timeout": "20", "callerId": "+15550123"},
        ),
        (
            {"action_url": "https://bridge.example/dial-done?call=1&x=2"},
            ["Dial"],
            {
                "timeout": "20",
                "action": "https://bridge.example/dial-done?call=1&x=2",
                "method": "POST",
            },
        ),
        ({"message": "Connecting you now."}, ["Say", "Dial", "Hangup"], {"timeout": "20"}),
        ({"message": ""}, ["Dial", "Hangup"], {"timeout": "20"}),
        (
            {
                "message": "One moment.",
                "timeout": 30,
                "caller_id": "+15550123",
                "action_url": "/done",
            },
            ["Say", "Dial"],
            {"timeout": "30", "callerId": "+15550123", "action": "/done", "method": "POST"},
        ),
    ],
)
def test_forward_structure(
    kwargs: dict[str, Any], expected_verbs: list[str], expected_dial_attrs: dict[str, str]
) -> None:
    root = parse(forward(["+15550100"], **kwargs))
    assert verbs(root) == expected_verbs
    dial = root[expected_verbs.index("Dial")]
    assert dial.attrib == expected_dial_attrs


def test_forward_message_uses_voice_and_language() -> None:
    root = parse(forward(["+15550100"], message="Hold on", voice="alice", language="fr-FR"))
    say = root[0]
    assert (say.tag, say.text) == ("Say", "Hold on")
    assert say.attrib == {"voice": "alice", "language": "fr-FR"}


@pytest.mark.parametrize(
    ("targets", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "targets"),
        ((), {}, ValueError, "targets"),
        (["+1555", "  "], {}, ValueError, r"targets\[1\]"),
        (["+1555"], {"timeout": 4}, ValueError, "timeout"),
        (["+1555"], {"timeout": 0}, ValueError, "timeout"),
        (["+1555"], {"timeout": 601}, ValueError, "timeout"),
        ("+15550100", {}, TypeError, "targets"),
    ],
)
def test_forward_invalid(
    targets: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        forward(targets, **kwargs)


# --- voicemail ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kwargs", "expected_verbs", "expected_record_attrs"),
    [
        (
            None,
            {},
            ["Record", "Hangup"],
            {"maxLength": "120", "playBeep": "true", "action": "/vm", "method": "POST"},
        ),
        (
            "Leave a message after the beep.",
            {},
            ["Say", "Record", "Hangup"],
            {"maxLength": "120", "playBeep": "true", "action": "/vm", "method": "POST"},
        ),
        (
            "",
            {"play_beep": False},
            ["Record", "Hangup"],
            {"maxLength": "120", "playBeep": "false", "action": "/vm", "method": "POST"},
        ),
        (
            None,
            {"max_length": 1},
            ["Record", "Hangup"],
            {"maxLength": "1", "playBeep": "true", "action": "/vm", "method": "POST"},
        ),
        (
            None,
            {"max_length": 14_400},
            ["Record", "Hangup"],
            {"maxLength": "14400", "playBeep": "true", "action": "/vm", "method": "POST"},
        ),
    ],
)
def test_voicemail(
    message: str | None,
    kwargs: dict[str, Any],
    expected_verbs: list[str],
    expected_record_attrs: dict[str, str],
) -> None:
    root = parse(voicemail(message, action_url="/vm", **kwargs))
    assert verbs(root) == expected_verbs
    assert root[expected_verbs.index("Record")].attrib == expected_record_attrs
    if message:
        assert root[0].text == message


def test_voicemail_action_url_is_escaped_and_say_attrs() -> None:
    url = "https://bridge.example/voicemail?call=CA1&from=+1555"
    root = parse(voicemail("Hi & bye", action_url=url, voice="alice", language="en-US"))
    assert root[0].attrib == {"voice": "alice", "language": "en-US"}
    assert root[0].text == "Hi & bye"
    assert root[1].get("action") == url


def test_voicemail_requires_action_url() -> None:
    with pytest.raises(TypeError, match="action_url"):
        voicemail("hi")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_length": 0, "action_url": "/vm"}, "max_length"),
        ({"max_length": -5, "action_url": "/vm"}, "max_length"),
        ({"max_length": 14_401, "action_url": "/vm"}, "max_length"),
        ({"action_url": ""}, "action_url"),
        ({"action_url": "   "}, "action_url"),
    ],
)
def test_voicemail_invalid(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        voicemail("hi", **kwargs)


def test_voicemail_recording_status_callback() -> None:
    root = parse(
        voicemail(
            None,
            action_url="/vm",
            recording_status_url="/twilio/recording-status?kind=voicemail&x=1",
            recording_status_events=("completed", "absent"),
        )
    )
    record = root[0]
    assert record.get("recordingStatusCallback") == "/twilio/recording-status?kind=voicemail&x=1"
    assert record.get("recordingStatusCallbackMethod") == "POST"
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    # The checker takes what the builder writes.
    assert check_twiml(voicemail(None, action_url="/vm", recording_status_url="/rs")).verbs == (
        "Record",
        "Hangup",
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recording_status_url": " "}, "recording_status_url"),
        ({"recording_status_url": "/rs\x01"}, "recording_status_url"),
        ({"recording_status_url": "/rs", "recording_status_events": ()}, "events"),
        ({"recording_status_url": "/rs", "recording_status_events": "completed"}, "events"),
        ({"recording_status_url": "/rs", "recording_status_events": ("done",)}, "unknown"),
    ],
)
def test_voicemail_recording_status_invalid(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        voicemail("hi", action_url="/vm", **kwargs)
