from __future__ import annotations

from typing import Any

import pytest
from defusedxml.ElementTree import fromstring

from twiml import CheckedTwiML, InvalidTwiML, check_twiml

STREAM_URL = (
    "wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id=abc&conversation_signature=xyz"
)

GOOD = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Connect>
    <Stream url="wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id=abc&amp;conversation_signature=xyz">
      <Parameter name="conversation_id" value="conv_123"/>
    </Stream>
  </Connect>
</Response>
"""

NO_PARAMETER = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Connect><Stream url="wss://example.test/s"/></Connect></Response>"""

OTHER_PARAMETERS = """<Response><Connect><Stream url="ws://example.test/s">
<Parameter name="caller" value="+1555"/>
<Parameter name="conversation_id" value="conv_9"/>
</Stream></Connect></Response>"""

NAMESPACED = """<t:Response xmlns:t="urn:twiml"><t:Connect><t:Stream url="wss://x.test/s">
<t:Parameter name="conversation_id" value="conv_ns"/></t:Stream></t:Connect></t:Response>"""

SAY_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Say>Sorry, try later.</Say><Hangup/></Response>"""

HTTP_STREAM = """<Response><Connect><Stream url="https://example.test/s"/></Connect></Response>"""

STREAM_WITHOUT_URL = """<Response><Connect><Stream/></Connect></Response>"""

STREAM_OUTSIDE_CONNECT = """<Response><Start><Stream url="wss://x.test/s"/></Start></Response>"""

HTML_ERROR_PAGE = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>Bad Gateway</h1><hr><p>nginx</p></body></html>"""

HTML_NO_DOCTYPE = "<html><body><p>Oops<br></body></html>"

