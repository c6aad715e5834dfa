"""A stand-in for Twilio's REST API: creating calls and updating live ones.

Requests are form-encoded and authenticated with HTTP Basic (account SID, auth
token); errors have Twilio's JSON shape `{code, message, more_info, status}`.
Error codes follow twilio.com/docs/api/errors: 20003 authenticate, 20404 not
found, 21201/21213 no 'To'/'From', 21211/21212 invalid 'To'/'From', 21205 URL,
21220 call not in progress, 32018 TwiML over 4000 characters; 21200 (the
generic Calls-resource error) for other bad parameters.
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
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_VERSION = "2010-04-01"
MAX_TWIML_CHARS = 4000
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
FINISHED = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})

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
    form: Form


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

    @property
    def app(self) -> Starlette:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return Starlette(
            routes=[
                Route(f"{base}/Calls.json", self.create_call, methods=["POST"]),
                Route(f"{base}/Calls/{{call_sid}}.json", self.update_call, methods=["POST"]),
            ]
        )

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

    async def _receive(self, request: Request) -> Form | Response:
        """The request's form, once authenticated; else the error to answer with."""
        if not self._authenticated(request.headers.get("authorization", "")):
            response = twilio_error(401, 20003, "Authenticate")
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        if request.path_params["account_sid"] != self.account_sid:
            return _not_found(request)
        text = (await request.body()).decode("utf-8", "replace")
        form: Form = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            form.setdefault(name, []).append(value)  # keys repeat: StatusCallbackEvent
        self.requests.append(FakeRequest(request.method, request.url.path, form))
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


def _first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _now() -> str:
    # Twilio's dates are RFC 2822, like "Tue, 31 Aug 2010 20:36:28 +0000".
    return format_datetime(datetime.now(UTC).replace(microsecond=0))
