"""`GET /calls/{call_sid}/audio/{file}`: a call's audio (post-call audio, a voicemail, a
recording), for the API token holder or a signed-in console.

The file is looked up among the call's audio (bridge.calllog.audio); a name is never
built from the URL. A store with links (s3://) answers 307 to a presigned URL valid for
`LINK_SECONDS`, so the audio does not pass through the bridge; a file store streams it
(audio/mpeg, with its Content-Length). Unknown calls and files are 404 with a JSON
error, an unreachable store 503.

The console's session cookie is scoped to /ui, so a browser sends it only there: the
same audio is also served at `/ui/calls/{call_sid}/audio/{file}` for the console's
audio players. Both paths take either the bearer token or the session.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from bridge.audio.store import AudioStore, AudioStoreError
from bridge.calllog.audio import audio_of_call
from bridge.calllog.log_lines import logfmt
from bridge.storage.database import Database
from bridge.web import ui
from bridge.web.auth import refuse_unless_authorized

logger = logging.getLogger("bridge.web")
LINK_SECONDS = 300
UNAVAILABLE = "The audio store cannot be reached now; try again later."


async def serve(request: Request) -> Response:
    response = await _refusal(request) or await _audio(request)
    # A call's audio is for the token holder or the console only: never cached.
    response.headers.setdefault("cache-control", "no-store")
    return response


async def _refusal(request: Request) -> Response | None:
    refused = refuse_unless_authorized(request)
    if refused is not None and await ui.has_session(request):
        return None
    return refused


async def _audio(request: Request) -> Response:
    key: str = request.path_params["call_sid"]
    file: str = request.path_params["file"]
    database: Database = request.app.state.database
    found = await audio_of_call(database, key)
    if found is None:
        return JSONResponse({"error": f"No call {key!r} in the call log."}, status_code=404)
    audio = next((item for item in found if item.file == file), None)
    if audio is None:
        return JSONResponse({"error": f"Call {key!r} has no audio {file!r}."}, status_code=404)
    store: AudioStore = request.app.state.audio_store
    gone = JSONResponse(
        {"error": f"The audio {file!r} of call {key!r} is no longer in the audio store."},
        status_code=404,
    )
    try:
        size = await store.size(audio.name)
        if size is None:
            return gone
        link = await store.link(audio.name, LINK_SECONDS)
        if link is not None:
            return RedirectResponse(link, status_code=307)
        chunks = await store.read(audio.name)
    except ValueError:  # a file from before the audio store, which this store cannot reach
        return gone
    except AudioStoreError as exc:
        logger.error("%s", logfmt({"event": "audio_unavailable", "name": audio.name, "error": exc}))
        return JSONResponse({"error": UNAVAILABLE}, status_code=503)
    if chunks is None:
        return gone
    return StreamingResponse(chunks, media_type="audio/mpeg", headers={"content-length": str(size)})


routes = [
    Route("/calls/{call_sid}/audio/{file}", serve, methods=["GET"]),
    Route("/ui/calls/{call_sid}/audio/{file}", serve, methods=["GET"]),
]
