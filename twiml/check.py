"""Reading TwiML: the one parser (``parse_twiml``) and the check of what ElevenLabs'
register-call endpoint returns (``check_twiml``).

The body is handed straight to Twilio, so it must be XML whose root is
``<Response>``. Parsing goes through defusedxml: the body comes from the
network and must not be able to expand entities or reach external resources.
The simulator and the sandbox read the bridge's answers with the same parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import fromstring

__all__ = ["CheckedTwiML", "InvalidTwiML", "Reason", "check_twiml", "parse_twiml"]

Reason = Literal[
    "empty", "not_xml", "wrong_root", "unsafe_xml", "too_large", "no_stream", "unexpected_twiml"
]

_EXCERPT_CHARS = 40
DEFAULT_MAX_BYTES = 64_000
# What register-call's <Stream> may carry. Nothing on <Response> or <Connect> (an
# `action` there would hand the call to another document once the stream ends).
_STREAM_ATTRIBUTES = frozenset({"url", "name", "track", "statusCallback", "statusCallbackMethod"})
_PARAMETER_ATTRIBUTES = frozenset({"name", "value"})


class InvalidTwiML(ValueError):
    """The text is not TwiML the bridge can hand to Twilio.

    ``str(exc)`` is short and safe to log: it never holds the whole body, at
    most a truncated single-line excerpt.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CheckedTwiML:
    xml: str
    """The text to hand to Twilio: the body, stripped, leading BOM removed."""
    stream_url: str | None
    """``url`` of the first ``<Connect><Stream>``, if any."""
    conversation_id: str | None
    """``<Parameter name="conversation_id" value=...>`` inside that Stream, if any."""
    verbs: tuple[str, ...]
    """Local tag names of the direct children of ``<Response>``, in order."""
    root: Element = field(repr=False, compare=False)
    """The parsed ``<Response>``, for readers that look further (the sandbox)."""


def _excerpt(text: str) -> str:
    # One line, bounded length, repr() so control characters stay visible.
    flat = " ".join(text.split())
    if len(flat) > _EXCERPT_CHARS:
        flat = flat[:_EXCERPT_CHARS] + "..."
    return repr(flat)


def _local(tag: str) -> str:
    # ElementTree spells namespaced tags "{uri}Name".
    return tag.rpartition("}")[2]


def _size(body: str | bytes) -> int:
    if isinstance(body, bytes):
        return len(body)
    # surrogatepass: measuring must not fail; a lone surrogate is caught by the parser.
    return len(body.encode("utf-8", "surrogatepass"))


def _parse(text: str) -> Element:
    try:
        root: Element = fromstring(text, forbid_dtd=True)
    except DTDForbidden as exc:
        # TwiML never has a DOCTYPE. "<!DOCTYPE html>" is a proxy's error page,
        # not an attack; report it as such so logs point at the real problem.
        if str(exc.name).lower() == "html":
            raise InvalidTwiML("not_xml", f"body is an HTML page: {_excerpt(text)}") from None
        raise InvalidTwiML("unsafe_xml", "body has a DOCTYPE declaration") from None
    except DefusedXmlException as exc:
        raise InvalidTwiML("unsafe_xml", f"body uses forbidden XML: {type(exc).__name__}") from None
    except ParseError as exc:
        raise InvalidTwiML(
            "not_xml", f"body is not well-formed XML ({exc}): {_excerpt(text)}"
        ) from None
    except UnicodeError:
        # Lone surrogates in a str cannot be fed to expat.
        raise InvalidTwiML("not_xml", "body is not valid Unicode") from None
    return root


def _first_stream(root: Element) -> Element | None:
    for connect in root:
        if _local(connect.tag) != "Connect":
            continue
        for stream in connect:
            if _local(stream.tag) == "Stream":
                return stream
    return None


def _conversation_id(stream: Element) -> str | None:
    for param in stream:
        if _local(param.tag) == "Parameter" and param.get("name") == "conversation_id":
            return param.get("value")
    return None


