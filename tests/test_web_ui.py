"""The console: sign-in (form, cookie, Basic auth and its challenge), escaping, CSRF
checks, and end-to-end runs in headless Chromium driven over the DevTools protocol
(screenshots of every page to $UI_SCREENSHOTS, no console errors, accessibility basics)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.testclient import TestClient
from websockets.sync.client import ClientConnection, connect

import bridge.app
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls
from bridge.web import ui
from tests.helpers import API_TOKEN, fresh_sqlite, make_settings, running_server, ui_login

HTML = {"accept": "text/html"}

EVIL = "<script>alert('x')</script>"
SUMMARY = "Caller asked about opening hours & parking"
SHOWN = "Caller asked about opening hours &amp; parking"
SAID = "We open at nine on weekdays."


def basic(password: str, user: str = "admin") -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {credentials}"}


def add_call(
    database_url: str, *, events: list[dict[str, Any]] | None = None, **fields: Any
) -> str:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "call_sid": "CA" + uuid.uuid4().hex,
        "direction": "inbound",
        "from_number": "+14155550123",
        "to_number": "+14155550100",
        "rule": "support",
        "status": "completed",
        "duration": 42,
        "created_at": datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        "summary": SUMMARY,
        "transcript": [
            {"role": "agent", "message": "Hello, how can I help?"},
            {"role": "user", "message": "When do you open?"},
            {"role": "agent", "message": SAID},
        ],
    }
    values.update(fields)

    async def write() -> None:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(insert(calls).values(values))
            for event in events or []:
                await connection.execute(
                    insert(call_events).values(
                        call_id=values["id"], at=values["created_at"], **event
                    )
                )
        await database.dispose()

    asyncio.run(write())
    call_sid: str = values["call_sid"]
    return call_sid


def make_app(database_url: str, token: str = API_TOKEN) -> Starlette:
    settings = make_settings(bridge_api_token=Secret(token), database_url=database_url)
    app = bridge.app.create_app(settings)
    return app


@pytest.fixture
def database_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    fresh_sqlite(url)
    return url


@pytest.fixture
def client(database_file: str) -> Iterator[TestClient]:
    with TestClient(make_app(database_file), follow_redirects=False, headers=HTML) as client:
        yield client


def csrf_of(client: TestClient) -> str:
    """The CSRF token every form of the console repeats (its cookie's value)."""
    token = client.cookies.get("callbridge_csrf") or ""
    if not token:
        client.get("/ui/login")
        token = client.cookies.get("callbridge_csrf") or ""
    return token


def test_without_a_session_the_login_form_is_shown(client: TestClient) -> None:
    response = client.get("/ui/calls")
    assert response.status_code == 200
    assert 'type="password" name="token"' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert API_TOKEN not in response.text


def test_wrong_token_shows_the_form_again(client: TestClient, database_file: str) -> None:
    add_call(database_file)
    response = ui_login(client, "nope")
    assert response.status_code == 401
    assert "Wrong token" in response.text
    assert "set-cookie" not in response.headers
    assert SHOWN not in client.get("/ui/calls").text


def test_right_token_signs_in_with_a_strict_httponly_cookie(
    client: TestClient, database_file: str
) -> None:
    call_sid = add_call(database_file)
    response = ui_login(client, API_TOKEN)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/dashboard"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert "secure" not in cookie  # plain http here
    assert API_TOKEN not in response.headers["set-cookie"]

    page = client.get("/ui/calls")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert SHOWN in page.text
    assert f'href="/ui/calls/{call_sid}"' in page.text
    assert "+14155550123 → +14155550100" in page.text and "0:42" in page.text

    detail = client.get(f"/ui/calls/{call_sid}")
    assert detail.status_code == 200
    assert SAID in detail.text and "When do you open?" in detail.text

    client.post("/ui/logout", data={"csrf": csrf_of(client)})
    assert "Wrong token" not in client.get("/ui/calls").text
    assert SHOWN not in client.get("/ui/calls").text


def test_cookie_is_secure_over_https(database_file: str) -> None:
    with TestClient(
        make_app(database_file), base_url="https://testserver", follow_redirects=False
    ) as client:
        response = ui_login(client, API_TOKEN)
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_forged_or_stale_cookies_are_refused(client: TestClient, database_file: str) -> None:
    add_call(database_file)
    other_key = b"k" * 32
    for cookie in ("junk", ui.dump_session(other_key), "e30." + "A" * 43):
        client.cookies.set(ui.COOKIE, cookie)
        assert SHOWN not in client.get("/ui/calls").text
    key = ui._key(make_settings(bridge_api_token=Secret(API_TOKEN)))
    assert ui.session_valid(ui.dump_session(key), key)
    assert not ui.session_valid(ui.dump_session(key, now=0), key)


def test_basic_auth(client: TestClient, database_file: str) -> None:
    add_call(database_file)
    assert SHOWN in client.get("/ui/calls", headers=basic(API_TOKEN, user="anyone")).text
    wrong = client.get("/ui/calls", headers=basic("nope"))
    assert wrong.status_code == 401 and "Wrong token" in wrong.text
    assert wrong.headers["www-authenticate"].startswith('Basic realm="callbridge console"')
    garbled = client.get("/ui/calls", headers={"authorization": "Basic !!!"})
    assert garbled.status_code == 401


def test_a_client_not_asking_for_html_is_challenged(client: TestClient) -> None:
    """curl and scripts: 401 with the Basic challenge; browsers: the login form."""
    bare = client.get("/ui/calls", headers={"accept": "*/*"})
    assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Basic")
    assert client.get("/ui/calls").status_code == 200  # the form, for a browser
    assert "www-authenticate" not in client.get("/ui/calls").headers


def test_root_and_ui_redirect_to_the_dashboard(client: TestClient) -> None:
    for path in ("/", "/ui"):
        response = client.get(path)
        assert response.status_code == 307 and response.headers["location"] == "/ui/dashboard"


def test_posts_need_the_forms_csrf_token(client: TestClient) -> None:
    for data in ({"token": API_TOKEN}, {"token": API_TOKEN, "csrf": "x" * 32}):
        client.get("/ui/login")  # the cookie
        refused = client.post("/ui/login", data=data)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert ui_login(client, API_TOKEN).status_code == 303
    assert client.post("/ui/logout", data={"csrf": "nope"}).status_code == 403
    assert client.get("/ui/dashboard").status_code == 200  # still signed in


def test_login_returns_to_the_page_asked_for(client: TestClient) -> None:
    page = client.get("/ui/calls?direction=inbound")
    assert 'name="next" value="/ui/calls?direction=inbound"' in page.text.replace("&amp;", "&")
    csrf = csrf_of(client)
    for wanted, went in (
        ("/ui/calls?direction=inbound", "/ui/calls?direction=inbound"),
        ("https://evil.example/", "/ui/dashboard"),
        ("//evil.example/", "/ui/dashboard"),
    ):
        client.cookies.delete(ui.COOKIE)
        response = client.post("/ui/login", data={"token": API_TOKEN, "csrf": csrf, "next": wanted})
        assert response.headers["location"] == went, wanted


def test_signing_out_everywhere_ends_every_session(client: TestClient) -> None:
    sessions = []
    for _ in range(2):  # two devices
        client.cookies.delete(ui.COOKIE)
        sessions.append(ui_login(client, API_TOKEN).cookies[ui.COOKIE])
    assert "Sign out everywhere" in client.get("/ui/dashboard").text
    signed_out = client.post("/ui/logout-everywhere", data={"csrf": csrf_of(client)})
    assert signed_out.status_code == 303
    for cookie in sessions:
        client.cookies.set(ui.COOKIE, cookie)
        assert 'name="token"' in client.get("/ui/dashboard").text
    client.cookies.delete(ui.COOKIE)
    assert ui_login(client, API_TOKEN).status_code == 303
    assert "Sign out everywhere" in client.get("/ui/dashboard").text


def test_cross_site_posts_are_refused(client: TestClient) -> None:
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/page"},
    ):
        response = client.post("/ui/login", data={"token": API_TOKEN}, headers=headers)
        assert response.status_code == 403, headers
        assert "callbridge_ui=" not in response.headers.get("set-cookie", "")
        assert client.post("/ui/logout", headers=headers).status_code == 403
    same = ui_login(client, API_TOKEN, headers={"origin": "http://testserver"})
    assert same.status_code == 303


