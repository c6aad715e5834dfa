"""What tests share: settings, real servers on loopback, signed Twilio webhooks,
migrated databases. Fixtures and hooks stay in conftest.py; everything else is here."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
import pytest
import uvicorn
from alembic import command
from sqlalchemy import insert, select

from bridge.elevenlabs.webhook_signature import HEADER as ELEVENLABS_HEADER
from bridge.elevenlabs.webhook_signature import sign as sign_elevenlabs
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.migrate import alembic_config
from bridge.storage.tables import call_events, calls

AUTH_TOKEN = "test-twilio-auth-token"
ELEVENLABS_KEY = "test-elevenlabs-key"
PUBLIC = "https://bridge.example.com"


# Every variable Settings.from_env reads: tests that build settings from the
# environment clear them all first.
SETTINGS_VARIABLES = (
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_AGENT_ID",
    "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
    "ELEVENLABS_API_BASE",
    "ELEVENLABS_WEBHOOK_SECRET",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_PREVIOUS_AUTH_TOKEN",
    "TWILIO_PHONE_NUMBER",
    "TWILIO_API_BASE",
    "PUBLIC_BASE_URL",
    "BRIDGE_API_TOKEN",
    "ROUTES_FILE",
    "DATABASE_URL",
    "PORT",
    "INBOUND_DEADLINE_SECONDS",
    "TRUST_FORWARDED_HEADERS",
    "TRUSTED_PROXY_COUNT",
    "TWILIO_ALLOWED_HOSTS",
    "BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE",
    "UPSTREAM_MAX_CONNECTIONS",
    "UPSTREAM_TRANSPORT",
    "OUTBOUND_ALLOWED_COUNTRIES",
    "SESSION_SECRET",
    "METRICS_TOKEN",
    "UI_TIMEZONE",
    "CALL_AUDIO_DIR",
    "AUDIO_STORE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "RETENTION_DAYS",
    "TWILIO_DELETE_RECORDINGS",
    "TWILIO_WEBHOOK_SHARED_KEY",
    "RECONCILE_INTERVAL_SECONDS",
    "RECONCILE_GRACE_SECONDS",
    "EVENTS_WEBHOOK_URL",
    "EVENTS_WEBHOOK_SECRET",
    "EVENTS_TYPES",
    "LOOKUP_URL",
    "LOOKUP_SECRET",
    "LOOKUP_TIMEOUT_SECONDS",
    "OUTBOUND_LOOKUP",
    "OUTBOUND_MAX_CONCURRENT_CALLS",
    "CAMPAIGN_INBOUND_RESERVE",
    "CAMPAIGN_WORKER",
    "ELEVENLABS_WEBHOOK_ALLOWED_IPS",
    "LOG_LEVEL",
    # Not a server setting: the CLI's default --url (the sandbox's env.sh sets it).
    "CALLBRIDGE_URL",
    # Not a setting: set on a platform, it makes the bridge refuse an unguarded Host.
    "DYNO",
)


def clear_settings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`callbridge ARGV...` in process: exit code, stdout, stderr."""
    from bridge.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# The outbound side: a bridge that places calls through in-process fakes.
API_TOKEN = "test-bridge-api-token-5f0c2a9e7d41b8c3"
ACCOUNT_SID = "AC" + "a" * 32
OUR_NUMBER = "+14155550100"
BEARER = {"authorization": f"Bearer {API_TOKEN}"}
# A secret dynamic variable's value, for checking it is shown and stored nowhere. The
# ':' and '!' keep it out of anything the bridge makes up (hex ids, base64url sealed
# blobs, timestamps), so "not in" can only fail if the secret itself leaked.
SECRET_PIN = "never-shown:pin!"


