"""The cheap half of the load benchmark: a raw-asyncio fake upstream and a raw-asyncio driver.

Both share the two cores with the bridge, so every microsecond they spend is taken from
the process being measured. Both speak only the HTTP/1.1 the benchmark needs (keep-alive,
Content-Length bodies; the driver also reads chunked replies), straight from an
`asyncio.Protocol` on uvloop: no framework, no task per request.

Run as a script, this module is the fake ElevenLabs upstream (inbound_load.py starts it):

    python benchmarks/lean.py --port 8081 --latency 0.15    # key from BENCH_FAKE_API_KEY

- `POST /v1/convai/twilio/register-call`: 401 (JSON, as the real API) unless the `xi-api-key`
  header is the configured key; 422 unless the body is a JSON object with a string
  `agent_id`; otherwise, after `--latency` seconds (one `loop.call_later`, no task), 200 with
  `Content-Type: text/html; charset=utf-8` and the TwiML of
  `bridge.fakes.elevenlabs.register_twiml(agent_id, conversation_id)`. The agent id is
  the one from the JSON body; the conversation id is `conv_` + a 20-hex-digit counter.
- `GET /healthz`: 200 `ok`, for the readiness check. Anything else: 404.

Imported, it gives `LeanClient`, the driver: `connections` keep-alive connections that
send pre-built request bytes, one request in flight on each, and time each answer.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

REGISTER_CALL_PATH = b"/v1/convai/twilio/register-call"
LOOKUP_PATH = b"/lookup"
LOOKUP_BODY = json.dumps(
    {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"customer_name": "Bench", "tier": "gold"},
    }
).encode()
HEALTH_PATH = b"/healthz"
ENV_API_KEY = "BENCH_FAKE_API_KEY"
DEFAULT_API_KEY = "bench-elevenlabs-key"
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
LISTEN_BACKLOG = 4096
# Stands in for the conversation id while a TwiML template is built; only letters, so
# `quoteattr` leaves it as it is.
_CONVERSATION_MARKER = "CONVERSATIONIDMARKER"
_TEMPLATE_CACHE_LIMIT = 1024

CONTENT_LENGTH = b"\r\ncontent-length:"
TRANSFER_ENCODING = b"\r\ntransfer-encoding:"
CONNECTION = b"\r\nconnection:"
API_KEY_HEADER = b"\r\nxi-api-key:"


def header_value(head: bytes, lowered: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (lower case, as b"\\r\\nname:") in a message head, or None.

    `head` is the request or status line plus the headers, without the blank line;
    `lowered` is `head.lower()`, computed once per message by the caller.
    """
    start = lowered.find(name)
    if start < 0:
        return None
    start += len(name)
    end = lowered.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def wants_close(version: bytes, connection: bytes | None) -> bool:
    if connection is not None:
        connection = connection.lower()
        if b"close" in connection:
            return True
        if b"keep-alive" in connection:
            return False
    return version == b"HTTP/1.0"


# --- the fake upstream ------------------------------------------------------------


def http_response(
    status: int, reason: bytes, content_type: bytes, body: bytes, *, close: bool = False
) -> bytes:
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n%s" % (
        status,
        reason,
        content_type,
        len(body),
        b"connection: close\r\n" if close else b"",
        body,
    )


