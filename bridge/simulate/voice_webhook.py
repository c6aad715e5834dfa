"""Twilio's voice webhooks, imitated: the form Twilio posts, signed for the URL it is
posted to, sent with Twilio's timeouts, and what the answer would do to the call.

Used by `callbridge simulate inbound` and by the sandbox's virtual phone. The form has
the fields Twilio sends ("A call comes in", the answer of an outbound call, status
callbacks); the geographic fields come from the numbers (phonenumbers' region and
geocoder) and stay empty where Twilio's carrier data would know more.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, indent, tostring

import httpx
import phonenumbers
from phonenumbers import geocoder

import twiml
from bridge import phone
from bridge.twilio import signature as twilio_signature

API_VERSION = "2010-04-01"
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32
# Twilio waits 5 s to connect and 15 s in all for a webhook's answer.
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = "TwilioProxy/1.1"
SIGNATURE_HEADER = twilio_signature.HEADER
# What Twilio puts in `From` when the caller withholds their number.
ANONYMOUS = ("anonymous", "restricted", "unknown", "unavailable", "private", "blocked")
NANP_REGIONS = frozenset({"US", "CA"})
# SHAKEN/STIR: the caller's carrier vouched for the number (Twilio sends it on US calls).
STIR_PASSED = "TN-Validation-Passed-A"

_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_CITY_STATE = re.compile(r"^(?P<city>[^,]+), (?P<state>[A-Z]{2})$")
_SHOWN_CHARS = 60


class SimulationError(ValueError):
    """A value given on the command line is wrong; the message names the option."""


@dataclass(frozen=True)
class Delivery:
    """One webhook as sent, and what came back (status None: no answer at all)."""

    url: str
    form: dict[str, str]
    signed: bool
    status: int | None
    content_type: str = ""
    body: str = ""
    elapsed: float = 0.0
    location: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problem: str | None
    twiml: twiml.CheckedTwiML | None


def check_number(option: str, value: str, *, anonymous_ok: bool = False) -> str:
    """An E.164 number (or, for a caller, a withheld-number word), else SimulationError."""
    text = value.strip()
    if anonymous_ok and text.lower() in ANONYMOUS:
        return text.lower()
    if phone.is_e164(text):
        return text
    alternative = ", or anonymous" if anonymous_ok else ""
    raise SimulationError(
        f"{option} {value!r}: expected an E.164 number like +14155550123{alternative}"
    )


def parse_params(items: Sequence[str], option: str = "--param") -> dict[str, str]:
    """`Name=Value` pairs that add to or override form fields."""
    params: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not _PARAM_NAME.fullmatch(name):
            raise SimulationError(
                f"{option} {item!r}: expected Name=Value with a field name like ForwardedFrom"
            )
        params[name] = value
    return params


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def voice_form(
    *,
    from_number: str,
    to_number: str,
    call_sid: str | None = None,
    account_sid: str | None = None,
    direction: str = "inbound",
    status: str = "ringing",
    params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The form Twilio posts about a call; `params` adds or overrides fields last."""
    form = {
        "AccountSid": account_sid or PLACEHOLDER_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid or new_call_sid(),
        "CallStatus": status,
        "Direction": direction,
        "From": from_number,
        "To": to_number,
        "Caller": from_number,
        "Called": to_number,
    }
    for who, number in (("From", from_number), ("Caller", from_number)):
        form.update({who + part: value for part, value in geography(number).items()})
    for who, number in (("To", to_number), ("Called", to_number)):
        form.update({who + part: value for part, value in geography(number).items()})
    if direction == "inbound":
        form["CallToken"] = _call_token()
        if form["FromCountry"] in NANP_REGIONS:
            form["StirVerstat"] = STIR_PASSED
    form.update(params or {})
    return form


def geography(number: str) -> dict[str, str]:
    """Twilio's City, State, Zip and Country of a number: what the number itself tells."""
    empty = {"City": "", "State": "", "Zip": "", "Country": ""}
    if not phone.is_e164(number) or phone.is_anonymous(number):
        return empty
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return empty
    # An unassigned number still has a country code: Twilio reports its country.
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    found = {**empty, "Country": "" if region == "ZZ" else region}
    if region in NANP_REGIONS:
        # "San Francisco, CA": Twilio spells North American cities in capitals.
        place = _CITY_STATE.match(geocoder.description_for_number(parsed, "en"))
        if place:
            found.update(City=place["city"].upper(), State=place["state"])
    return found


def _call_token() -> str:
    # Twilio's token for forwarding the call with its caller ID: opaque to the bridge.
    blob = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
    return f'{{"parentCallInfoToken":"eyJ{blob}","identityHeaderTokens":[]}}'


