"""The lookup hook on the inbound path: asked before register-call within the call's
deadline; whatever it does, the call goes on (with the rule's own values if it failed)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs
from bridge.routing import parse_routes
from bridge.secret import Secret
from tests.helpers import (
    API_TOKEN,
    BEARER,
    ELEVENLABS_KEY,
    fresh_sqlite,
    make_settings,
    post_signed,
    twilio_form,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GLOBAL_URL = "https://global.lookup.test/lookup"
RULE_URL = "https://rule.lookup.test/lookup"
SID = "CA" + "7" * 32
CALLER = "+14155550123"
DEADLINE = 1.0
VIP_LOOKUP = f'lookup = {{ url = "{RULE_URL}", timeout = 0.3 }}'
ROUTES = f"""
[[rules]]
name = "vip"
when = {{ callers = ["+14155550111"] }}
action = "agent"
agent_id = "agent_vip"
{VIP_LOOKUP}

[[rules]]
name = "spam"
when = {{ callers = ["+14155550666"] }}
action = "say"
message = "No thanks."
lookup = false

[[rules]]
name = "sales"
action = "agent"
agent_id = "agent_rule"
dynamic_variables = {{ tier = "basic", caller = "{{from}}" }}
first_message = "Hello"
"""


class Lookup:
    """The business's endpoint: answers what `reply` says, records what it got."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.reply: Any = {}
        self.hang = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.hang:
            await asyncio.sleep(30)
        if isinstance(self.reply, httpx.Response):
            return self.reply
        if isinstance(self.reply, Exception):
            raise self.reply
        return httpx.Response(200, json=self.reply)


class Bridge:
    def __init__(
        self, tmp_path: Path, *, lookup_url: str = GLOBAL_URL, routes: str = ROUTES, **changes: Any
    ) -> None:
        self.lookup = Lookup()
        self.elevenlabs = FakeElevenLabs(api_key=ELEVENLABS_KEY)
        lookup_transport = httpx.MockTransport(self.lookup)
        eleven = httpx.ASGITransport(app=self.elevenlabs.app)

        class Routed(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.host.endswith("lookup.test"):
                    return await lookup_transport.handle_async_request(request)
                return await eleven.handle_async_request(request)

        values: dict[str, Any] = {
            "inbound_deadline": DEADLINE,
            "lookup_url": lookup_url,
            "lookup_secrets": (Secret(SECRET),),
            "lookup_timeout": 0.5,
            "bridge_api_token": Secret(API_TOKEN),
            "database_url": fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}"),
        }
        values.update(changes)
        self.app = create_app(
            make_settings(**values), table=parse_routes(routes), transport=Routed()
        )

    def register_bodies(self) -> list[dict[str, Any]]:
        return list(self.elevenlabs.requests)


@pytest.fixture
def bridge(tmp_path: Path) -> Bridge:
    return Bridge(tmp_path)


def call(client: TestClient, caller: str = CALLER) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = post_signed(
        client, "/twilio/inbound", twilio_form(CallSid=SID, From=caller, CallerName="ADA L")
    )
    assert response.status_code == 200
    return response, time.monotonic() - started


def log_line(caplog: pytest.LogCaptureFixture) -> str:
    return next(r.getMessage() for r in caplog.records if r.name == "bridge.calls")