JSON_TYPE = b"application/json"
HTML_TYPE = b"text/html; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
INVALID_KEY_BODY = json.dumps(
    {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
).encode()
BAD_BODY = json.dumps(
    {"detail": [{"loc": ["body"], "msg": "Need a JSON object with a string agent_id"}]}
).encode()


class FakeUpstream:
    """What every connection of the fake shares: settings, TwiML templates, a counter."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        api_key: str,
        latency: float,
        lookup_latency: float = 0.0,
    ) -> None:
        self.loop = loop
        self.api_key = api_key.encode()
        self.latency = latency
        self.lookup_latency = lookup_latency
        self.conversations = 0
        self._templates: dict[str, tuple[bytes, bytes]] = {}

    def twiml(self, agent_id: str) -> bytes:
        """`register_twiml(agent_id, conversation_id)`, without rebuilding it per call."""
        template = self._templates.get(agent_id)
        if template is None:
            from bridge.fakes.elevenlabs import register_twiml

            # rpartition: the conversation id comes after the agent id in the TwiML.
            before, _, after = register_twiml(agent_id, _CONVERSATION_MARKER).rpartition(
                _CONVERSATION_MARKER
            )
            template = (before.encode(), after.encode())
            if len(self._templates) >= _TEMPLATE_CACHE_LIMIT:
                self._templates.clear()
            self._templates[agent_id] = template
        self.conversations += 1
        return b"%sconv_%020x%s" % (template[0], self.conversations, template[1])


class _Pending:
    """One answer owed on a connection; answers go out in request order (pipelining)."""

    __slots__ = ("close", "handle", "payload")

    def __init__(self, payload: bytes | None, close: bool) -> None:
        self.payload = payload
        self.close = close
        self.handle: asyncio.TimerHandle | None = None


class FakeProtocol(asyncio.Protocol):
    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.queue: deque[_Pending] = deque()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        for pending in self.queue:
            if pending.handle is not None:
                pending.handle.cancel()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        buffer = self.buffer + data if self.buffer else data
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self.answer(http_response(431, b"Too Large", TEXT_TYPE, b""), close=True)
                break
            head = buffer[:end]
            lowered = head.lower()
            if TRANSFER_ENCODING in lowered:
                self.answer(http_response(411, b"Length Required", TEXT_TYPE, b""), close=True)
                break
            length_value = header_value(head, lowered, CONTENT_LENGTH)
            try:
                length = int(length_value) if length_value else 0
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.answer(http_response(400, b"Bad Request", TEXT_TYPE, b""), close=True)
                break
            total = end + 4 + length
            if len(buffer) < total:
                break
            self.handle(head, lowered, buffer[end + 4 : total])
            buffer = buffer[total:]
            if self.closing:
                break
        self.buffer = b"" if self.closing else buffer

    def handle(self, head: bytes, lowered: bytes, body: bytes) -> None:
        line_end = head.find(b"\r\n")
        parts = (head[:line_end] if line_end >= 0 else head).split(b" ")
        if len(parts) != 3:
            self.answer(http_response(400, b"Bad Request", TEXT_TYPE, b""), close=True)
            return
        method, target, version = parts
        close = wants_close(version, header_value(head, lowered, CONNECTION))
        path = target.split(b"?", 1)[0]
        if path == REGISTER_CALL_PATH:
            if method != b"POST":
                self.answer(http_response(405, b"Method Not Allowed", TEXT_TYPE, b""), close=close)
                return
            key = header_value(head, lowered, API_KEY_HEADER) or b""
            if not hmac.compare_digest(key, self.fake.api_key):
                reply = http_response(401, b"Unauthorized", JSON_TYPE, INVALID_KEY_BODY)
                self.answer(reply, close=close)
                return
            try:
                agent_id = json.loads(body)["agent_id"]
            except (ValueError, TypeError, KeyError):
                agent_id = None
            if not isinstance(agent_id, str):
                self.answer(
                    http_response(422, b"Unprocessable Entity", JSON_TYPE, BAD_BODY), close=close
                )
                return
            reply = http_response(200, b"OK", HTML_TYPE, self.fake.twiml(agent_id), close=close)
            if self.fake.latency > 0:
                self.answer_later(reply, close, self.fake.latency)
            else:
                self.answer(reply, close=close)
        elif path == LOOKUP_PATH and method == b"POST":
            # The lookup hook (inbound_load.py --lookup-latency): a fixed personalization;
            # the signature is not checked here, the tests do that (tests/test_e2e_lookup.py).
            reply = http_response(200, b"OK", JSON_TYPE, LOOKUP_BODY, close=close)
            if self.fake.lookup_latency > 0:
                self.answer_later(reply, close, self.fake.lookup_latency)
            else:
                self.answer(reply, close=close)
        elif path == HEALTH_PATH:
            self.answer(http_response(200, b"OK", TEXT_TYPE, b"ok"), close=close)
        else:
            self.answer(http_response(404, b"Not Found", TEXT_TYPE, b""), close=close)

    def answer(self, payload: bytes, *, close: bool) -> None:
        if self.queue:  # an earlier request is still waiting for its answer
            self.queue.append(_Pending(payload, close))
        else:
            self.write(payload, close)

    def answer_later(self, payload: bytes, close: bool, delay: float) -> None:
        pending = _Pending(None, close)
        pending.handle = self.fake.loop.call_later(delay, self.ready, pending, payload)
        self.queue.append(pending)

    def ready(self, pending: _Pending, payload: bytes) -> None:
        pending.payload = payload
        pending.handle = None
        queue = self.queue
        while queue and queue[0].payload is not None and not self.closing:
            first = queue.popleft()
            assert first.payload is not None
            self.write(first.payload, first.close)

    def write(self, payload: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(payload)
        if close:
            self.closing = True
            transport.close()


async def serve_fake(
    host: str, port: int, api_key: str, latency: float, lookup_latency: float = 0.0
) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    fake = FakeUpstream(loop, api_key, latency, lookup_latency)
    server = await loop.create_server(
        lambda: FakeProtocol(fake), host, port, backlog=LISTEN_BACKLOG
    )
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    try:
        await stop
    finally:
        server.close()


def fake_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Lean fake ElevenLabs register-call upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per register-call")
    parser.add_argument(
        "--lookup-latency", type=float, default=0.0, help="seconds per POST /lookup"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("loopback only")
    api_key = os.environ.get(ENV_API_KEY, DEFAULT_API_KEY)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_fake(args.host, args.port, api_key, args.latency, args.lookup_latency))
    else:
        uvloop.run(serve_fake(args.host, args.port, api_key, args.latency, args.lookup_latency))


# --- the driver -------------------------------------------------------------------


@dataclass
class RunResult:
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    outcomes: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    timed_out: bool = False


def classify(status: int, body: bytes) -> str:
    if status != 200:
        return f"http_{status}"
    if b"<Connect>" in body:
        return "ok"
    if b"<Say>" in body:
        return "fallback"  # the bridge answered, but the caller got no agent
    return "bad_body"


def raw_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, as bytes, ready to be written to a keep-alive connection."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def _dechunk(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    """A chunked body that begins at `start`: (body, end offset), None if incomplete."""
    chunks: list[bytes] = []
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(buffer[position:line_end].split(b";", 1)[0], 16)
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", position - 2)
            if trailer_end < 0:
                return None
            return b"".join(chunks), trailer_end + 4
        if len(buffer) < position + size + 2:
            return None
        chunks.append(buffer[position : position + size])
        position += size + 2


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time, next one on reply."""

    def __init__(self, client: LeanClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def send_next(self) -> None:
        client = self.client
        index = client.next_index
        if not client.running or index >= len(client.requests) or self.transport is None:
            self.busy = False
            return
        client.next_index = index + 1
        self.busy = True
        self.buffer = b""
        self.started = time.perf_counter()
        self.transport.write(client.requests[index])

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing was asked: the server is confused, or we gave up
            if self.transport is not None:
                self.transport.abort()
            return
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end]
        lowered = head.lower()
        try:
            status = int(head[9:12]) if head.startswith(b"HTTP/1.") else 0
            length_value = header_value(head, lowered, CONTENT_LENGTH)
            if length_value is not None:
                total = end + 4 + int(length_value)
                if len(buffer) < total:
                    self.buffer = buffer
                    return
                body = buffer[end + 4 : total]
            elif b"chunked" in (header_value(head, lowered, TRANSFER_ENCODING) or b""):
                dechunked = _dechunk(buffer, end + 4)
                if dechunked is None:
                    self.buffer = buffer
                    return
                body, total = dechunked
            elif status in (204, 304):
                body, total = b"", end + 4
            else:
                raise ValueError("no length")
        except ValueError:
            status, body, total = -1, b"", len(buffer)
        elapsed = time.perf_counter() - self.started
        self.buffer = b""
        self.busy = False
        outcome = classify(status, body) if status > 0 else "bad_framing"
        close = (
            status <= 0
            or len(buffer) != total
            or wants_close(head[:8], header_value(head, lowered, CONNECTION))
        )
        client = self.client
        client.record(outcome, elapsed)
        if close:
            if self.transport is not None:
                self.transport.close()  # connection_lost opens a replacement
        else:
            self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.client.lost(self, exc)


class LeanClient:
    """`connections` keep-alive HTTP/1.1 connections to one server, reused from run to run.

    `run()` sends each pre-built request exactly once, at most one per connection at a
    time, and returns the latencies of the successful ones and every outcome.
    """

    def __init__(self, host: str, port: int, connections: int, *, request_timeout: float) -> None:
        self.host = host
        self.port = port
        self.width = connections
        self.request_timeout = request_timeout
        self.connections: set[_Connection] = set()
        self.requests: Sequence[bytes] = ()
        self.next_index = 0
        self.completed = 0
        self.running = False
        self.result = RunResult()
        self._done: asyncio.Future[None] | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._watch_interval = max(min(request_timeout / 4, 0.5), 0.01)
        self._loop = asyncio.get_running_loop()

    async def run(self, requests: Sequence[bytes], *, hard_timeout: float) -> RunResult:
        result = self.result = RunResult()
        self.requests = requests
        self.next_index = self.completed = 0
        done = self._done = self._loop.create_future()
        if not requests:
            return result
        self.running = True
        width = min(self.width, len(requests))
        self._watchdog = self._loop.call_later(self._watch_interval, self._watch)
        started = time.perf_counter()
        reuse = [c for c in self.connections if not c.busy and c.transport is not None][:width]
        for connection in reuse:
            connection.send_next()
        for _ in range(width - len(reuse)):
            self._open()
        try:
            async with asyncio.timeout(hard_timeout):
                await done
        except TimeoutError:
            result.timed_out = True
        finally:
            self.running = False
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if not done.done():  # hard timeout or cancelled: drop what is in flight
                for connection in list(self.connections):
                    if connection.busy and connection.transport is not None:
                        connection.busy = False
                        connection.transport.abort()
        result.elapsed = time.perf_counter() - started
        result.outcomes["ok"] = len(result.latencies)
        if not result.outcomes["ok"]:
            del result.outcomes["ok"]
        missing = len(requests) - sum(result.outcomes.values())
        if missing:  # cut off by the hard timeout, or never sent
            result.outcomes["hard_timeout"] += missing
        return result

    def _watch(self) -> None:
        """Every half second at most: give up on requests older than request_timeout."""
        limit = time.perf_counter() - self.request_timeout
        for connection in list(self.connections):
            if connection.busy and connection.started < limit:
                connection.busy = False
                self.record("TimeoutError", 0.0)
                if connection.transport is not None:
                    connection.transport.abort()
        if self.running:
            self._watchdog = self._loop.call_later(self._watch_interval, self._watch)

    def record(self, outcome: str, latency: float) -> None:
        result = self.result
        if outcome == "ok":
            result.latencies.append(latency)
        else:
            result.outcomes[outcome] += 1
        self.completed += 1
        done = self._done
        if self.completed >= len(self.requests) and done is not None and not done.done():
            done.set_result(None)

    def lost(self, connection: _Connection, exc: Exception | None) -> None:
        self.connections.discard(connection)
        if not self.running:
            return
        if connection.busy:
            connection.busy = False
            self.record(type(exc).__name__ if exc else "connection_closed", 0.0)
        if self.next_index < len(self.requests):
            self._open()

    def _open(self) -> None:
        task = self._loop.create_task(self._connect())
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self) -> None:
        try:
            _, connection = await self._loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError as exc:
            if self.running and self.next_index < len(self.requests):
                # The request this connection would have sent fails, so a dead server
                # ends the run quickly instead of spinning.
                self.next_index += 1
                self.record(type(exc).__name__, 0.0)
                if self.next_index < len(self.requests):
                    self._open()
            return
        self.connections.add(connection)
        if self.running:
            connection.send_next()

    async def close(self) -> None:
        self.running = False
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.connections.clear()
        await asyncio.sleep(0)  # let the transports finish closing


if __name__ == "__main__":
    fake_main()
