from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes.elevenlabs import register_twiml
from bridge.secret import Secret
from bridge.storage.tables import calls
from bridge.web.twilio_requests import MAX_BODY_BYTES, MAX_ESCAPES, MAX_FIELDS
from tests.helpers import (
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    PUBLIC,
    largest_twilio_form,
    make_settings,
    twilio_signature,
)

INBOUND_URL = f"{PUBLIC}/twilio/inbound"
FORM_TYPE = "application/x-www-form-urlencoded"
CALLER = "+14155550100"

CALL = [
    ("CallSid", "CA0123456789abcdef0123456789abcdef"),
    ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
    ("From", CALLER),
    ("To", "+15551234567"),
    ("CallStatus", "ringing"),
    ("Direction", "inbound"),
    ("ApiVersion", "2010-04-01"),
    ("Caller", CALLER),
    ("Called", "+15551234567"),
]


def test_signature_helper_matches_twilio_vector() -> None:
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, pairs, "12345") == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@dataclass
class Upstream:
    """A MockTransport for ElevenLabs that records every request it gets."""

    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == "/v1/convai/twilio/register-call"
        return httpx.Response(200, text=register_twiml("agent_default", "conv_test"))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def client(upstream: Upstream) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(), transport=upstream.transport)) as client:
        yield client


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the `bridge` loggers even after the app has set its own handler on them."""
    logger = logging.getLogger("bridge")
    propagate = logger.propagate
    logger.addHandler(caplog.handler)
    logger.propagate = False
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate


def post(
    client: TestClient,
    path: str = "/twilio/inbound",
    pairs: list[tuple[str, str]] = CALL,
    *,
    signed_url: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """POST a form; signed over `signed_url` (default: PUBLIC + path) unless `signature`."""
    all_headers = {"content-type": FORM_TYPE, **(headers or {})}
    if signature is None:
        signature = twilio_signature(signed_url or PUBLIC + path, pairs)
    if signature:
        all_headers["x-twilio-signature"] = signature
    return client.post(path, content=urlencode(pairs), headers=all_headers)


def assert_twiml(response: httpx2.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.lstrip().startswith("<?xml")
    assert "<Response>" in response.text


def assert_forbidden(response: httpx2.Response) -> None:
    assert response.status_code == 403
    assert response.text == "invalid Twilio signature\n"
    assert AUTH_TOKEN not in response.text


# --- accepted ---------------------------------------------------------------------------------


def test_signed_inbound_call_gets_agent_twiml(client: TestClient, upstream: Upstream) -> None:
    response = post(client)
    assert_twiml(response)
    assert "<Connect>" in response.text
    assert "conv_test" in response.text
    assert len(upstream.requests) == 1


def test_signed_behind_proxy_with_forwarded_headers(upstream: Upstream) -> None:
    settings = make_settings(public_base_url="", trust_forwarded_headers=True)
    app = create_app(settings, transport=upstream.transport)
    proxy = {"x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com"}
    with TestClient(app, base_url="http://internal:8000") as client:
        accepted = post(client, signed_url=INBOUND_URL, headers=proxy)
        # What the app itself sees is not what Twilio signed.
        internal = post(client, signed_url="http://internal:8000/twilio/inbound", headers=proxy)
    assert_twiml(accepted)
    assert_forbidden(internal)
    assert len(upstream.requests) == 1


def test_forwarded_headers_ignored_when_not_trusted(upstream: Upstream) -> None:
    settings = make_settings(public_base_url="", trust_forwarded_headers=False)
    proxy = {"x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com"}
    with TestClient(
        create_app(settings, transport=upstream.transport), "http://internal:8000"
    ) as c:
        forged_host = post(c, signed_url=INBOUND_URL, headers=proxy)
        direct = post(c, signed_url="http://internal:8000/twilio/inbound", headers=proxy)
    assert_forbidden(forged_host)
    assert_twiml(direct)


@pytest.mark.parametrize(
    ("allowed", "trust", "headers", "accepted"),
    [
        pytest.param(("bridge.example.com",), False, {}, True, id="listed"),
        pytest.param(("bridge.example.com:443",), False, {}, False, id="listed-other-port"),
        pytest.param(("other.example.com",), False, {}, False, id="not-listed"),
        pytest.param((), False, {}, True, id="no-list-any-host"),
        pytest.param(
            ("bridge.example.com",),
            True,
            {"x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com"},
            True,
            id="forwarded-listed",
        ),
        pytest.param(
            ("other.example.com",),
            True,
            {"x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com"},
            False,
            id="forwarded-not-listed",
        ),
    ],
)
def test_without_public_base_url_only_allowed_hosts_are_accepted(
    upstream: Upstream,
    logs: pytest.LogCaptureFixture,
    allowed: tuple[str, ...],
    trust: bool,
    headers: dict[str, str],
    accepted: bool,
) -> None:
    # A webhook Twilio signed for bridge.example.com, replayed here with its Host.
    settings = make_settings(
        public_base_url="", twilio_allowed_hosts=allowed, trust_forwarded_headers=trust
    )
    app = create_app(settings, transport=upstream.transport)
    base = "http://internal:8000" if trust else "https://bridge.example.com"
    with TestClient(app, base_url=base) as client:
        response = post(client, signed_url=INBOUND_URL, headers=headers)
    if accepted:
        assert_twiml(response)
        assert len(upstream.requests) == 1
    else:
        assert_forbidden(response)
        assert upstream.requests == []
        assert "reason=host_not_allowed" in logs.text


def test_public_base_url_is_what_is_checked(upstream: Upstream) -> None:
    app = create_app(make_settings(), transport=upstream.transport)
    proxy = {"x-forwarded-proto": "https", "x-forwarded-host": "other.example.com"}
    with TestClient(app, base_url="http://internal:8000") as client:
        accepted = post(client, signed_url=INBOUND_URL, headers=proxy)
        over_forwarded = post(
            client, signed_url="https://other.example.com/twilio/inbound", headers=proxy
        )
        over_internal = post(client, signed_url="http://internal:8000/twilio/inbound")
    assert_twiml(accepted)
    assert_forbidden(over_forwarded)
    assert_forbidden(over_internal)


def test_query_string_is_signed(client: TestClient, upstream: Upstream) -> None:
    path = "/twilio/inbound?line=sales&lang=de"
    assert_twiml(post(client, path, signed_url=PUBLIC + path))
    assert_forbidden(post(client, path, signed_url=INBOUND_URL))
    assert_forbidden(
        post(
            client,
            path,
            signature=twilio_signature(f"{PUBLIC}/twilio/inbound?line=support&lang=de", CALL),
        )
    )
    assert len(upstream.requests) == 1


def test_repeated_form_keys_are_signed(client: TestClient) -> None:
    pairs = [*CALL, ("Digits", "5678"), ("Digits", "1234")]
    assert_twiml(post(client, pairs=pairs))
    # Signed as if only one Digits had been sent: does not match what was posted.
    one_digits = [*CALL, ("Digits", "1234")]
    assert_forbidden(post(client, pairs=pairs, signature=twilio_signature(INBOUND_URL, one_digits)))


def test_skip_signature_accepts_unsigned_posts(upstream: Upstream) -> None:
    settings = make_settings(twilio_auth_token=Secret(""), skip_twilio_signature=True)
    with TestClient(create_app(settings, transport=upstream.transport)) as client:
        response = post(client, signature="")
    assert_twiml(response)
    assert len(upstream.requests) == 1


# --- rejected before any work -------------------------------------------------------------


def tampered(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, "+19005550199" if k == "From" else v) for k, v in pairs]


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        pytest.param("", "missing_signature", id="missing"),
        pytest.param("bm90IGEgc2lnbmF0dXJl", "malformed_signature", id="garbage"),
        pytest.param(twilio_signature(INBOUND_URL, CALL, "wrong-token"), "mismatch", id="wrong"),
        pytest.param(twilio_signature(INBOUND_URL, tampered(CALL)), "mismatch", id="tampered"),
        pytest.param(twilio_signature(INBOUND_URL, CALL).lower(), "mismatch", id="case-changed"),
    ],
)
def test_bad_signature_is_forbidden(
    client: TestClient,
    upstream: Upstream,
    logs: pytest.LogCaptureFixture,
    signature: str,
    reason: str,
) -> None:
    response = post(client, signature=signature)
    assert_forbidden(response)
    assert upstream.requests == []
    rejected = [r for r in logs.records if "signature_rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert rejected[0].levelno == logging.WARNING
    assert f"reason={reason}" in rejected[0].getMessage()
    assert AUTH_TOKEN not in logs.text
    assert ELEVENLABS_KEY not in logs.text


def test_tampered_body_with_original_signature_is_forbidden(
    client: TestClient, upstream: Upstream
) -> None:
    response = post(client, pairs=tampered(CALL), signature=twilio_signature(INBOUND_URL, CALL))
    assert_forbidden(response)
    assert upstream.requests == []


def test_no_auth_token_is_forbidden(upstream: Upstream, logs: pytest.LogCaptureFixture) -> None:
    settings = make_settings(twilio_auth_token=Secret(""))
    with TestClient(create_app(settings, transport=upstream.transport)) as client:
        response = post(client)
    assert_forbidden(response)
    assert upstream.requests == []
    assert "reason=no_auth_token" in logs.text


def test_rejected_log_line_cannot_be_forged(
    client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    # The form of an unsigned request is the attacker's; it must stay on one log line.
    pairs = [("CallSid", "CA1\nINFO bridge.call: event=inbound_call outcome=connected")]
    wrong = twilio_signature(INBOUND_URL, pairs, "wrong-token")
    assert_forbidden(post(client, pairs=pairs, signature=wrong))
    rejected = [r.getMessage() for r in logs.records if "signature_rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert "\n" not in rejected[0]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_cap_is_rejected(
    client: TestClient, upstream: Upstream, chunked: bool
) -> None:
    pairs = [*CALL, ("Pad", "x" * MAX_BODY_BYTES)]
    body = urlencode(pairs).encode()
    headers = {
        "content-type": FORM_TYPE,
        "x-twilio-signature": twilio_signature(INBOUND_URL, pairs),
    }

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = client.post(
        "/twilio/inbound", content=chunks() if chunked else body, headers=headers
    )
    if chunked:
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.text == "request body too large\n"
    assert upstream.requests == []


def test_body_of_exactly_the_cap_is_accepted(client: TestClient) -> None:
    base = urlencode([*CALL, ("Pad", "")])
    pairs = [*CALL, ("Pad", "x" * (MAX_BODY_BYTES - len(base)))]
    assert len(urlencode(pairs)) == MAX_BODY_BYTES == 32 * 1024
    assert_twiml(post(client, pairs=pairs))


def test_largest_realistic_twilio_form_is_accepted_with_margin(
    client: TestClient, upstream: Upstream
) -> None:
    form = largest_twilio_form()
    assert len(urlencode(form)) * 3 < MAX_BODY_BYTES
    assert len(form) * 2 < MAX_FIELDS
    assert urlencode(form).count("%") * 10 < MAX_ESCAPES
    assert_twiml(post(client, pairs=form))
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("pairs", "says"),
    [
        pytest.param(
            [*CALL, *((f"P{n}", "") for n in range(MAX_FIELDS))],
            "too many form fields\n",
            id="many-fields",
        ),
        pytest.param(
            [*CALL, *(("", "") for _ in range(MAX_FIELDS))],
            "too many form fields\n",
            id="many-empty-keys",
        ),
        pytest.param(
            [*CALL, ("Pad", "\u00e9" * (MAX_ESCAPES // 2 + 1))],
            "too many percent-escapes\n",
            id="many-escapes",
        ),
    ],
)
def test_forms_past_the_caps_are_refused_even_when_signed(
    client: TestClient, upstream: Upstream, pairs: list[tuple[str, str]], says: str
) -> None:
    response = post(client, pairs=pairs)
    assert response.status_code == 413
    assert response.text == says
    assert upstream.requests == []


class BodyNeverRead:
    """An ASGI `receive` that records whether the endpoint asked for the body."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> dict[str, object]:
        self.calls += 1
        return {"type": "http.request", "body": urlencode(CALL).encode(), "more_body": False}


def asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], receive: Any) -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"bridge.example.com"), *headers],
        "client": ("203.0.113.9", 4000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="no-header"),
        pytest.param(b"", id="empty"),
        pytest.param(b"bad", id="short"),
        pytest.param(b"!" * 28, id="not-base64"),
        pytest.param(base64.b64encode(b"x" * 21)[:28], id="28-chars-not-20-bytes"),
        pytest.param(base64.b64encode(b"x" * 32), id="sha256-length"),
        pytest.param(base64.b64encode(b"x" * 20) + b" ", id="trailing-junk"),
    ],
)
def test_unsigned_junk_is_refused_before_its_body_is_read(
    upstream: Upstream, path: str, signature: bytes | None
) -> None:
    app = create_app(make_settings(), transport=upstream.transport)
    headers = [(b"content-type", FORM_TYPE.encode()), (b"content-length", b"60000")]
    if signature is not None:
        headers.append((b"x-twilio-signature", signature))
    receive = BodyNeverRead()
    sent = asgi_post(app, path, headers, receive)
    assert sent[0]["status"] == 403
    assert sent[1]["body"] == b"invalid Twilio signature\n"
    assert receive.calls == 0
    assert upstream.requests == []


def test_a_wrong_but_well_formed_signature_is_checked(upstream: Upstream) -> None:
    app = create_app(make_settings(), transport=upstream.transport)
    wrong = twilio_signature(INBOUND_URL, CALL, "wrong-token").encode()
    headers = [(b"content-type", FORM_TYPE.encode()), (b"x-twilio-signature", wrong)]
    receive = BodyNeverRead()
    sent = asgi_post(app, "/twilio/inbound", headers, receive)
    assert sent[0]["status"] == 403
    assert receive.calls == 1
    assert upstream.requests == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "multipart/form-data; boundary=x", ""],
)
def test_non_form_content_type_is_rejected(
    client: TestClient, upstream: Upstream, content_type: str
) -> None:
    body = '{"CallSid": "CA1"}'
    headers = {"x-twilio-signature": twilio_signature(INBOUND_URL, [])}
    if content_type:
        headers["content-type"] = content_type
    response = client.post("/twilio/inbound", content=body, headers=headers)
    assert response.status_code == 415
    assert len(response.text) < 100
    assert upstream.requests == []