def parse_twiml(body: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Element:
    """The root element of ``body`` (any root); ``InvalidTwiML`` if it is not safe,
    well-formed XML of at most ``max_bytes``."""
    return _read(body, max_bytes)[1]


def _read(body: str | bytes, max_bytes: int) -> tuple[str, Element]:
    """The cleaned text (stripped, leading BOM removed) and its root element."""
    # Size first, so an oversized body is never decoded or parsed.
    size = _size(body)
    if size > max_bytes:
        raise InvalidTwiML("too_large", f"body is {size} bytes, limit is {max_bytes}")

    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidTwiML("not_xml", f"body is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = body
    # A BOM or whitespace before "<?xml" makes the declaration ill-formed.
    text = text.removeprefix("\ufeff").strip()
    if not text:
        raise InvalidTwiML("empty", "body is empty")
    return text, _parse(text)


def _tags(elements: list[Element]) -> str:
    return ", ".join(f"<{_local(element.tag)}>" for element in elements[:5]) or "none"


def _stream_only_problem(root: Element) -> str | None:
    """Why ``root`` is not exactly what register-call produces, or None:
    ``<Response><Connect><Stream url="wss://...">`` with ``<Parameter>`` children only."""
    if root.attrib:
        return "<Response> has attributes"
    verbs = list(root)
    if len(verbs) != 1 or _local(verbs[0].tag) != "Connect":
        return "verbs are " + _tags(verbs)
    connect = verbs[0]
    if connect.attrib:
        return "<Connect> has attributes"
    nouns = list(connect)
    if len(nouns) != 1 or _local(nouns[0].tag) != "Stream":
        return "<Connect> holds " + (
            ", ".join(f"<{_local(n.tag)}>" for n in nouns[:5]) or "nothing"
        )
    stream = nouns[0]
    if not _STREAM_ATTRIBUTES.issuperset(stream.attrib):
        return "<Stream> has unexpected attributes"
    if not stream.get("url", "").lower().startswith("wss://"):
        return "the <Stream> url is not wss://"
    for parameter in stream:
        if (
            _local(parameter.tag) != "Parameter"
            or len(parameter)
            or not _PARAMETER_ATTRIBUTES.issuperset(parameter.attrib)
        ):
            return f"<Stream> holds <{_local(parameter.tag)}>"
    for element in root.iter():
        if (element.text or "").strip() or (element.tail or "").strip():
            return f"text in <{_local(element.tag)}>"
    return None


def check_twiml(
    body: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    require_stream: bool = False,
    stream_only: bool = False,
) -> CheckedTwiML:
    """Check ``body`` is TwiML safe to hand to Twilio; raise ``InvalidTwiML`` if not.

    With ``require_stream`` the document must also hold a ``<Connect><Stream>``
    whose url is ``wss://`` or ``ws://``. With ``stream_only`` it must be exactly
    what register-call produces and nothing else (reason ``unexpected_twiml``):
    ``<Response><Connect><Stream url="wss://...">`` whose only children are
    ``<Parameter name value>``; no other verb (a ``<Dial>`` or ``<Redirect>`` from
    a compromised or intercepted answer would bypass the toll-fraud guard).
    """
    text, root = _read(body, max_bytes)
    if _local(root.tag) != "Response":
        raise InvalidTwiML("wrong_root", f"root element is <{_local(root.tag)}>, not <Response>")
    if stream_only and (problem := _stream_only_problem(root)) is not None:
        raise InvalidTwiML("unexpected_twiml", problem)

    stream = _first_stream(root)
    stream_url = stream.get("url") if stream is not None else None
    if require_stream and not (stream_url and stream_url.lower().startswith(("wss://", "ws://"))):
        raise InvalidTwiML("no_stream", "no <Connect><Stream> with a ws:// or wss:// url")

    return CheckedTwiML(
        xml=text,
        stream_url=stream_url,
        conversation_id=_conversation_id(stream) if stream is not None else None,
        verbs=tuple(_local(child.tag) for child in root),
        root=root,
    )