def lookups_counted(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics", headers=BEARER).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("callbridge_lookups_total{"):
            result = line.split('result="')[1].split('"')[0]
            counts[result] = float(line.rsplit(" ", 1)[1])
    return counts


def call_events(client: TestClient) -> list[dict[str, Any]]:
    writer = client.app.state.call_log_writer  # type: ignore[attr-defined]
    client.portal.call(writer.flush)  # type: ignore[union-attr]
    response = client.get(f"/calls/{SID}", headers=BEARER)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_the_lookup_personalizes_the_call(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    bridge.lookup.reply = {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {"tier": "gold", "name": "Ada", "secret__pin": "never-shown:pin!"},
        "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
        "user_id": "cust_1",
    }
    with caplog.at_level(logging.INFO), TestClient(bridge.app) as client:
        response, _ = call(client)
        assert "<Connect>" in response.text
        [body] = bridge.register_bodies()
        assert body["agent_id"] == "agent_rule"
        assert body["conversation_initiation_client_data"] == {
            "dynamic_variables": {
                "tier": "gold",
                "caller": CALLER,
                "name": "Ada",
                "secret__pin": "never-shown:pin!",
            },
            "conversation_config_override": {"agent": {"first_message": "Hi Ada"}},
            "user_id": "cust_1",
        }
        # The endpoint got the call, signed, and can verify it.
        [request] = bridge.lookup.requests
        assert str(request.url) == GLOBAL_URL
        sent = Webhook(SECRET).verify(request.content, dict(request.headers))
        assert sent["caller_id"] == CALLER and sent["rule"] == "sales"
        assert sent["agent_id"] == "agent_rule" and sent["call_sid"] == SID
        assert lookups_counted(client) == {"ok": 1.0}
        events = call_events(client)
        assert [event["kind"] for event in events] == ["lookup", "inbound"]
        data = events[0]["data"]
        assert data["result"] == "ok" and data["status"] == 200 and data["ms"] >= 0
        assert "dynamic_variables.secret__pin" in data["changed"]
        assert "never-shown:pin!" not in json.dumps(events)
        timeline = client.get(f"/calls/{SID}", headers=BEARER).text
        assert "never-shown:pin!" not in timeline
    line = log_line(caplog)
    assert "lookup=ok" in line and "lookup_ms=" in line and "outcome=connected" in line
    assert all("never-shown:pin!" not in record.getMessage() for record in caplog.records)


def test_agent_id_replaces_the_rules_agent(bridge: Bridge) -> None:
    bridge.lookup.reply = {"agent_id": "agent_other"}
    with TestClient(bridge.app) as client:
        call(client)
    assert bridge.register_bodies()[0]["agent_id"] == "agent_other"


def test_an_action_reroutes_the_call(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    bridge.lookup.reply = {"action": {"action": "forward", "to": ["+14155550199"]}}
    with caplog.at_level(logging.INFO), TestClient(bridge.app) as client:
        response, _ = call(client)
        assert "<Dial" in response.text and "+14155550199" in response.text
        assert "step=lookup%3Asales" in response.text
        assert bridge.register_bodies() == []
        events = call_events(client)
        assert events[0]["data"]["changed"] == ["action=forward"]
        # Nobody answered: the caller hears a goodbye, not a loop.
        after = post_signed(
            client,
            "/twilio/dial-complete?step=lookup%3Asales",
            twilio_form(CallSid=SID, From=CALLER, DialCallStatus="no-answer"),
        )
        assert after.status_code == 200 and "<Say" in after.text
    assert "action=forward" in log_line(caplog)


@pytest.mark.parametrize(
    ("reply", "result"),
    [
        pytest.param(httpx.Response(500, json={}), "http_error", id="500"),
        pytest.param(httpx.Response(200, content=b"{not json"), "invalid", id="invalid-json"),
        pytest.param(
            {"action": {"action": "forward", "to": ["12"]}}, "invalid", id="invalid-action"
        ),
        pytest.param({"agent_id": 12}, "invalid", id="agent-id-type"),
        pytest.param(httpx.ConnectError("refused"), "error", id="connection-refused"),
    ],
)
def test_a_failed_lookup_leaves_the_rules_values(
    bridge: Bridge, reply: Any, result: str, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.lookup.reply = reply
    with caplog.at_level(logging.INFO), TestClient(bridge.app) as client:
        response, _ = call(client)
        assert "<Connect>" in response.text  # never the fallback because of the lookup
        [body] = bridge.register_bodies()
        assert body["agent_id"] == "agent_rule"
        assert body["conversation_initiation_client_data"]["dynamic_variables"] == {
            "tier": "basic",
            "caller": CALLER,
        }
        assert lookups_counted(client) == {result: 1.0}
        assert call_events(client)[0]["data"]["result"] == result
    line = log_line(caplog)
    assert f"lookup={result}" in line and "outcome=connected" in line


def test_a_hanging_lookup_keeps_the_deadline(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.lookup.hang = True
    bridge.elevenlabs.latency = 0.3
    with caplog.at_level(logging.INFO), TestClient(bridge.app) as client:
        response, elapsed = call(client)
        assert "<Connect>" in response.text
        assert lookups_counted(client) == {"timeout": 1.0}
    # The lookup's 0.5 s, then register-call's 0.3 s: inside the call's 1 s.
    assert 0.75 <= elapsed < DEADLINE + 0.3
    assert "lookup=timeout" in log_line(caplog)


def test_a_long_lookup_timeout_leaves_register_call_its_reserve(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, lookup_timeout=10.0)
    bridge.lookup.hang = True
    with TestClient(bridge.app) as client:
        response, elapsed = call(client)
    # Half the 1 s deadline for the lookup, the rest for register-call.
    assert "<Connect>" in response.text
    assert 0.45 <= elapsed < DEADLINE + 0.3


def test_register_call_gets_only_what_the_lookup_left(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, lookup_timeout=10.0)
    bridge.lookup.hang = True
    bridge.elevenlabs.latency = 0.8  # would fit a whole deadline, not what is left of it
    with TestClient(bridge.app) as client:
        response, elapsed = call(client)
    assert "<Connect>" not in response.text  # register-call's own timeout: the fallback
    assert elapsed < DEADLINE + 0.3


def test_a_rules_own_lookup_is_used(bridge: Bridge) -> None:
    bridge.lookup.reply = {"dynamic_variables": {"name": "Ada"}}
    with TestClient(bridge.app) as client:
        call(client, caller="+14155550111")
    assert str(bridge.lookup.requests[0].url) == RULE_URL
    body = bridge.register_bodies()[0]
    assert body["agent_id"] == "agent_vip"
    assert body["conversation_initiation_client_data"] == {"dynamic_variables": {"name": "Ada"}}


def test_a_rules_own_timeout_is_used(bridge: Bridge) -> None:
    bridge.lookup.hang = True
    with TestClient(bridge.app) as client:
        _, elapsed = call(client, caller="+14155550111")
    assert 0.3 <= elapsed < 0.5 + 0.3  # its 0.3 s, not the global 0.5 s


def test_lookup_false_turns_the_global_one_off(bridge: Bridge) -> None:
    with TestClient(bridge.app) as client:
        response, _ = call(client, caller="+14155550666")
        assert "No thanks." in response.text
        assert lookups_counted(client) == {}
    assert bridge.lookup.requests == []


def test_without_any_lookup_nothing_is_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The file's lookups only: the hot path does not even check for one.
    bridge = Bridge(tmp_path, lookup_url="", routes=ROUTES.replace(VIP_LOOKUP, ""))
    with caplog.at_level(logging.INFO), TestClient(bridge.app) as client:
        call(client)
        assert client.app.state.inbound.lookups is None  # type: ignore[attr-defined]
        assert [event["kind"] for event in call_events(client)] == ["inbound"]
    assert bridge.lookup.requests == []
    assert "lookup=" not in log_line(caplog)


def test_a_rules_lookup_without_a_secret_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, lookup_url="", lookup_secrets=())
    with TestClient(bridge.app) as client:
        response, _ = call(client, caller="+14155550111")
        assert "<Connect>" in response.text
        assert lookups_counted(client) == {"error": 1.0}
    assert bridge.lookup.requests == []


def dial_action(twiml_text: str) -> str:
    """The <Dial action="..."> URL of an answer, as Twilio would post it."""
    action = twiml_text.split('action="', 1)[1].split('"', 1)[0]
    return action.replace("&amp;", "&")


def test_a_lookup_forward_keeps_its_own_on_no_answer(bridge: Bridge) -> None:
    bridge.lookup.reply = {
        "dynamic_variables": {"name": "Ada", "secret__pin": "never-shown:pin!"},
        "action": {
            "action": "forward",
            "to": ["+14155550199"],
            "on_no_answer": {"action": "agent", "agent_id": "agent_after_hours"},
        },
    }
    with TestClient(bridge.app) as client:
        response, _ = call(client)
        action = dial_action(response.text)
        assert action.startswith("/twilio/dial-complete?step=lookup%3Asales%3A")
        # Sealed: neither the secret variable nor the agent reads in the URL.
        assert "never-shown" not in action and "agent_after_hours" not in action
        after = post_signed(
            client,
            action,
            twilio_form(CallSid=SID, From=CALLER, DialCallStatus="no-answer"),
        )
        assert after.status_code == 200 and "<Connect>" in after.text
    [body] = bridge.register_bodies()
    assert body["agent_id"] == "agent_after_hours"
    variables = body["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables["name"] == "Ada" and variables["secret__pin"] == "never-shown:pin!"


@pytest.mark.parametrize(
    "step",
    [
        pytest.param("lookup%3Asales%3Anot-a-sealed-value", id="tampered"),
        pytest.param("lookup%3Asales", id="without-a-sealed-part"),
    ],
)
def test_a_lookup_forward_step_that_cannot_be_opened_ends_politely(
    bridge: Bridge, step: str
) -> None:
    with TestClient(bridge.app) as client:
        after = post_signed(
            client,
            f"/twilio/dial-complete?step={step}",
            twilio_form(CallSid=SID, From=CALLER, DialCallStatus="no-answer"),
        )
    assert after.status_code == 200 and "<Say" in after.text and "<Dial" not in after.text
    assert bridge.register_bodies() == []
