"""The HTTP/1.1 protocol the bridge runs under uvicorn (`--http
bridge.web.connections:Protocol`, in the Procfile and `callbridge serve`).

uvicorn's httptools protocol, plus the two limits it lacks against slow and huge
clients, which otherwise hold a socket (and at a 1,024 descriptor limit lock
Twilio out) or memory for as long as they like:

- a request head (request line and headers) must arrive complete within
  HEAD_SECONDS of the connection opening or of the previous response; else the
  connection is closed. This closes idle connections that never send a request
  and heads sent a byte at a time (uvicorn's --timeout-keep-alive only covers the
  time between requests, until the first byte of the next one).
- a request head larger than MAX_HEAD_BYTES gets 431 and the connection is closed,
  instead of being buffered whole (a 100 MB header cost 150 MB).

A slow body is bodies.read_capped's (BODY_READ_SECONDS, 408).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0
# Twilio's and ElevenLabs' heads are 1-2 KB; Heroku's router refuses far smaller
# ones than this before they get here.
MAX_HEAD_BYTES = 32 * 1024
_TOO_LARGE = b"Request header fields too large.\n"


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops, uvicorn answers (see below)."""


class Protocol(HttpToolsProtocol):
    _head_timer: asyncio.TimerHandle | None = None
    _head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self._head_timer is not None
        if waiting:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still no whole head after more than the limit: every byte so far is head.
        if (
            waiting
            and self._head_timer is not None
            and self._head_bytes > MAX_HEAD_BYTES
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    # A head that arrived whole in one read: its size is what the parser saw.

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        if self._head_size > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a parser callback's exception: ours is a 431.
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request's head gets the same time

    def _await_head(self) -> None:
        self._head_arrived()
        self._head_bytes = self._head_size = 0
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._head_arrived()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_TOO_LARGE)).encode("ascii") + b"\r\n"
            b"connection: close\r\n\r\n" + _TOO_LARGE
        )
        self.transport.close()