def signature(url: str, form: Mapping[str, str], auth_token: str) -> str:
    """X-Twilio-Signature for a form posted to exactly `url` (query string included)."""
    return twilio_signature.sign(url, form, auth_token)


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    auth_token: str | None,
) -> Delivery:
    """POST the form as Twilio would (signed when a token is given) and read the answer."""
    headers = {
        "User-Agent": USER_AGENT,
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "Accept": "*/*",
    }
    if auth_token:
        headers[SIGNATURE_HEADER] = signature(url, form, auth_token)
    sent = dict(form)
    started = time.monotonic()
    try:
        response = await client.post(
            url, data=sent, headers=headers, timeout=TIMEOUT, follow_redirects=False
        )
    except httpx.TimeoutException:
        return Delivery(
            url, sent, bool(auth_token), None, elapsed=time.monotonic() - started, error="timeout"
        )
    except httpx.HTTPError as exc:
        return Delivery(url, sent, bool(auth_token), None, error=f"{type(exc).__name__}: {exc}")
    return Delivery(
        url=url,
        form=sent,
        signed=bool(auth_token),
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        body=response.text,
        elapsed=time.monotonic() - started,
        location=response.headers.get("location"),
    )


def judge(delivery: Delivery) -> Verdict:
    """Whether Twilio could run the answer; if not, why, in words that say what to fix."""
    status = delivery.status
    if status is None:
        if delivery.error == "timeout":
            problem = (
                f"no answer from {delivery.url} within {TIMEOUT.read:g} s: Twilio would have "
                "given up and played its application error to the caller"
            )
        else:
            problem = (
                f"could not reach {delivery.url} ({delivery.error}); is the bridge running "
                "(`callbridge serve`, `callbridge sandbox`) and is the URL right?"
            )
        return Verdict(False, problem, None)
    if status == 403:
        return Verdict(False, signature_refused(delivery), None)
    if 300 <= status < 400:
        return Verdict(
            False,
            f"HTTP {status}: redirected to {delivery.location or '(no Location)'}; point the "
            "webhook at the final URL (Twilio signs the URL it is configured with)",
            None,
        )
    if status != 200:
        return Verdict(
            False,
            f"HTTP {status}: Twilio would play its application error to the caller "
            "(or run the number's fallback URL)",
            None,
        )
    try:
        checked = twiml.check_twiml(delivery.body)
    except twiml.InvalidTwiML as exc:
        return Verdict(
            False,
            f"HTTP 200 but not TwiML ({exc}): Twilio would play its application error",
            None,
        )
    return Verdict(True, None, checked)


def signature_refused(delivery: Delivery) -> str:
    if not delivery.signed:
        return (
            "HTTP 403: the webhook was sent unsigned (--unsigned) and the bridge checks "
            "signatures; set TWILIO_AUTH_TOKEN to the bridge's token instead"
        )
    parts = urlsplit(delivery.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"HTTP 403: the bridge did not accept the signature. It was computed for {delivery.url} "
        "with TWILIO_AUTH_TOKEN. The bridge checks it against its PUBLIC_BASE_URL plus the "
        f"path, so on the bridge PUBLIC_BASE_URL must be {origin} and TWILIO_AUTH_TOKEN the "
        "same token as here (its `signature_rejected` log line shows the URL it checked)"
    )


def pretty_twiml(text: str) -> str:
    """TwiML indented for reading; the text as it came when it is not XML."""
    root = _parse(text)
    if root is None:  # shown as it came: judge() says what is wrong with it
        return text
    indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode")


def describe(text: str) -> str:
    """What the TwiML does to the call, one verb after another, in a line."""
    root = _parse(text)
    if root is None:
        return "(not TwiML)"
    steps = [_step(verb) for verb in root]
    return " -> ".join(steps) if steps else "(an empty Response: Twilio hangs up)"


def _parse(text: str) -> Element | None:
    try:
        return twiml.parse_twiml(text)
    except twiml.InvalidTwiML:
        return None


def _step(verb: Element) -> str:
    name = verb.tag.rpartition("}")[2]
    if name in ("Say", "Play"):
        return f"{name} {_shorten(verb.text or '')!r}"
    if name == "Reject":
        return f"Reject ({verb.get('reason', 'rejected')})"
    if name == "Dial":
        targets = [child.text.strip() for child in verb if child.text and child.text.strip()]
        if verb.text and verb.text.strip():
            targets.insert(0, verb.text.strip())
        return f"Dial {', '.join(targets) or '?'}"
    if name == "Record":
        return f"Record (at most {verb.get('maxLength', '3600')} s)"
    if name == "Connect":
        inner = []
        for child in verb:
            kind = child.tag.rpartition("}")[2]
            detail = child.get("url") or ""
            conversation = child.find("Parameter[@name='conversation_id']")
            if conversation is not None:
                detail += f" (conversation {conversation.get('value')})"
            inner.append(f"{kind} {detail}".strip())
        return f"Connect {', '.join(inner)}".strip()
    if name == "Redirect":
        return f"Redirect {verb.text or ''}".strip()
    return name


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 3] + "..."
