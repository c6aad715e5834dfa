"""GET /metrics: what is counted, who may read it, and sums across uvicorn workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs
from bridge.routing import parse_routes
from bridge.secret import Secret
from bridge.transport.timing import endpoint_name
from tests.helpers import (
    API_TOKEN,
    AUTH_TOKEN,
    BEARER,
    ELEVENLABS_KEY,
    SETTINGS_VARIABLES,
    Upstreams,
    free_port,
    make_settings,
    outbound_settings,
    post_signed,
    running_server,
    start_server_process,
    twilio_form,
    twilio_signature,
)

ROUTES = """
[[rules]]
name = "blocklist"
when = { callers = ["+15559990000"] }
action = "reject"

[[rules]]
name = "sales"
when = { called = ["+15557650001"] }
action = "agent"
agent_id = "agent_sales"
"""


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient | httpx.Client) -> str:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


@pytest.fixture
def fake() -> FakeElevenLabs:
    return FakeElevenLabs(api_key=ELEVENLABS_KEY)


@pytest.fixture
def client(fake: FakeElevenLabs) -> Iterator[TestClient]:
    settings = make_settings(bridge_api_token=Secret(API_TOKEN), inbound_deadline=1.0)
    table = parse_routes(ROUTES, source="routes.toml")
    app = create_app(settings, table=table, transport=httpx.ASGITransport(app=fake.app))
    with TestClient(app) as test_client:
        yield test_client


def test_calls_are_counted_by_direction_rule_action_and_outcome(
    client: TestClient, fake: FakeElevenLabs
) -> None:
    for caller, called in [
        ("+15551234567", "+15557650000"),  # default rule, connected
        ("+15551234567", "+15557650001"),  # sales, connected
        ("+15551234567", "+15557650001"),
        ("+15559990000", "+15557650001"),  # blocklist: handled by the rule's own TwiML
    ]:
        response = post_signed(client, "/twilio/inbound", twilio_form(From=caller, To=called))
        assert response.status_code == 200
    fake.script = ["status:500", "status:500"]
    post_signed(client, "/twilio/inbound", twilio_form(To="+15557650001"))

    text = scrape(client)
    calls = "callbridge_calls_total"
    assert value(text, calls, direction="inbound", rule="default", action="agent",
                 outcome="connected") == 1  # fmt: skip
    assert value(text, calls, direction="inbound", rule="sales", action="agent",
                 outcome="connected") == 2  # fmt: skip
    assert value(text, calls, direction="inbound", rule="blocklist", action="reject",
                 outcome="handled") == 1  # fmt: skip
    assert value(text, calls, direction="inbound", rule="sales", action="agent",
                 outcome="fallback") == 1  # fmt: skip
    assert value(text, "callbridge_fallbacks_total", reason="http_500") == 1
    # Three connected calls, then a 500 and its retry: five register-call requests.
    latency = "callbridge_upstream_request_seconds_count"
    assert value(text, latency, endpoint="elevenlabs_register_call", result="2xx") == 3
    assert value(text, latency, endpoint="elevenlabs_register_call", result="5xx") == 2
    assert value(text, "callbridge_upstream_request_seconds_bucket",
                 endpoint="elevenlabs_register_call", result="2xx", le="+Inf") == 3  # fmt: skip


def test_timeouts_and_refused_connections_are_timed_as_such() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = make_settings(inbound_deadline=2.0, bridge_api_token=Secret(API_TOKEN))
    app = create_app(settings, transport=httpx.MockTransport(refuse))
    with TestClient(app) as client:
        post_signed(client, "/twilio/inbound", twilio_form())
        text = scrape(client)
    latency = "callbridge_upstream_request_seconds_count"
    # A refused connection is retried once inside the deadline.
    assert value(text, latency, endpoint="elevenlabs_register_call", result="error") == 2
    assert value(text, "callbridge_fallbacks_total", reason="connect_error") == 1

    hanging = FakeElevenLabs(api_key=ELEVENLABS_KEY, script=["hang"])
    settings = make_settings(inbound_deadline=0.5, bridge_api_token=Secret(API_TOKEN))
    app = create_app(settings, transport=httpx.ASGITransport(app=hanging.app))
    with TestClient(app) as client:
        post_signed(client, "/twilio/inbound", twilio_form())
        text = scrape(client)
    assert value(text, latency, endpoint="elevenlabs_register_call", result="timeout") == 1
    assert value(text, "callbridge_upstream_request_seconds_sum",
                 endpoint="elevenlabs_register_call", result="timeout") >= 0.45  # fmt: skip
    assert value(text, "callbridge_fallbacks_total", reason="timeout") == 1


def test_signature_failures_are_counted_by_route(client: TestClient) -> None:
    for path in ["/twilio/inbound", "/twilio/inbound", "/twilio/status"]:
        form = twilio_form()
        response = client.post(path, data=form, headers={"X-Twilio-Signature": "forged"})
        assert response.status_code == 403
    text = scrape(client)
    failures = "callbridge_signature_failures_total"
    assert value(text, failures, route="/twilio/inbound") == 2
    assert value(text, failures, route="/twilio/status") == 1
    assert value(text, "callbridge_calls_total", direction="inbound", rule="default",
                 action="agent", outcome="connected") == 0  # fmt: skip


def test_outbound_requests_and_answers_are_counted(tmp_path: Path) -> None:
    upstreams = Upstreams()
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    with TestClient(app) as client:
        placed = client.post("/calls", json={"to": "+14155550123"}, headers=BEARER)
        assert placed.status_code == 201, placed.text
        upstreams.twilio.script = ["status:400"]
        refused = client.post("/calls", json={"to": "+14155550124"}, headers=BEARER)
        assert refused.status_code == 502, refused.text
        native = client.post("/calls", json={"to": "+14155550125", "mode": "sip"}, headers=BEARER)
        assert native.status_code == 201, native.text
        text = scrape(client)
    requested = "callbridge_outbound_requests_total"
    assert value(text, requested, mode="twilio", result="placed") == 1
    assert value(text, requested, mode="twilio", result="not_placed") == 1
    assert value(text, requested, mode="sip", result="placed") == 1
    latency = "callbridge_upstream_request_seconds_count"
    assert value(text, latency, endpoint="twilio_create_call", result="2xx") == 1
    assert value(text, latency, endpoint="twilio_create_call", result="4xx") == 1
    assert value(text, latency, endpoint="elevenlabs_sip_outbound_call", result="2xx") == 1


@pytest.mark.parametrize(
    ("api_token", "metrics_token", "authorization", "status"),
    [
        ("", "", f"Bearer {API_TOKEN}", 503),
        (API_TOKEN, "", "", 401),
        (API_TOKEN, "", "Bearer wrong", 401),
        (API_TOKEN, "", f"Bearer {API_TOKEN}", 200),
        # With its own token, the scraper needs no power to place calls, and has none.
        (API_TOKEN, "scrape-only", "Bearer scrape-only", 200),
        (API_TOKEN, "scrape-only", f"Bearer {API_TOKEN}", 401),
        ("", "scrape-only", "Bearer scrape-only", 200),
    ],
)
def test_metrics_need_a_bearer_token(
    api_token: str, metrics_token: str, authorization: str, status: int
) -> None:
    settings = make_settings(
        bridge_api_token=Secret(api_token), metrics_token=Secret(metrics_token)
    )
    with TestClient(create_app(settings, transport=httpx.MockTransport(lambda r: None))) as client:  # type: ignore[arg-type]
        response = client.get("/metrics", headers={"authorization": authorization})
    assert response.status_code == status
    if status != 200:
        assert "callbridge_" not in response.text
        assert API_TOKEN not in response.text and "scrape-only" not in response.text


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/convai/twilio/register-call", "elevenlabs_register_call"),
        ("/v1/convai/twilio/outbound-call", "elevenlabs_twilio_outbound_call"),
        ("/v1/convai/sip-trunk/outbound-call", "elevenlabs_sip_outbound_call"),
        ("/v1/convai/agents/agent_1", "elevenlabs_other"),
        ("/2010-04-01/Accounts/ACx/Calls.json", "twilio_create_call"),
        ("/2010-04-01/Accounts/ACx/Calls/CA1.json", "twilio_update_call"),
        ("/2010-04-01/Accounts/ACx/IncomingPhoneNumbers.json", "twilio_other"),
        ("/anything/else", "other"),
    ],
)
def test_endpoint_names_are_a_fixed_set(path: str, name: str) -> None:
    assert endpoint_name(path) == name


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/v1/convai/conversations", "elevenlabs_conversations"),
        ("GET", "/v1/convai/conversations/conv_1", "elevenlabs_conversations"),
        ("GET", "/2010-04-01/Accounts/ACx/Calls/CA1.json", "twilio_fetch_call"),
        ("POST", "/2010-04-01/Accounts/ACx/Calls/CA1.json", "twilio_update_call"),
    ],
)
def test_reconciliation_requests_are_named_too(method: str, path: str, name: str) -> None:
    assert endpoint_name(path, method) == name


# --- several worker processes ---------------------------------------------------------

PUBLIC_LOCAL = "http://127.0.0.1:{port}"
WORKERS = 3
CALLS = 40


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param("callbridge serve", id="bridge-serve"),
        # What the Procfile runs: uvicorn with $WEB_CONCURRENCY workers.
        pytest.param("uvicorn", id="uvicorn-web-concurrency"),
    ],
)
def test_counts_add_up_across_worker_processes(launcher: str, tmp_path: Path) -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY, keep_requests=False)
    port = free_port()
    public = PUBLIC_LOCAL.format(port=port)
    with running_server(fake.app) as elevenlabs:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            ELEVENLABS_API_KEY=ELEVENLABS_KEY,
            ELEVENLABS_AGENT_ID="agent_default",
            ELEVENLABS_API_BASE=elevenlabs,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            PUBLIC_BASE_URL=public,
            BRIDGE_API_TOKEN=API_TOKEN,
            DATABASE_URL=f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
            LOG_LEVEL="WARNING",
            WEB_CONCURRENCY=str(WORKERS),
            # The workers' shared metrics directory is made under here.
            TMPDIR=str(tmp_path),
        )
        subprocess.run(
            [sys.executable, "-m", "bridge.cli", "db", "upgrade"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        if launcher == "callbridge serve":
            command = [sys.executable, "-m", "bridge.cli", "serve", "--host", "127.0.0.1",
                       "--port", str(port)]  # fmt: skip
        else:
            command = [sys.executable, "-m", "uvicorn", "bridge.app:app", "--host", "127.0.0.1",
                       "--port", str(port), "--log-level", "warning"]  # fmt: skip
        process = start_server_process(command, env, public, tmp_path / "server.log")
        try:
            form_url = f"{public}/twilio/inbound"

            async def call_many(first: int) -> list[int]:
                # A connection per call, as Twilio does: the calls spread over the workers.
                async def one(i: int) -> int:
                    form = twilio_form(CallSid=f"CA{i:032x}")
                    async with httpx.AsyncClient(base_url=public) as client:
                        response = await client.post(
                            "/twilio/inbound",
                            data=form,
                            headers={"X-Twilio-Signature": twilio_signature(form_url, form)},
                        )
                        return response.status_code

                return await asyncio.gather(*(one(i) for i in range(first, first + CALLS)))

            # Until at least two workers have counted calls (each writes its own file),
            # so that no single worker's view could show the total.
            total = 0
            while len(counter_files(tmp_path)) < 2 and total < 10 * CALLS:
                assert asyncio.run(call_many(total)) == [200] * CALLS
                total += CALLS
            assert len(counter_files(tmp_path)) >= 2
            for _ in range(12):
                # A new connection each time, so the scrapes land on different workers.
                with httpx.Client(base_url=public) as scraper:
                    text = scrape(scraper)
                assert value(text, "callbridge_calls_total", direction="inbound",
                             rule="default", action="agent",
                             outcome="connected") == total  # fmt: skip
                assert value(text, "callbridge_upstream_request_seconds_count",
                             endpoint="elevenlabs_register_call",
                             result="2xx") == total  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert process.returncode == 0
    if launcher == "callbridge serve":
        assert counter_files(tmp_path) == []  # its directory is removed on exit


def counter_files(root: Path) -> list[Path]:
    return sorted(root.glob("callbridge-metrics-*/counter_*.db"))


# --- the directory uvicorn's workers share ------------------------------------------


def test_directories_of_exited_servers_are_removed(tmp_path: Path) -> None:
    from bridge.metrics import _process_start_ticks, _remove_stale_directories

    ours = tmp_path / f"callbridge-metrics-{os.getpid()}-{_process_start_ticks(os.getpid())}"
    exited = tmp_path / "callbridge-metrics-4194000-12345"  # no such process
    reused = tmp_path / f"callbridge-metrics-{os.getpid()}-1"  # our pid, another process
    someone_elses = tmp_path / "callbridge-metrics-4194001-1"
    for path in (ours, exited, reused):
        path.mkdir(mode=0o700)
        (path / "counter_1.db").write_bytes(b"")
    someone_elses.mkdir(mode=0o777)
    someone_elses.chmod(0o777)  # not ours to judge: left alone
    _remove_stale_directories(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, someone_elses.name])


@pytest.mark.parametrize(
    ("make", "private"),
    [
        (lambda path: path.mkdir(mode=0o700), True),
        (lambda path: (path.mkdir(), path.chmod(0o777)), False),
        (lambda path: (path.mkdir(), path.chmod(0o755)), False),
        (lambda path: path.symlink_to(path.parent, target_is_directory=True), False),
    ],
    ids=["ours", "world-writable", "readable-by-others", "symlink"],
)
def test_only_a_private_directory_is_trusted(
    tmp_path: Path, make: Callable[[Path], object], private: bool
) -> None:
    from bridge.metrics import _private

    path = tmp_path / "shared"
    make(path)
    assert _private(path) is private


def test_call_log_write_failures_are_counted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = client.app.state.call_log_writer  # type: ignore[attr-defined]

    async def unreachable() -> object:
        raise ConnectionRefusedError("database is down")

    monkeypatch.setattr(writer.database, "engine", unreachable)
    post_signed(client, "/twilio/inbound", twilio_form())
    assert client.portal is not None
    with pytest.raises(ConnectionRefusedError):
        client.portal.call(writer.flush)
    text = scrape(client)
    # The background writer may have tried too: at least this one failure.
    assert value(text, "callbridge_call_log_write_failures_total") >= 1
    assert value(text, "callbridge_call_log_dropped_total") == 0


def test_workers_removing_stale_directories_at_once_do_not_trip_over_each_other(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from bridge.metrics import _remove_stale_directories

    for pid in range(4194100, 4194140):  # servers that exited
        stale = tmp_path / f"callbridge-metrics-{pid}-1"
        stale.mkdir(mode=0o700)
        (stale / "counter_1.db").write_bytes(b"x" * 1024)
    with ThreadPoolExecutor(8) as pool:
        for outcome in [pool.submit(_remove_stale_directories, tmp_path) for _ in range(8)]:
            outcome.result()  # raises if one of them did
    assert list(tmp_path.iterdir()) == []
