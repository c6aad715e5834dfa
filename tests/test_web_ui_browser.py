"""The console in headless Chromium (DevTools protocol, as tests/test_web_ui.py): sign
in, the dashboard's figures and charts for a seeded call log, the live table, filtering
the calls list, a call page whose audio answers 200 with audio, the rules tester; on
every page no console errors (CSP violations included) and the accessibility basics.
Screenshots of each page go to $UI_SCREENSHOTS (default: the test's tmp dir)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

import bridge.app
from bridge.audio import names
from bridge.audio.files import FileAudioStore
from bridge.sandbox import Sandbox, SandboxOptions, Timing
from bridge.sandbox.banner import sign_in_url
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings
from tests.helpers import API_TOKEN, fresh_sqlite, make_settings, running_server
from tests.test_web_ui import CHROMIUM, DevTools, chromium

ROUTES = Path(__file__).parent / "data" / "routes_example.toml"
AUDIO = b"ID3\x04\x00 a voicemail " + bytes(range(256)) * 40
SAID = "We open at nine on weekdays."
PANEL = "document.querySelector('#campaign-panel').textContent"

# Accessibility basics, in the page: html lang, one h1, a label for every input,
# a title or aria-label on every svg, alt on every img, a name on every button.
A11Y = """(() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no html lang");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(h1 + " h1");
  for (const field of document.querySelectorAll("input, select, textarea")) {
    if (field.type === "hidden") continue;
    const labelled = (field.labels && field.labels.length) || field.getAttribute("aria-label")
      || field.getAttribute("aria-labelledby");
    if (!labelled) problems.push("unlabelled " + (field.name || field.id));
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (!svg.querySelector("title") && !svg.getAttribute("aria-label"))
      problems.push("svg without title");
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt");
  }
  for (const button of document.querySelectorAll("button")) {
    if (!button.textContent.trim() && !button.getAttribute("aria-label"))
      problems.push("unnamed button");
  }
  if (!document.querySelector('meta[name=viewport]')) problems.push("no viewport");
  return problems;
})()"""


class Browser(DevTools):
    """DevTools that also keeps the console errors, exceptions and log errors."""

    def __init__(self, tools: DevTools) -> None:
        super().__init__(tools.socket)
        self.errors: list[str] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            self._note(message)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails"))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    def settle(self, expression: str) -> Any:
        """The value of a promise `expression` in the page."""
        result = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(ready)

    def check_page(self, name: str, folder: Path) -> None:
        """No errors so far, the accessibility basics, and a screenshot."""
        self.settle("new Promise(r => setTimeout(r, 200))")
        assert self.evaluate(A11Y) == [], name
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
        assert self.errors == [], f"{name}: {self.errors}"


def seed(url: str, audio_root: Path) -> dict[str, str]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    sids: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    voicemails: list[dict[str, Any]] = []

    def add(name: str, outcome: str | None, status: str, **more: Any) -> dict[str, Any]:
        row = {
            "id": uuid.uuid4().hex,
            "call_sid": "CA" + uuid.uuid4().hex,
            "direction": "inbound",
            "from_number": "+14155550123",
            "to_number": "+14155550100",
            "rule": "support",
            "outcome": outcome,
            "status": status,
            "created_at": now - timedelta(seconds=len(rows)),
            **more,
        }
        rows.append(row)
        sids[name] = row["call_sid"]
        return row

    for n in range(3):
        row = add(f"agent{n}", "connected", "completed", duration=42 + n)
        events.append(
            {
                "call_id": row["id"],
                "kind": "inbound",
                "at": row["created_at"],
                "data": {"rule": "support", "outcome": "connected", "upstream_ms": 100.0 + 100 * n},
            }
        )
    fallback = add("fallback", "fallback", "completed", rule="sales", from_number="+14155559876")
    events.append(
        {
            "call_id": fallback["id"],
            "kind": "fallback",
            "at": fallback["created_at"],
            "data": {"action": "agent", "reason": "timeout"},
        }
    )
    add("rule", "handled", "completed", rule="closed")
    voicemail = add(
        "voicemail",
        "connected",
        "completed",
        conversation_id="conv_" + uuid.uuid4().hex[:12],
        summary="Caller asked about opening hours",
        analysis={
            "data_collection_results": {"visit_day": {"value": "Tuesday", "rationale": "said so"}}
        },
        transcript=[
            {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
            {"role": "user", "message": "When do you open?", "time_in_call_secs": 4},
            {"role": "agent", "message": SAID, "time_in_call_secs": 7},
        ],
    )
    add("live", None, "in-progress", rule="support", from_number="+14155550777")
    store = FileAudioStore(audio_root)
    recording_sid = "RE" + uuid.uuid4().hex
    stored = asyncio.run(store.put(names.recording(recording_sid), AUDIO))
    voicemails.append(
        {
            "recording_sid": recording_sid,
            "call_id": voicemail["id"],
            "call_sid": voicemail["call_sid"],
            "kind": "voicemail",
            "status": "stored",
            "duration": 12,
            "audio_name": stored.name,
            "audio_bytes": stored.bytes,
            "audio_sha256": stored.sha256,
            "created_at": now,
        }
    )

    async def write() -> None:
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            for row in rows:  # rows of different columns
                await connection.execute(insert(calls).values(row))
            await connection.execute(insert(call_events), events)
            await connection.execute(insert(recordings), voicemails)
        await database.dispose()

    asyncio.run(write())
    return sids


def today(browser: Browser, outcome: str) -> str:
    return str(
        browser.evaluate(
            f"document.querySelector('tr[data-outcome={outcome}] td[data-window=today]')"
            ".textContent"
        )
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_the_console_in_a_browser(tmp_path: Path) -> None:
    shots = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'console.sqlite3'}")
    sids = seed(url, tmp_path / "audio")
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN),
        database_url=url,
        audio_store=f"file://{tmp_path / 'audio'}",
        routes_file=ROUTES,
    )
    app = bridge.app.create_app(settings)
    profile = tmp_path / "chromium"
    profile.mkdir()
    with running_server(app) as base, chromium(profile) as tools:
        browser = Browser(tools)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            browser.send(domain)
        desktop = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        browser.send("Emulation.setDeviceMetricsOverride", **desktop)

        # Sign in: / -> /ui -> /ui/dashboard shows the form, which comes back there.
        browser.open(f"{base}/", "!!document.querySelector('input[name=token]')")
        browser.check_page("login", shots)
        browser.evaluate(
            f"document.querySelector('input[name=token]').value = {json.dumps(API_TOKEN)};"
            "document.querySelector('form.login button').click(); true"
        )
        browser.wait_for("!!document.querySelector('#outcomes')")
        assert browser.evaluate("location.pathname") == "/ui/dashboard"

        # The dashboard: the seeded figures, the charts, the live table polled.
        assert [today(browser, name) for name in ("agent", "rule", "fallback", "missed")] == [
            "4",
            "1",
            "1",
            "0",
        ]
        assert browser.evaluate("document.querySelector('#p50').textContent") == "200 ms"
        assert browser.evaluate("document.querySelectorAll('svg.chart').length") == 3
        assert (
            browser.evaluate("document.querySelectorAll('svg.chart rect.o-fallback').length") == 2
        )
        assert "timed out" in browser.evaluate(
            "document.querySelector('#reasons-h').nextElementSibling.textContent"
        )
        browser.wait_for("Number(document.querySelector('#live').dataset.polls || 0) >= 1")
        assert "+14155550777" in browser.evaluate("document.querySelector('#live').textContent")
        # A campaign started after the page loaded joins the panel without a reload (its
        # name is data: shown as text, never as markup).
        assert "No campaign running" in browser.evaluate(PANEL)
        started = httpx.post(
            f"{base}/campaigns",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            json={
                "name": "<b>Spring</b> reminders",
                "recipients": [{"phone": "+14155550123"}],
                "options": {"timezone": "UTC"},
            },
        )
        assert started.status_code == 201, started.text
        browser.wait_for(f"{PANEL}.includes('<b>Spring</b> reminders')")
        assert browser.evaluate("document.querySelectorAll('#campaign-panel b').length") == 0
        assert browser.evaluate("!!document.querySelector('#campaign-panel progress')")
        browser.check_page("dashboard", shots)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        browser.check_page("dashboard-phone", shots)
        browser.send("Emulation.setDeviceMetricsOverride", **desktop)

        # The calls list, filtered through its form: the fallback, highlighted.
        browser.open(f"{base}/ui/calls", "!!document.querySelector('#calls')")
        assert browser.evaluate("document.querySelectorAll('#calls tbody tr').length") == 7
        browser.check_page("calls", shots)
        browser.evaluate(
            "document.querySelector('#f-outcome').value = 'fallback';"
            "document.querySelector('form.filters button').click(); true"
        )
        browser.wait_for("location.search.includes('outcome=fallback')")
        browser.wait_for("document.querySelectorAll('#calls tbody tr').length === 1")
        assert browser.evaluate("document.querySelector('#calls tbody tr').className") == "fallback"
        assert "+14155559876" in browser.evaluate("document.querySelector('#calls').textContent")
        browser.check_page("calls-fallback", shots)

        # A call: the conversation, the results, and its audio answering 200 with audio.
        browser.open(
            f"{base}/ui/calls/{sids['voicemail']}",
            f"document.body.innerText.includes({json.dumps(SAID)})",
        )
        assert browser.evaluate("document.querySelectorAll('.conversation .turn').length") == 3
        assert "0:07" in browser.evaluate("document.querySelector('.conversation').textContent")
        assert "Tuesday" in browser.evaluate("document.querySelector('table.results').textContent")
        src = browser.evaluate("document.querySelector('audio').src")
        assert src.endswith(".mp3")
        got = browser.settle(
            "fetch(document.querySelector('audio').src).then(r => r.arrayBuffer().then("
            "b => [r.status, r.headers.get('content-type'), b.byteLength]))"
        )
        assert got == [200, "audio/mpeg", len(AUDIO)]
        browser.check_page("call", shots)

        # The rules tester: the example routing file's blocklist.
        browser.open(f"{base}/ui/rules", "!!document.querySelector('#r-from')")
        browser.check_page("rules", shots)
        browser.evaluate(
            "document.querySelector('#r-from').value = '+12025550199';"
            "document.querySelector('#r-to').value = '+14155550100';"
            "document.querySelector('form.filters button').click(); true"
        )
        browser.wait_for("!!document.querySelector('#result-rule')")
        assert browser.evaluate("document.querySelector('#result-rule').textContent") == "blocklist"
        assert "<Reject" in browser.evaluate("document.querySelector('#result-body').textContent")
        browser.check_page("rules-result", shots)
    # A subset: the campaign tour writes its screenshots to the same $UI_SCREENSHOTS.
    assert {path.name for path in shots.glob("*.png")} >= {
        f"{name}.png"
        for name in (
            "login",
            "dashboard",
            "dashboard-phone",
            "calls",
            "calls-fallback",
            "call",
            "rules",
            "rules-result",
        )
    }


CAMPAIGN_CSV = "phone,first_name\n+14155550123,Ada\n+14155550124,Bo\nnot-a-number,Cy\n"
FINAL_STATES = ("completed", "busy", "no_answer", "machine", "failed", "do_not_call", "cancelled")


@contextmanager
def sandbox_running(directory: Path) -> Iterator[Sandbox]:
    """The sandbox (fake Twilio, virtual phones, the bridge with its campaign worker)."""
    running = Sandbox(
        SandboxOptions(directory=directory, port=0, timing=Timing(ring=0.1, talk=0.3)),
        out=lambda line: None,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(running.run())
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert running.ready.wait(20) and not errors, errors
    try:
        yield running
    finally:
        running.stop()
        thread.join(15)
    assert not errors, errors


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_a_campaign_from_a_csv_upload_runs_to_the_end(tmp_path: Path) -> None:
    shots = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "chromium"
    profile.mkdir()
    with sandbox_running(tmp_path / "sandbox") as sandbox, chromium(profile) as tools:
        assert sandbox.credentials is not None
        base = sandbox.bridge_url
        browser = Browser(tools)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            browser.send(domain)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        # What the sandbox opens: its console, signed in by the page from the fragment,
        # which is gone from the address.
        browser.open(
            sign_in_url(base, sandbox.credentials.bridge_api_token),
            "!!document.querySelector('#outcomes')",
        )
        assert browser.evaluate("location.pathname + location.hash") == "/ui/dashboard"
        browser.open(f"{base}/ui/campaigns", "!!document.querySelector('#campaigns')")
        browser.check_page("campaigns", shots)

        # The form: the CSV as a file the page picks, calling hours all day, no retries.
        browser.open(f"{base}/ui/campaigns/new", "!!document.querySelector('#n-file')")
        browser.check_page("campaign-new", shots)
        browser.evaluate(
            "const files = new DataTransfer();"
            f"files.items.add(new File([{json.dumps(CAMPAIGN_CSV)}], 'contacts.csv',"
            " {type: 'text/csv'}));"
            "document.querySelector('#n-file').files = files.files;"
            "document.querySelector('#n-name').value = 'Sandbox round';"
            "document.querySelector('#n-open').value = '00:00';"
            "document.querySelector('#n-close').value = '23:59';"
            "document.querySelectorAll('input[name^=day_]').forEach(b => { b.checked = true; });"
            "document.querySelector('input[name=allow_outside]').checked = true;"
            "document.querySelector('#n-rate').value = '10';"
            "document.querySelector('#n-attempts').value = '0';"
            "document.querySelector('form.stack button[type=submit]').click(); true"
        )
        browser.wait_for("!!document.querySelector('#preview-rows')")
        assert browser.evaluate("document.querySelector('#accepted').textContent") == "2"
        assert "America/Los_Angeles" in browser.evaluate(
            "document.querySelector('#preview-rows').textContent"
        )
        assert "not-a-number" in browser.evaluate(
            "document.querySelector('#invalid-rows').textContent"
        )
        browser.check_page("campaign-new-preview", shots)

        # Start: the campaign page's bar reaches 100 % by polling, without a reload.
        browser.evaluate("document.querySelector('#start').click(); true")
        browser.wait_for("!!document.querySelector('#campaign-live')")
        browser.evaluate("window.sameDocument = true; true")
        browser.wait_for(
            "document.querySelector('#campaign-live [data-field=percent]').textContent === '100 %'",
            timeout=20,
        )
        assert browser.evaluate("window.sameDocument === true")
        assert browser.evaluate("Number(document.querySelector('#campaign-live').dataset.polls)")
        browser.open(browser.evaluate("location.href"), "!!document.querySelector('#recipients')")
        states = browser.evaluate(
            "[...document.querySelectorAll('#recipients tr[data-state]')]"
            ".map(row => row.dataset.state)"
        )
        assert sorted(states) == ["busy", "completed"]
        assert all(state in FINAL_STATES for state in states)
        assert (
            browser.evaluate(
                "document.querySelectorAll('#recipients a[href^=\"/ui/calls/\"]').length"
            )
            == 2
        )
        browser.check_page("campaign", shots)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        browser.check_page("campaign-phone", shots)

        browser.open(f"{base}/ui/dnc", "!!document.querySelector('#dnc')")
        browser.check_page("dnc", shots)
    assert {"campaigns", "campaign-new", "campaign-new-preview", "campaign", "dnc"} <= {
        path.stem for path in shots.glob("*.png")
    }