def test_everything_from_the_database_is_escaped(client: TestClient, database_file: str) -> None:
    call_sid = add_call(
        database_file,
        summary=EVIL,
        rule=EVIL[:100],
        transcript=[{"role": EVIL, "message": EVIL}, {"role": "agent", "tool_calls": [EVIL]}],
        events=[{"kind": EVIL[:32], "data": {"note": EVIL}}],
        analysis={"x": EVIL},
        error=EVIL,
    )
    auth = basic(API_TOKEN)
    for path in ("/ui/calls", f"/ui/calls/{call_sid}", "/ui/calls/" + "%3Cscript%3E"):
        page = client.get(path, headers=auth)
        assert EVIL not in page.text and "<script>alert" not in page.text, path
    detail = client.get(f"/ui/calls/{call_sid}", headers=auth).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in detail
    assert client.get("/ui/calls/nothing", headers=auth).status_code == 404


def test_next_page_link(client: TestClient, database_file: str) -> None:
    for _ in range(3):
        add_call(database_file)
    page = client.get("/ui/calls", params={"rule": "support"}, headers=basic(API_TOKEN)).text
    assert 'rel="next"' not in page and 'rel="prev"' not in page
    bad = client.get("/ui/calls", params={"after": "<x>"}, headers=basic(API_TOKEN))
    assert bad.status_code == 400 and "<x>" not in bad.text


def test_without_api_token_the_ui_is_disabled(database_file: str) -> None:
    with TestClient(make_app(database_file, token=""), follow_redirects=False) as client:
        for response in (
            client.get("/ui/calls"),
            client.get("/ui/calls", headers=basic("")),
            client.get("/ui/login"),
            client.post("/ui/login", data={"token": ""}),
        ):
            assert response.status_code == 503
            assert "BRIDGE_API_TOKEN is not set" in response.text


