"""A stand-in for Twilio's REST API: creating, fetching and updating calls, the
account, and the account's phone numbers (IncomingPhoneNumbers: list, fetch, update).

Requests are form-encoded and authenticated with HTTP Basic (account SID, auth
token); errors have Twilio's JSON shape `{code, message, more_info, status}`.
Error codes follow twilio.com/docs/api/errors: 20003 authenticate, 20404 not
found, 21201/21213 no 'To'/'From', 21211/21212 invalid 'To'/'From', 21205 URL,
21220 call not in progress, 32018 TwiML over 4000 characters; 21200 (the
generic Calls-resource error) for other bad parameters. Phone numbers: 21402
invalid URL, 21403 invalid method, 22108 invalid application SID, 20001 (invalid
parameter) for a malformed trunk SID; unknown parameters are ignored, as Twilio does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.fakes.twilio_recordings import FakeRecordings
from bridge.twilio.form import Form as TwilioForm

API_VERSION = "2010-04-01"
MAX_TWIML_CHARS = 4000
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
FINISHED = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
NUMBER_URLS = ("VoiceUrl", "VoiceFallbackUrl", "StatusCallback", "SmsUrl", "SmsFallbackUrl")
NUMBER_METHODS = (
    "VoiceMethod",
    "VoiceFallbackMethod",
    "StatusCallbackMethod",
    "SmsMethod",
    "SmsFallbackMethod",
)
# Form parameter -> resource field, for the fields an update may set.
NUMBER_FIELDS = {
    "FriendlyName": "friendly_name",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceApplicationSid": "voice_application_sid",
    "TrunkSid": "trunk_sid",
    "VoiceCallerIdLookup": "voice_caller_id_lookup",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
    "SmsApplicationSid": "sms_application_sid",
}
APPLICATION_SID = re.compile(r"^AP[0-9a-fA-F]{32}$")
TRUNK_SID = re.compile(r"^TK[0-9a-fA-F]{32}$")
DEFAULT_PAGE_SIZE = 50

Form = dict[str, list[str]]


@dataclass
class FakeCall:
    params: Form  # the create request's form: every value of every key, in order
    resource: dict[str, Any]  # the Call resource as Twilio would return it now
    updates: list[Form] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    @property
    def sid(self) -> str:
        sid: str = self.resource["sid"]
        return sid


@dataclass
class FakeRequest:
    method: str
    path: str
    form: Form  # the body's form (empty for GET)
    query: Form = field(default_factory=dict)


@dataclass
class FakeTwilio:
    """Configure `latency` and `script` (one entry used per valid request, then "ok"):

    "ok", "status:NNN" (a Twilio error), "hang", "html", "empty", "json" (a 2xx
    JSON object that is not a call).
    """

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-twilio-auth-token"  # noqa: S105  (the fake's own test value)
    latency: float = 0.0
    script: list[str] = field(default_factory=list)
    calls: dict[str, FakeCall] = field(default_factory=dict)
    requests: list[FakeRequest] = field(default_factory=list)  # every authenticated one
    # The account's phone numbers (IncomingPhoneNumber resources) by their PN sid.
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # False: a valid number update answers 200 with the number unchanged (a change that
    # did not stick, which a client must notice by reading the number again).
    apply_number_updates: bool = True
    account_status: str = "active"  # or "suspended", "closed"
    account_friendly_name: str = "My first Twilio account"
    # Recordings with their audio (bridge.fakes.twilio_recordings).
    recordings: FakeRecordings = field(default_factory=FakeRecordings)

    @property
    def app(self) -> Starlette:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        numbers = f"{base}/IncomingPhoneNumbers"
        return Starlette(
            routes=[
                Route(f"{base}.json", self.fetch_account, methods=["GET"]),
                Route(f"{base}/Calls.json", self.create_call, methods=["POST"]),
                Route(f"{base}/Calls/{{call_sid}}.json", self.update_call, methods=["POST"]),
                Route(f"{base}/Calls/{{call_sid}}.json", self.fetch_call, methods=["GET"]),
                Route(f"{numbers}.json", self.list_numbers, methods=["GET"]),
                Route(f"{numbers}/{{number_sid}}.json", self.fetch_number, methods=["GET"]),
                Route(f"{numbers}/{{number_sid}}.json", self.update_number, methods=["POST"]),
                *self.recordings.routes(base, self._receive),
            ]
        )

    def add_number(
        self,
        phone_number: str,
        *,
        voice_url: str = "",
        voice_method: str = "POST",
        status_callback: str = "",
        status_callback_method: str = "POST",
        voice_application_sid: str | None = None,
        trunk_sid: str | None = None,
    ) -> dict[str, Any]:
        """Put a number on the account, configured like this; returns its resource."""
        sid = "PN" + uuid.uuid4().hex
        resource = self._number_resource(sid, phone_number)
        resource.update(
            voice_url=voice_url,
            voice_method=voice_method,
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            voice_application_sid=voice_application_sid,
            trunk_sid=trunk_sid,
        )
        self.numbers[sid] = resource
        return resource

    def add_live_call(
        self, sid: str, *, from_number: str, to_number: str, direction: str = "inbound"
    ) -> FakeCall:
        """A call that is in progress now (an incoming one: nobody created it through
        the API), so that it can be updated (moved to new TwiML, ended)."""
        params = {"From": [from_number], "To": [to_number]}
        call = FakeCall(params=params, resource=self._resource(sid, params))
        call.resource.update(direction=direction, status="in-progress")
        self.calls[sid] = call
        return call

    async def fetch_account(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        if (failure := await self._scripted(200)) is not None:
            return failure
        return JSONResponse(self._account_resource())

    async def list_numbers(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        query = request.query_params
        size_text, page_text = query.get("PageSize", str(DEFAULT_PAGE_SIZE)), query.get("Page", "0")
        if not (size_text.isdigit() and 1 <= int(size_text) <= 1000):
            return twilio_error(400, 20001, "PageSize must be a whole number from 1 to 1000")
        if not page_text.isdigit():
            return twilio_error(400, 20001, "Page must be a whole number")
        if (failure := await self._scripted(200)) is not None:
            return failure
        found = [
            number
            for number in self.numbers.values()
            if _number_matches(number, query.get("PhoneNumber"), query.get("FriendlyName"))
        ]
        size, page = int(size_text), int(page_text)
        return JSONResponse(_page(request, found, size, page, "incoming_phone_numbers"))

    async def fetch_number(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        number = self.numbers.get(request.path_params["number_sid"])
        if number is None:
            return _not_found(request)
        if (failure := await self._scripted(200)) is not None:
            return failure
        return JSONResponse(number)

    async def update_number(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        number = self.numbers.get(request.path_params["number_sid"])
        if number is None:
            return _not_found(request)
        problem = _check_number_update(form)
        if problem:
            return twilio_error(400, *problem)
        if (failure := await self._scripted(200)) is not None:
            return failure
        if not self.apply_number_updates:
            return JSONResponse(number)
        for name, key in NUMBER_FIELDS.items():
            value = _first(form, name)
            if value is None:
                continue
            if key.endswith("_method"):
                number[key] = value.upper()
            elif key == "voice_caller_id_lookup":
                number[key] = value.lower() == "true"
            elif key.endswith("_sid"):
                number[key] = value or None  # an empty value removes it
            else:
                number[key] = value
        # Documented: setting an application removes the trunk, and the other way round.
        if _first(form, "VoiceApplicationSid"):
            number["trunk_sid"] = None
        if _first(form, "TrunkSid"):
            number["voice_application_sid"] = None
        number["date_updated"] = _now()
        return JSONResponse(number)

    async def create_call(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        problem = _check_create(form)
        if problem:
            return twilio_error(400, *problem)
        if (failure := await self._scripted(201)) is not None:
            return failure
        sid = "CA" + uuid.uuid4().hex
        call = FakeCall(params=form, resource=self._resource(sid, form))
        self.calls[sid] = call
        return JSONResponse(call.resource, status_code=201)

    async def update_call(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        call = self.calls.get(request.path_params["call_sid"])
        if call is None:
            return _not_found(request)
        problem = _check_update(form, call.resource["status"])
        if problem:
            return twilio_error(400, *problem)
        if (failure := await self._scripted(200)) is not None:
            return failure
        call.updates.append(form)
        if "Status" in form:
            call.resource["status"] = form["Status"][0]
        call.resource["date_updated"] = _now()
        return JSONResponse(call.resource)

    # --- reading a call back (reconciliation) ---------------------------------------

    def add_call(
        self,
        sid: str | None = None,
        *,
        status: str = "in-progress",
        from_number: str = "+14155550123",
        to_number: str = "+14155550100",
        direction: str = "inbound",
    ) -> FakeCall:
        """A call this account has that was not created through the fake (an inbound
        call, or one ElevenLabs placed with the account's credentials)."""
        sid = sid or "CA" + uuid.uuid4().hex
        call = FakeCall(
            params={"From": [from_number], "To": [to_number]},
            resource=self._resource(sid, {"From": [from_number], "To": [to_number]}),
        )
        call.resource.update(status=status, direction=direction, start_time=_now())
        self.calls[sid] = call
        return call

    def end_call(self, sid: str, status: str = "completed", duration: int = 42) -> None:
        """The call ends as Twilio records it: final status, duration, end time."""
        resource = self.calls[sid].resource
        resource.update(status=status, duration=str(duration), end_time=_now())
        resource["date_updated"] = resource["end_time"]

    async def fetch_call(self, request: Request) -> Response:
        form = await self._receive(request)
        if isinstance(form, Response):
            return form
        call = self.calls.get(request.path_params["call_sid"])
        if call is None:
            return _not_found(request)
        if (failure := await self._scripted(200)) is not None:
            return failure
        return JSONResponse(call.resource)

    async def _receive(self, request: Request) -> Form | Response:
        """The request's form, once authenticated; else the error to answer with."""
        if not self._authenticated(request.headers.get("authorization", "")):
            response = twilio_error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if request.path_params["account_sid"] != self.account_sid:
            return _not_found(request)
        text = (await request.body()).decode("utf-8", "replace")
        form = _parse_form(text)
        query = _parse_form(request.url.query)
        self.requests.append(FakeRequest(request.method, request.url.path, form, query))
        return form

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        return hmac.compare_digest(f"{user}:{password}".encode(), expected)

    async def _scripted(self, ok_status: int) -> Response | None:
        step = self.script.pop(0) if self.script else "ok"
        if self.latency:
            await asyncio.sleep(self.latency)
        if step == "ok":
            return None
        if step.startswith("status:"):
            status = int(step.split(":", 1)[1])
            if status == 401:
                return twilio_error(401, 20003, "Authenticate")
            return twilio_error(status, 20000 + status, HTTPStatus(status).phrase)
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "html":
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        if step == "empty":
            return Response(b"", status_code=ok_status, media_type="application/json")
        if step == "json":
            return JSONResponse({"unexpected": True}, status_code=ok_status)
        raise ValueError(f"unknown fake step {step!r}")

    def _account_resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}"
        now = _now()
        return {
            # The real API returns the token too: clients must never show this resource.
            "auth_token": self.auth_token,
            "date_created": now,
            "date_updated": now,
            "friendly_name": self.account_friendly_name,
            "owner_account_sid": self.account_sid,
            "sid": self.account_sid,
            "status": self.account_status,
            "subresource_uris": {
                "calls": f"{uri}/Calls.json",
                "incoming_phone_numbers": f"{uri}/IncomingPhoneNumbers.json",
            },
            "type": "Full",
            "uri": f"{uri}.json",
        }

    def _number_resource(self, sid: str, phone_number: str) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}"
        now = _now()
        return {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "bundle_sid": None,
            "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
            "date_created": now,
            "date_updated": now,
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "emergency_status": "Inactive",
            "friendly_name": phone_number,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": phone_number,
            "sid": sid,
            "sms_application_sid": None,
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "subresource_uris": {"assigned_add_ons": f"{uri}/AssignedAddOns.json"},
            "trunk_sid": None,
            "uri": f"{uri}.json",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": "",
            "voice_method": "POST",
            "voice_receive_mode": "voice",
            "voice_url": "",
        }

    def _resource(self, sid: str, form: Form) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}"
        now = _now()
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": form["From"][0],
            "from_formatted": form["From"][0],
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name: f"{uri}/{path}.json"
                for name, path in [
                    ("notifications", "Notifications"),
                    ("recordings", "Recordings"),
                    ("payments", "Payments"),
                    ("events", "Events"),
                    ("siprec", "Siprec"),
                    ("streams", "Streams"),
                    ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                    ("user_defined_messages", "UserDefinedMessages"),
                ]
            },
            "to": form["To"][0],
            "to_formatted": form["To"][0],
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _not_found(request: Request) -> JSONResponse:
    return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")


