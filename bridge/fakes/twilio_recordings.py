"""The stand-in Twilio's recordings: audio bytes behind HTTP Basic auth, deletion,
and the signed recording status callback Twilio posts when a recording is done.

`FakeTwilio.recordings` holds them; its app serves
`GET .../Recordings/{sid}.mp3` (the audio), `GET .../Recordings/{sid}.json` (the
resource) and `DELETE .../Recordings/{sid}.json` (204, then 404 as Twilio does).
`script` fails downloads and deletions on purpose: one entry per such request,
"ok", "status:NNN" or "hang".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.twilio.signature import HEADER, sign

# A few frames of silence, enough to be an mp3 file (MPEG-1 layer III, 32 kbps mono).
SILENT_MP3 = (b"\xff\xfb\x10\xc4" + b"\x00" * 100) * 8

Receive = Callable[[Request], Awaitable[object]]


@dataclass
class FakeRecording:
    sid: str
    call_sid: str
    audio: bytes
    duration: int = 4
    channels: int = 1
    source: str = "RecordVerb"
    deleted: bool = False
    downloads: int = 0


@dataclass
class FakeRecordings:
    items: dict[str, FakeRecording] = field(default_factory=dict)
    script: list[str] = field(default_factory=list)  # per download or deletion

    def add(
        self,
        call_sid: str,
        *,
        audio: bytes = SILENT_MP3,
        duration: int = 4,
        channels: int = 1,
        source: str = "RecordVerb",
    ) -> FakeRecording:
        recording = FakeRecording(
            sid="RE" + uuid.uuid4().hex,
            call_sid=call_sid,
            audio=audio,
            duration=duration,
            channels=channels,
            source=source,
        )
        self.items[recording.sid] = recording
        return recording

    def routes(self, base: str, receive: Receive) -> list[Route]:
        """The recording routes under `base` (`/2010-04-01/Accounts/{account_sid}`);
        `receive` authenticates a request (a Response when it is refused)."""

        async def audio(request: Request) -> Response:
            refused = await receive(request)
            if isinstance(refused, Response):
                return refused
            recording = self._found(request)
            if recording is None:
                return _not_found(request)
            if (failure := await self._scripted()) is not None:
                return failure
            recording.downloads += 1
            return Response(recording.audio, media_type="audio/mpeg")

        async def resource(request: Request) -> Response:
            refused = await receive(request)
            if isinstance(refused, Response):
                return refused
            recording = self._found(request)
            if recording is None:
                return _not_found(request)
            return JSONResponse(self.resource(recording, request.path_params["account_sid"]))

        async def delete(request: Request) -> Response:
            refused = await receive(request)
            if isinstance(refused, Response):
                return refused
            recording = self._found(request)
            if recording is None:
                return _not_found(request)
            if (failure := await self._scripted()) is not None:
                return failure
            recording.deleted = True
            return Response(status_code=204)

        path = f"{base}/Recordings/{{recording_sid}}"
        return [
            Route(f"{path}.mp3", audio, methods=["GET"]),
            Route(f"{path}.json", resource, methods=["GET"]),
            Route(f"{path}.json", delete, methods=["DELETE"]),
        ]

    async def _scripted(self) -> Response | None:
        step = self.script.pop(0) if self.script else "ok"
        if step == "hang":
            await asyncio.sleep(3600)
        if step.startswith("status:"):
            status = int(step.split(":", 1)[1])
            return _error(status, 20000 + status, HTTPStatus(status).phrase)
        return None

    def _found(self, request: Request) -> FakeRecording | None:
        recording = self.items.get(request.path_params["recording_sid"])
        return None if recording is None or recording.deleted else recording

    def resource(self, recording: FakeRecording, account_sid: str) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{account_sid}/Recordings/{recording.sid}"
        return {
            "account_sid": account_sid,
            "call_sid": recording.call_sid,
            "channels": recording.channels,
            "duration": str(recording.duration),
            "sid": recording.sid,
            "source": recording.source,
            "status": "completed",
            "uri": f"{uri}.json",
        }

    def status_form(
        self,
        recording: FakeRecording,
        *,
        account_sid: str,
        api_base: str = "https://api.twilio.com",
        status: str = "completed",
    ) -> dict[str, str]:
        """The recording status callback's form, as Twilio posts it."""
        form = {
            "AccountSid": account_sid,
            "CallSid": recording.call_sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": f"{api_base}/2010-04-01/Accounts/{account_sid}/Recordings/"
            f"{recording.sid}",
            "RecordingStatus": status,
            "RecordingChannels": str(recording.channels),
            "RecordingSource": recording.source,
            "RecordingStartTime": "Tue, 01 Dec 2026 10:00:00 +0000",
            "ErrorCode": "0",
        }
        if status == "completed":
            form["RecordingDuration"] = str(recording.duration)
        return form


async def post_recording_status(
    client: httpx.AsyncClient, url: str, form: dict[str, str], *, auth_token: str
) -> httpx.Response:
    """POST a recording status callback to `url` (its query included), signed as
    Twilio signs it."""
    headers = {HEADER: sign(url, form, auth_token), "User-Agent": "TwilioProxy/1.1"}
    return await client.post(url, data=form, headers=headers)


def _error(status: int, code: int, message: str) -> JSONResponse:
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
    return _error(404, 20404, f"The requested resource {request.url.path} was not found")