# End to end: a real browser signs in through the form.


class DevTools:
    """The least of a Chrome DevTools Protocol client: commands on one page target."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.next_id = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> None:
        """Until `expression` is true in the page (navigations in between are fine)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except RuntimeError as exc:  # the page was navigating
                last = exc
            if last is True:
                return
            time.sleep(0.05)
        text = self.evaluate("document.documentElement.outerHTML")
        raise AssertionError(f"timed out waiting for {expression} ({last!r}); page:\n{text}")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium(profile: Path) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile; yields a DevTools client on its page."""
    assert CHROMIUM is not None
    log = (profile / "chromium.log").open("wb")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile / 'profile'}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        port_file = profile / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "chromium did not start:\n" + (profile / "chromium.log").read_text()
                )
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(target for target in targets if target["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as socket:
            yield DevTools(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it)")
def test_browser_signs_in_lists_and_opens_a_call(tmp_path: Path, database_file: str) -> None:
    call_sid = add_call(database_file)
    with running_server(make_app(database_file)) as base_url, chromium(tmp_path) as browser:
        browser.send("Page.navigate", url=f"{base_url}/ui/calls")
        browser.wait_for("!!document.querySelector('input[name=token]')")
        browser.evaluate(
            f"document.querySelector('input[name=token]').value = {json.dumps(API_TOKEN)};"
            "document.querySelector('button[type=submit]').click(); true"
        )
        browser.wait_for(f"document.body.innerText.includes({json.dumps(SUMMARY)})")
        assert browser.evaluate("location.pathname") == "/ui/calls"
        assert ui.COOKIE not in browser.evaluate("document.cookie")  # HttpOnly
        browser.evaluate(
            f"document.querySelector('a[href=\"/ui/calls/{call_sid}\"]').click(); true"
        )
        browser.wait_for(f"document.body.innerText.includes({json.dumps(SAID)})")
        assert browser.evaluate("location.pathname") == f"/ui/calls/{call_sid}"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic é".encode("latin-1"),
        b"Basic \xff\xfe",
        b"Basic " + base64.b64encode("admin:é".encode("latin-1")),
        b"Basic " + base64.b64encode("admin:pässwörd".encode()),
    ],
    ids=["latin-1-header", "raw-bytes", "latin-1-credentials", "utf-8-password"],
)
def test_a_non_ascii_basic_credential_is_refused_with_401(
    client: TestClient, authorization: bytes
) -> None:
    response = client.get("/ui/calls", headers={b"authorization": authorization})
    assert response.status_code == 401
    assert "Wrong token" in response.text


def proxied_client(database_file: str) -> TestClient:
    """Behind one trusted proxy, so each test request can come from its own address."""
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN), database_url=database_file, trusted_proxy_count=1
    )
    return TestClient(bridge.app.create_app(settings), follow_redirects=False, headers=HTML)


def form_login(client: TestClient, token: str, address: str) -> Any:
    return ui_login(client, token, headers={"x-forwarded-for": address})


def basic_login(client: TestClient, token: str, address: str) -> Any:
    return client.get("/ui/calls", headers={**basic(token), "x-forwarded-for": address})


@pytest.mark.parametrize("attempt", [form_login, basic_login], ids=["form", "basic"])
def test_wrong_tokens_are_throttled_per_client_address(database_file: str, attempt: Any) -> None:
    with proxied_client(database_file) as client:
        for _ in range(ui.LOGIN_FAILURES):
            assert attempt(client, "nope", "203.0.113.9").status_code == 401
        # Then even the right token waits, from that address only.
        refused = attempt(client, API_TOKEN, "203.0.113.9")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= ui.LOGIN_WINDOW_SECONDS
        assert "set-cookie" not in refused.headers and SHOWN not in refused.text
        assert attempt(client, API_TOKEN, "198.51.100.4").status_code in (200, 303)


def test_signing_out_ends_the_session_on_the_server(client: TestClient, database_file: str) -> None:
    add_call(database_file)
    signed_in = ui_login(client, API_TOKEN)
    cookie = signed_in.cookies[ui.COOKIE]
    assert SHOWN in client.get("/ui/calls").text
    client.post("/ui/logout", data={"csrf": csrf_of(client)})
    # A copy of the cookie (another tab, a stolen one) no longer works.
    client.cookies.set(ui.COOKIE, cookie)
    page = client.get("/ui/calls")
    assert SHOWN not in page.text and 'name="token"' in page.text
    # Signing in again gives a new session that works.
    client.cookies.clear()
    ui_login(client, API_TOKEN)
    assert SHOWN in client.get("/ui/calls").text


@pytest.mark.parametrize("key", ["CA%00", "%00"])
def test_a_key_with_nul_is_404(database_url: str, key: str) -> None:
    with TestClient(make_app(database_url), follow_redirects=False) as client:
        response = client.get(f"/ui/calls/{key}", headers=basic(API_TOKEN))
    assert response.status_code == 404