def _check_create(form: Form) -> tuple[int, str] | None:
    to, from_ = _first(form, "To"), _first(form, "From")
    if not to:
        return 21201, "No 'To' number is specified"
    if not E164.match(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if not from_:
        return 21213, "No 'From' number is specified"
    if not E164.match(from_):
        return 21212, (
            f"The 'From' number {from_} is not a valid phone number, shortcode, "
            "or alphanumeric sender ID."
        )
    if not (_first(form, "Url") or _first(form, "Twiml") or _first(form, "ApplicationSid")):
        return 21205, "Url parameter is required."
    return _check_common(form)


def _check_update(form: Form, status: str) -> tuple[int, str] | None:
    wanted = _first(form, "Status")
    if wanted is not None and wanted not in ("canceled", "completed"):
        return 21200, f"Status must be canceled or completed, not {wanted!r}"
    if ("Url" in form or "Twiml" in form) and status in FINISHED:
        return 21220, "Call is not in-progress. Cannot redirect."
    return _check_common(form)


def _check_common(form: Form) -> tuple[int, str] | None:
    for name in ("Url", "StatusCallback", "FallbackUrl"):
        value = _first(form, name)
        if value is not None and not _is_url(value):
            return 21205, f"{name} is not a valid URL: {value}"
    twiml = _first(form, "Twiml")
    if twiml is not None and len(twiml) > MAX_TWIML_CHARS:
        return 32018, f"Twiml size exceeded maximum allowed value of {MAX_TWIML_CHARS} characters"
    for name in ("Method", "StatusCallbackMethod", "FallbackMethod"):
        value = _first(form, name)
        if value is not None and value.upper() not in ("GET", "POST"):
            return 21200, f"{name} must be GET or POST"
    timeout = _first(form, "Timeout")
    if timeout is not None and not (timeout.isdigit() and 1 <= int(timeout) <= 600):
        return 21200, "Timeout must be a whole number of seconds from 1 to 600"
    record = _first(form, "Record")
    if record is not None and record.lower() not in ("true", "false"):
        return 21200, "Record must be true or false"
    return None


def _check_number_update(form: Form) -> tuple[int, str] | None:
    for name in NUMBER_URLS:
        value = _first(form, name)
        if value and not _is_url(value):  # empty: remove the URL
            return 21402, f"{name} is not valid: {value}"
    for name in NUMBER_METHODS:
        value = _first(form, name)
        if value is not None and value.upper() not in ("GET", "POST"):
            return 21403, f"{name} must be GET or POST"
    for name in ("VoiceApplicationSid", "SmsApplicationSid"):
        value = _first(form, name)
        if value and not APPLICATION_SID.match(value):
            return 22108, f"{name} {value} is not a valid Application SID"
    trunk = _first(form, "TrunkSid")
    if trunk and not TRUNK_SID.match(trunk):
        return 20001, f"TrunkSid {trunk} is not a valid Trunk SID"
    lookup = _first(form, "VoiceCallerIdLookup")
    if lookup is not None and lookup.lower() not in ("true", "false"):
        return 20001, "VoiceCallerIdLookup must be true or false"
    return None


def _number_matches(number: dict[str, Any], phone: str | None, friendly: str | None) -> bool:
    # Twilio's PhoneNumber filter takes partial numbers, with * for any one digit.
    if phone:
        pattern = re.escape(phone).replace(r"\*", "[0-9]")
        if not re.search(pattern, number["phone_number"]):
            return False
    return not friendly or number["friendly_name"] == friendly


def _page(
    request: Request, records: list[dict[str, Any]], size: int, page: int, key: str
) -> dict[str, Any]:
    """A Twilio list page: the records under `key` and the paging fields."""
    filters = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in ("Page", "PageSize", "PageToken")
    ]
    path = request.url.path

    def uri(number: int) -> str:
        return f"{path}?{urlencode([*filters, ('PageSize', size), ('Page', number)])}"

    start = page * size
    shown = records[start : start + size]
    return {
        "end": start + max(len(shown) - 1, 0),
        "first_page_uri": uri(0),
        key: shown,
        "next_page_uri": uri(page + 1) if start + size < len(records) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page),
    }


def _parse_form(text: str) -> Form:
    # Keys repeat: StatusCallbackEvent.
    return TwilioForm.parse(text.encode()).grouped()


def _first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _now() -> str:
    # Twilio's dates are RFC 2822, like "Tue, 31 Aug 2010 20:36:28 +0000".
    return format_datetime(datetime.now(UTC).replace(microsecond=0))