def make_settings(**changes: object) -> Settings:
    """Settings for a bridge that Twilio reaches at PUBLIC, with every secret set.

    No in-app campaign worker unless a test asks for one (`campaign_worker=True`): it
    would poll the database all through tests that have no campaign."""
    values: dict[str, object] = {
        "campaign_worker": False,
        "elevenlabs_api_key": Secret(ELEVENLABS_KEY),
        "elevenlabs_agent_id": "agent_default",
        "twilio_auth_token": Secret(AUTH_TOKEN),
        "public_base_url": PUBLIC,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


# --- an S3-compatible server on loopback (moto), for the s3:// audio store ----------

S3_ACCESS_KEY_ID = "AKIATESTAUDIOSTORE01"
# Never shown: tests check that no error, log or record carries it.
S3_SECRET_ACCESS_KEY = "s3-secret:never-shown!/audio"
S3_BUCKET = "callbridge-audio"


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on 127.0.0.1 with one bucket, `S3_BUCKET`."""

    endpoint: str

    def settings(self, prefix: str | None = None, **changes: object) -> Settings:
        """Settings whose audio store is the bucket, under `prefix` (default: a new
        one, so tests sharing the server never see each other's objects)."""
        prefix = uuid.uuid4().hex if prefix is None else prefix
        values: dict[str, object] = {
            "audio_store": f"s3://{S3_BUCKET}/{prefix}".rstrip("/"),
            "aws_access_key_id": S3_ACCESS_KEY_ID,
            "aws_secret_access_key": Secret(S3_SECRET_ACCESS_KEY),
            "aws_region": "us-east-1",
            "aws_endpoint_url": self.endpoint,
        }
        values.update(changes)
        return make_settings(**values)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix` (as stored: prefix included), read with boto3."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        )
        listed = client.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix)
        return {
            item["Key"]: client.get_object(Bucket=S3_BUCKET, Key=item["Key"])["Body"].read()
            for item in listed.get("Contents", [])
        }


@contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    """moto's S3 server in a thread of this process, with `S3_BUCKET` created."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        httpx.put(f"{endpoint}/{S3_BUCKET}", timeout=10).raise_for_status()
        yield S3Server(endpoint)
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_server_process(
    command: list[str], env: dict[str, str], base: str, log: Path
) -> subprocess.Popen[bytes]:
    """A server in a process of its own, its output in `log`, once `base`/healthz answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def twilio_form(**overrides: str) -> dict[str, str]:
    """A realistic "A call comes in" webhook form."""
    form = {
        "AccountSid": "AC" + "a" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "1" * 32,
        "CallStatus": "ringing",
        "Called": "+15557650000",
        "CalledCountry": "US",
        "CalledState": "CA",
        "Caller": "+15551234567",
        "CallerCountry": "US",
        "CallerState": "NY",
        "Direction": "inbound",
        "From": "+15551234567",
        "FromCity": "NEW YORK",
        "FromCountry": "US",
        "FromState": "NY",
        "FromZip": "10001",
        "To": "+15557650000",
        "ToCountry": "US",
        "ToState": "CA",
    }
    form.update(overrides)
    return form


def largest_twilio_form() -> list[tuple[str, str]]:
    """The largest voice webhook Twilio plausibly sends: every standard, geographic,
    caller-name, forwarding, STIR/SHAKEN, status, answering-machine and dial field at
    its longest plausible length, a CallToken with two PASSporTs, an AddOns result and
    20 SIP headers. What the webhook body and field caps are sized from."""

    def jwt(payload: int) -> str:
        # header.payload.signature in base64url: ES256 PASSporTs run 600 to 1,200 chars.
        return f"eyJ{'h' * 120}.eyJ{'p' * payload}.{'s' * 86}"

    city, state, zip_code = "X" * 64, "X" * 32, "X" * 16
    number = "+" + "9" * 15  # E.164: at most 15 digits
    form: list[tuple[str, str]] = [
        ("AccountSid", "AC" + "a" * 32),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", "CA" + "1" * 32),
        ("ParentCallSid", "CA" + "2" * 32),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
        ("CallerName", "X" * 64),
        ("ForwardedFrom", number),
        ("StirVerstat", "TN-Validation-Passed-A"),
        ("StirStatus", "TN-Validation-Passed-A"),
        ("StirPassportToken", jwt(900)),
        (
            "CallToken",
            json.dumps(
                {
                    "parentCallInfoToken": jwt(700),
                    "identityHeaderTokens": [jwt(900), jwt(900)],
                }
            ),
        ),
        (
            "AddOns",
            json.dumps(
                {
                    "status": "successful",
                    "message": None,
                    "code": None,
                    "results": {
                        "nomorobo_spamscore": {
                            "request_sid": "XR" + "3" * 32,
                            "status": "successful",
                            "message": None,
                            "code": None,
                            "result": {"status": "success", "message": "x" * 256, "score": 1},
                        }
                    },
                }
            ),
        ),
        ("CallDuration", "86400"),
        ("Duration", "1440"),
        ("Timestamp", "Wed, 02 Dec 2026 07:47:38 +0000"),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", "99"),
        ("SipResponseCode", "487"),
        ("AnsweredBy", "machine_end_other"),
        ("MachineDetectionDuration", "30000"),
        ("DialCallSid", "CA" + "4" * 32),
        ("DialCallStatus", "no-answer"),
        ("DialCallDuration", "86400"),
        ("DialBridged", "false"),
        (
            "RecordingUrl",
            "https://api.twilio.com/2010-04-01/Accounts/AC"
            + "a" * 32
            + "/Recordings/RE"
            + "5" * 32,
        ),
        ("RecordingSid", "RE" + "5" * 32),
        ("RecordingDuration", "14400"),
        ("SipDomain", "x" * 63 + ".sip.twilio.com"),
        ("SipDomainSid", "SD" + "6" * 32),
        ("SipCallId", "x" * 128 + "@203.0.113.10"),
        ("SipSourceIp", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
    ]
    for side in ("Called", "Caller", "From", "To"):
        form += [
            (side, number),
            (f"{side}City", city),
            (f"{side}State", state),
            (f"{side}Zip", zip_code),
            (f"{side}Country", "US"),
        ]
    form += [(f"SipHeader_X-Custom-Header-{n:02d}", "x" * 128) for n in range(20)]
    return form


def twilio_signature(
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    token: str = AUTH_TOKEN,
) -> str:
    """What Twilio sends in X-Twilio-Signature: base64 HMAC-SHA1 over the URL and the
    name+value pairs sorted (a repeated name once per value).

    The one signer every test uses. It is written out here, apart from the code under
    test and from the Twilio SDK, and checked against Twilio's published vector.
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def post_signed(client: Any, path: str, form: dict[str, str], public: str = PUBLIC) -> Any:
    """POST a form to `path` as Twilio would, signed for `public` + `path`."""
    headers = {"X-Twilio-Signature": twilio_signature(public + path, form)}
    return client.post(path, data=form, headers=headers)


def in_thread(work: Callable[[], object]) -> None:
    """Run `work` in a thread of its own: it may start an event loop, even when the
    caller is inside one (async tests)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def migrate_now(database_url: str) -> None:
    """Run the migrations on a test database, for real: for PostgreSQL, and for the tests
    whose subject is migrating. Other tests take a copy of the template (`fresh_sqlite`)."""
    in_thread(lambda: command.upgrade(alembic_config(database_url), "head"))


# The migrated SQLite schema, made once per test process and copied for each test that
# wants a database of its own: migrating takes ~100 ms, a copy well under 1 ms.
_template_dir: tempfile.TemporaryDirectory[str] | None = None


def _sqlite_template() -> Path:
    global _template_dir
    if _template_dir is None:
        directory = tempfile.TemporaryDirectory(prefix="callbridge-schema-")
        template = Path(directory.name) / "template.sqlite3"
        migrate_now(f"sqlite:///{template}")
        # A plain file copy is a whole database only with no write-ahead log beside it.
        assert not template.with_name(template.name + "-wal").exists()
        _template_dir = directory
    return Path(_template_dir.name) / "template.sqlite3"


def sqlite_path(database_url: str) -> Path:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"not a SQLite file URL: {database_url}")
    return Path(database_url.removeprefix(prefix))


def fresh_sqlite(database_url: str) -> str:
    """Make `database_url` (a SQLite file) a database at the newest schema, copied from
    the template; returns the URL. A file that exists already keeps its rows: it is
    upgraded in place, as `callbridge db upgrade` would."""
    path = sqlite_path(database_url)
    if path.exists():
        migrate_now(database_url)
        return database_url
    shutil.copyfile(_sqlite_template(), path)
    return database_url


POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


class Routed(httpx.AsyncBaseTransport):
    """Sends each upstream host to its fake, in process."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


class Upstreams:
    """Fake ElevenLabs and Twilio APIs, reached at elevenlabs.test and twilio.test."""

    def __init__(self) -> None:
        self.elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
        self.twilio = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
        self.transport = Routed(
            {
                "elevenlabs.test": httpx.ASGITransport(app=self.elevenlabs.app),
                "twilio.test": httpx.ASGITransport(app=self.twilio.app),
            }
        )

    def dialled(self) -> Counter[str]:
        """How many times Twilio was asked to call each number."""
        return Counter(call.param("To") or "" for call in self.twilio.calls.values())


def outbound_settings(tmp_path: Path, **changes: object) -> Settings:
    """Settings for placing calls through `Upstreams`, with a database in tmp_path."""
    values: dict[str, object] = {
        "bridge_api_token": Secret(API_TOKEN),
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_phone_number": OUR_NUMBER,
        "twilio_api_base": "http://twilio.test",
        "elevenlabs_api_base": "http://elevenlabs.test",
        "elevenlabs_agent_phone_number_id": "phnum_test",
        "database_url": f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
    }
    values.update(changes)
    settings = make_settings(**values)
    fresh_sqlite(settings.database_url)
    return settings


# Campaigns: the example contacts file, its valid numbers, and reading a results ledger.
CONTACTS = Path(__file__).parent / "data" / "contacts.csv"
GOOD = [f"+1415555011{digit}" for digit in range(6)]


def results_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# --- the call log behind a running app (post-call webhook tests) ---------------


@dataclass
class CallLogBridge:
    """A TestClient'd app with its database: post signed ElevenLabs webhooks, add and
    read the call records they land on."""

    client: Any
    database: Any
    secret: str
    audio_dir: Path | None = None
    url: str = "/elevenlabs/webhook"

    def run(self, query: Any) -> list[Any]:
        async def go() -> list[Any]:
            engine = await self.database.engine()
            async with engine.begin() as connection:
                result = await connection.execute(query)
                return list(result) if result.returns_rows else []

        return list(self.client.portal.call(go))

    def add_call(self, direction: str = "inbound", **values: Any) -> str:
        call_id = uuid.uuid4().hex
        self.run(
            insert(calls).values(
                id=call_id, direction=direction, created_at=datetime.now(UTC), **values
            )
        )
        return call_id

    def call(self, call_id: str) -> Any:
        (row,) = self.run(select(calls).where(calls.c.id == call_id))
        return row

    def events(self, where: Any) -> list[Any]:
        return self.run(select(call_events).where(where).order_by(call_events.c.id))

    def post(
        self,
        payload: dict[str, Any],
        *,
        secret: str | None = None,
        stamp: int | None = None,
        body: bytes | None = None,
        header: str | None = "",
    ) -> Any:
        """POST `payload` signed with `secret` (default: the app's) at `stamp` (now);
        `header=None` sends no signature, `body` replaces what is sent."""
        raw = json.dumps(payload).encode()
        if header == "":
            when = int(time.time()) if stamp is None else stamp
            header = sign_elevenlabs(raw, secret or self.secret, when)
        headers = {ELEVENLABS_HEADER: header} if header is not None else {}
        return self.client.post(self.url, content=raw if body is None else body, headers=headers)


# --- an upstream that fails after the request arrived (transport fault tests) ------


@dataclass
class FaultyUpstream:
    """A loopback HTTP server that reads each whole request, counts it, then either
    drops the connection ("drop") or answers 200 one byte every 0.1 s ("drip") until
    the client hangs up, noting how many bytes of body that took."""

    url: str
    received: list[bytes]
    dripped: list[int]


@contextmanager
def faulty_upstream(fault: str) -> Iterator[FaultyUpstream]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    upstream = FaultyUpstream(f"http://127.0.0.1:{listener.getsockname()[1]}", [], [])
    stopping = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
            upstream.received.append(head + b"\r\n\r\n" + body)
            if fault == "drip":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
                sent = 0
                while sent < 999 and not stopping.wait(0.1):
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break
                    sent += 1
                upstream.dripped.append(sent)

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()


async def read_http_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 request off a loopback server's stream: (head, body by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


@asynccontextmanager
async def answering_upstream(body: bytes, content_type: str) -> AsyncIterator[str]:
    """A loopback HTTP server answering every request 200 with `body`; yields its URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_http_request(reader)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                    % (content_type.encode(), len(body))
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def ui_login(client: Any, token: str, headers: dict[str, str] | None = None) -> Any:
    """Sign in to the console as a browser does: the form's CSRF token, then the POST."""
    import re

    page = client.get("/ui/login", headers=headers or {})
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    csrf = found.group(1) if found else ""
    return client.post(
        "/ui/login", data={"token": token, "csrf": csrf, "next": ""}, headers=headers or {}
    )


def california() -> str:
    """A random valid San Francisco number (its time zone known), for tests that share a
    PostgreSQL database and must not meet each other's numbers."""
    while True:
        candidate = f"+1415{uuid.uuid4().int % 10_000_000:07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


def without_campaign_worker() -> dict[str, object]:
    """make_settings() changes that keep the in-app campaign worker out of a test that
    checks recipients as the API left them (none while the worker is not in the tree)."""
    return {"campaign_worker": False} if "campaign_worker" in Settings.__dataclass_fields__ else {}