def test_form_content_type_with_charset_is_accepted(client: TestClient) -> None:
    response = post(client, headers={"content-type": f"{FORM_TYPE}; charset=utf-8"})
    assert_twiml(response)


@pytest.mark.parametrize(
    "path", ["/twilio/inbound", "/twilio/dial-complete", "/twilio/voicemail-complete"]
)
def test_get_is_not_allowed(client: TestClient, upstream: Upstream, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 405
    assert upstream.requests == []


# --- the other Twilio webhooks ----------------------------------------------------------------

DIAL_PATH = "/twilio/dial-complete?step=rule%3Asales"
VOICEMAIL_PATH = "/twilio/voicemail-complete?step=rule%3Aafter_hours"
DIAL_FORM = [*CALL, ("DialCallStatus", "no-answer")]
VOICEMAIL_FORM = [*CALL, ("RecordingSid", "RE123"), ("RecordingDuration", "12")]


@pytest.mark.parametrize(
    ("path", "pairs"), [(DIAL_PATH, DIAL_FORM), (VOICEMAIL_PATH, VOICEMAIL_FORM)]
)
def test_callback_webhooks_accept_signed_posts(
    client: TestClient, path: str, pairs: list[tuple[str, str]]
) -> None:
    assert_twiml(post(client, path, pairs))


@pytest.mark.parametrize(
    ("path", "pairs"), [(DIAL_PATH, DIAL_FORM), (VOICEMAIL_PATH, VOICEMAIL_FORM)]
)
@pytest.mark.parametrize("how", ["missing", "wrong-token", "tampered", "query-not-signed"])
def test_callback_webhooks_check_the_signature(
    client: TestClient,
    upstream: Upstream,
    logs: pytest.LogCaptureFixture,
    path: str,
    pairs: list[tuple[str, str]],
    how: str,
) -> None:
    url = PUBLIC + path
    signature = {
        "missing": "",
        "wrong-token": twilio_signature(url, pairs, "wrong-token"),
        "tampered": twilio_signature(url, tampered(pairs)),
        "query-not-signed": twilio_signature(url.split("?")[0], pairs),
    }[how]
    response = post(client, path, pairs, signature=signature)
    assert_forbidden(response)
    assert upstream.requests == []
    handled = ("event=voicemail", "event=dial_complete")
    assert not [r for r in logs.records if r.getMessage().startswith(handled)]
    assert "event=signature_rejected" in logs.text


# --- logs ---------------------------------------------------------------------------------------


def test_call_log_line_masks_caller_and_hides_secrets(
    client: TestClient, logs: pytest.LogCaptureFixture
) -> None:
    assert_twiml(post(client))
    lines = [r.getMessage() for r in logs.records if r.name == "bridge.calls"]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("event=inbound_call ")
    assert "call_sid=CA0123456789abcdef0123456789abcdef" in line
    assert "caller=+14*****0100" in line
    assert "outcome=connected" in line
    assert CALLER not in logs.text
    assert AUTH_TOKEN not in logs.text
    assert ELEVENLABS_KEY not in logs.text


def test_elevenlabs_key_goes_only_to_elevenlabs(client: TestClient, upstream: Upstream) -> None:
    response = post(client)
    assert_twiml(response)
    (request,) = upstream.requests
    assert request.headers["xi-api-key"] == ELEVENLABS_KEY
    assert ELEVENLABS_KEY not in response.text
    assert AUTH_TOKEN not in request.content.decode()
    assert AUTH_TOKEN not in str(request.headers)


def test_an_auth_token_rotation_drops_no_call(upstream: Upstream) -> None:
    """Create a secondary token, give the bridge both, promote it at Twilio: webhooks
    signed with the old primary and then with the new one are answered throughout."""
    new = "the-secondary-token-being-promoted"
    settings = make_settings(
        twilio_auth_token=Secret(new),
        twilio_previous_auth_token=Secret(AUTH_TOKEN),
        metrics_token=Secret("metrics"),
    )
    with TestClient(create_app(settings, transport=upstream.transport)) as client:
        before_promotion = post(client, signature=twilio_signature(INBOUND_URL, CALL))
        after_promotion = post(client, signature=twilio_signature(INBOUND_URL, CALL, new))
        forged = post(client, signature=twilio_signature(INBOUND_URL, CALL, "someone-else"))
        health = client.get("/healthz", headers={"authorization": "Bearer metrics"}).json()
        metrics = client.get("/metrics", headers={"authorization": "Bearer metrics"}).text
    assert_twiml(before_promotion)
    assert_twiml(after_promotion)
    assert_forbidden(forged)
    assert any(p.startswith("TWILIO_PREVIOUS_AUTH_TOKEN is set") for p in health["problems"])
    assert AUTH_TOKEN not in str(health) and new not in str(health)
    # Only the webhook signed with the old token counts: the operator's sign to wait.
    assert "callbridge_signatures_with_previous_token_total 1.0" in metrics


@pytest.mark.parametrize(
    "field", ["From", "To", "CallSid", "CallStatus", "SequenceNumber", "AnsweredBy"]
)
def test_a_status_callback_with_nul_is_stored_without_it(database_url: str, field: str) -> None:
    call_sid = "CA" + uuid.uuid4().hex
    form = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": CALLER,
        "To": "+15551234567",
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "AnsweredBy": "human",
        "Direction": "outbound-api",
    }
    form[field] = form[field][:2] + "\x00" + form[field][2:]
    with TestClient(create_app(make_settings(database_url=database_url))) as client:
        headers = {"X-Twilio-Signature": twilio_signature(f"{PUBLIC}/twilio/status", form)}
        response = client.post("/twilio/status", data=form, headers=headers)
        assert response.status_code == 200

        async def stored() -> list[Any]:
            engine = await client.app.state.database.engine()  # type: ignore[attr-defined]
            async with engine.connect() as connection:
                query = select(calls.c.call_sid, calls.c.from_number, calls.c.status).where(
                    calls.c.call_sid == call_sid
                )
                return list(await connection.execute(query))

        rows = client.portal.call(stored)  # type: ignore[union-attr]
    assert [tuple(row) for row in rows] == [(call_sid, CALLER, "completed")]