XHTML_PAGE = "<html><body>502</body></html>"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<Response><Say>&lol9;</Say></Response>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Say>&xxe;</Say></Response>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Response SYSTEM "http://attacker.example/evil.dtd">
<Response><Hangup/></Response>"""


@pytest.mark.parametrize(
    ("body", "kwargs", "stream_url", "conversation_id", "verbs"),
    [
        (GOOD, {}, STREAM_URL, "conv_123", ("Connect",)),
        (GOOD, {"require_stream": True}, STREAM_URL, "conv_123", ("Connect",)),
        (GOOD.encode(), {}, STREAM_URL, "conv_123", ("Connect",)),
        (b"\xef\xbb\xbf" + GOOD.encode(), {}, STREAM_URL, "conv_123", ("Connect",)),
        ("\ufeff" + GOOD, {}, STREAM_URL, "conv_123", ("Connect",)),
        ("\n\n  " + GOOD + "\n\n", {}, STREAM_URL, "conv_123", ("Connect",)),
        (NO_PARAMETER, {}, "wss://example.test/s", None, ("Connect",)),
        (OTHER_PARAMETERS, {"require_stream": True}, "ws://example.test/s", "conv_9", ("Connect",)),
        (NAMESPACED, {"require_stream": True}, "wss://x.test/s", "conv_ns", ("Connect",)),
        (SAY_ONLY, {}, None, None, ("Say", "Hangup")),
        (HTTP_STREAM, {}, "https://example.test/s", None, ("Connect",)),
        (STREAM_WITHOUT_URL, {}, None, None, ("Connect",)),
        (STREAM_OUTSIDE_CONNECT, {}, None, None, ("Start",)),
        ("<Response/>", {}, None, None, ()),
    ],
)
def test_accepted(
    body: str | bytes,
    kwargs: dict[str, Any],
    stream_url: str | None,
    conversation_id: str | None,
    verbs: tuple[str, ...],
) -> None:
    checked = check_twiml(body, **kwargs)
    assert isinstance(checked, CheckedTwiML)
    assert checked.stream_url == stream_url
    assert checked.conversation_id == conversation_id
    assert checked.verbs == verbs
    # What goes to Twilio is the body itself, trimmed, and still parses.
    assert not checked.xml.startswith(("\ufeff", " ", "\n"))
    assert checked.xml == checked.xml.strip()
    assert fromstring(checked.xml).tag.endswith("Response")


@pytest.mark.parametrize("body", [GOOD, NO_PARAMETER, NAMESPACED, GOOD.encode()])
def test_stream_only_accepts_what_register_call_gives(body: str | bytes) -> None:
    checked = check_twiml(body, stream_only=True)
    assert checked.verbs == ("Connect",) and checked.stream_url


S = '<Stream url="wss://x.test/s">'


@pytest.mark.parametrize(
    "body",
    [
        "<Response><Dial>+19005550100</Dial><Redirect>https://e.test</Redirect></Response>",
        f"<Response><Connect>{S}</Stream></Connect><Dial>+19005550100</Dial></Response>",
        f"<Response><Redirect>https://e.test</Redirect><Connect>{S}</Stream></Connect></Response>",
        f"<Response><Connect>{S}</Stream></Connect><Connect>{S}</Stream></Connect></Response>",
        f"<Response><Connect>{S}</Stream>{S}</Stream></Connect></Response>",
        f'<Response><Connect action="https://e.test">{S}</Stream></Connect></Response>',
        f'<Response action="https://e.test"><Connect>{S}</Stream></Connect></Response>',
        "<Response><Connect><Conversation/></Connect></Response>",
        "<Response><Connect/></Response>",
        "<Response/>",
        SAY_ONLY,
        STREAM_OUTSIDE_CONNECT,
        STREAM_WITHOUT_URL,
        HTTP_STREAM,
        OTHER_PARAMETERS,  # ws://, not wss://
        '<Response><Connect><Stream url="wss://x.test/s" bogus="1"/></Connect></Response>',
        f"<Response><Connect>{S}<Say>hi</Say></Stream></Connect></Response>",
        f'<Response><Connect>{S}<Parameter name="a" value="b"><Dial>1</Dial></Parameter>'
        "</Stream></Connect></Response>",
        f'<Response><Connect>{S}<Parameter name="a" action="b"/></Stream></Connect></Response>',
        f"<Response>Call +19005550100<Connect>{S}</Stream></Connect></Response>",
        f"<Response><Connect>{S}</Stream></Connect>tail text</Response>",
    ],
)
def test_stream_only_refuses_anything_else(body: str) -> None:
    with pytest.raises(InvalidTwiML) as caught:
        check_twiml(body, stream_only=True)
    assert caught.value.reason == "unexpected_twiml"
    check_twiml(body)  # acceptable without stream_only: only the shape is wrong


def test_xml_is_original_text_not_reserialised() -> None:
    checked = check_twiml("  " + GOOD)
    assert checked.xml == GOOD.strip()
    assert "&amp;conversation_signature" in checked.xml


@pytest.mark.parametrize(
    ("body", "kwargs", "reason"),
    [
        ("", {}, "empty"),
        (b"", {}, "empty"),
        ("   \n\t ", {}, "empty"),
        ("\ufeff  ", {}, "empty"),
        (HTML_ERROR_PAGE, {}, "not_xml"),
        (HTML_NO_DOCTYPE, {}, "not_xml"),
        (XHTML_PAGE, {}, "wrong_root"),
        ('{"detail":"Agent not found"}', {}, "not_xml"),
        ("Internal Server Error", {}, "not_xml"),
        (GOOD[: len(GOOD) // 2], {}, "not_xml"),
        ("<Response><Say>hi</Say>", {}, "not_xml"),
        ("<Response></Respons>", {}, "not_xml"),
        ("<Response/><Response/>", {}, "not_xml"),
        ("<Response>\ud800</Response>", {}, "not_xml"),
        (b"<Response><Say>\xff\xfe</Say></Response>", {}, "not_xml"),
        (b"\xc3\x28", {}, "not_xml"),
        ("<response/>", {}, "wrong_root"),
        ("<Connect><Stream url='wss://x'/></Connect>", {}, "wrong_root"),
        (BILLION_LAUGHS, {}, "unsafe_xml"),
        (EXTERNAL_ENTITY, {}, "unsafe_xml"),
        (EXTERNAL_DTD, {}, "unsafe_xml"),
        (GOOD, {"max_bytes": 100}, "too_large"),
        (GOOD.encode(), {"max_bytes": 100}, "too_large"),
        # max_bytes counts UTF-8 bytes, not characters.
        ("<Response><Say>" + "é" * 60 + "</Say></Response>", {"max_bytes": 100}, "too_large"),
        ("<Response>" + " " * 70_000 + "</Response>", {}, "too_large"),
        # too_large is decided before parsing, even for garbage.
        (b"\xff" * 200, {"max_bytes": 100}, "too_large"),
        (SAY_ONLY, {"require_stream": True}, "no_stream"),
        ("<Response/>", {"require_stream": True}, "no_stream"),
        (HTTP_STREAM, {"require_stream": True}, "no_stream"),
        (STREAM_WITHOUT_URL, {"require_stream": True}, "no_stream"),
        (STREAM_OUTSIDE_CONNECT, {"require_stream": True}, "no_stream"),
        (
            '<Response><Connect><Stream url=""/></Connect></Response>',
            {"require_stream": True},
            "no_stream",
        ),
    ],
)
def test_rejected(body: str | bytes, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidTwiML) as info:
        check_twiml(body, **kwargs)
    assert info.value.reason == reason
    assert str(info.value).startswith(f"{reason}: ")
    assert "\n" not in str(info.value)


def test_exact_size_limit_is_allowed() -> None:
    body = "<Response/>"
    assert check_twiml(body, max_bytes=len(body)).verbs == ()
    with pytest.raises(InvalidTwiML, match="too_large"):
        check_twiml(body, max_bytes=len(body) - 1)


def test_invalid_twiml_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not_xml"):
        check_twiml("nope")


@pytest.mark.parametrize(
    "body",
    [
        "not xml at all " + "SECRETTAIL " * 500,
        "<!DOCTYPE html><html><body>" + "SECRETTAIL " * 500,
        "<html>\n<body>\n" + "line SECRETTAIL\n" * 500 + "</body>",
        '{"detail": "' + "SECRETTAIL " * 500 + '"}',
    ],
)
def test_message_never_holds_whole_body(body: str) -> None:
    with pytest.raises(InvalidTwiML) as info:
        check_twiml(body)
    message = str(info.value)
    assert info.value.reason == "not_xml"
    assert len(message) < 200
    assert "\n" not in message
    assert message.count("SECRETTAIL") <= 4
