"""The call log pages (/ui/*) at their edges: other Authorization schemes, which
origins count as our own, oversized login forms, an empty log, unknown calls, and
transcripts and summaries of unusual shapes."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.secret import Secret
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.storage.migrate import upgrade
from bridge.storage.tables import calls
from tests.helpers import ui_login

TOKEN = "ui-pages-test-token"
BASIC = {"authorization": "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()}
LOGIN_FORM = 'type="password" name="token"'


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ui.sqlite3'}"
    asyncio.run(upgrade(url))
    return url


def bridge(database_url: str, **changes: Any) -> TestClient:
    settings = Settings(bridge_api_token=Secret(TOKEN), database_url=database_url, **changes)
    return TestClient(create_app(settings), follow_redirects=False, headers={"accept": "text/html"})


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with bridge(database_url) as client:
        yield client


def add_call(database_url: str, **fields: Any) -> str:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "call_sid": "CA" + uuid.uuid4().hex,
        "direction": "inbound",
        "status": "completed",
        "created_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        **fields,
    }

    async def write() -> None:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await connection.execute(insert(calls).values(values))
        await database.dispose()

    asyncio.run(write())
    return str(values["call_sid"])


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"Token {TOKEN}", "Basic"])
def test_other_authorization_schemes_get_the_login_form(
    client: TestClient, database_url: str, authorization: str
) -> None:
    add_call(database_url, summary="Secret business")
    response = client.get("/ui/calls", headers={"authorization": authorization})
    assert LOGIN_FORM in response.text
    assert "Secret business" not in response.text


def test_an_empty_log_says_so(client: TestClient) -> None:
    response = client.get("/ui/calls", headers=BASIC)
    assert response.status_code == 200
    assert "No calls." in response.text


def test_a_long_summary_is_cut_in_the_list(client: TestClient, database_url: str) -> None:
    add_call(database_url, summary="word " * 100)
    page = client.get("/ui/calls", headers=BASIC).text
    assert "word " * 40 + "…" in page  # the first 200 characters
    assert "word " * 41 not in page


def test_the_call_page_needs_signing_in(client: TestClient, database_url: str) -> None:
    call_sid = add_call(database_url, summary="Secret business")
    response = client.get(f"/ui/calls/{call_sid}")
    assert LOGIN_FORM in response.text
    assert "Secret business" not in response.text


def test_an_unknown_call_is_404(client: TestClient) -> None:
    response = client.get("/ui/calls/CA<nope>", headers=BASIC)
    assert response.status_code == 404
    assert "No call CA&lt;nope&gt; in the call log." in response.text


def test_transcript_turns_of_any_shape_are_shown(client: TestClient, database_url: str) -> None:
    call_sid = add_call(
        database_url,
        transcript=[
            {"role": "agent", "message": "Hello"},
            {"role": "agent", "tool_calls": [{"name": "transfer_to_human"}]},
            "<b>a bare string</b>",
        ],
    )
    page = client.get(f"/ui/calls/{call_sid}", headers=BASIC).text
    assert '<span class="who">Agent</span>' in page and "<p>Hello</p>" in page
    assert '{"tool_calls":[{"name":"transfer_to_human"}]}' in page.replace("&#34;", '"')
    assert "&#34;&lt;b&gt;a bare string&lt;/b&gt;&#34;" in page
    assert "<b>a bare string</b>" not in page


def test_posts_from_the_public_origin_are_same_site(database_url: str) -> None:
    with bridge(database_url, public_base_url="https://bridge.example.com") as client:
        ours = ui_login(client, TOKEN, headers={"origin": "https://bridge.example.com"})
        theirs = ui_login(client, TOKEN, headers={"origin": "https://other.example.com"})
    assert ours.status_code == 303
    assert theirs.status_code == 403


@pytest.mark.parametrize(("trusted", "status"), [(True, 303), (False, 403)])
def test_the_forwarded_host_is_ours_only_when_trusted(
    database_url: str, trusted: bool, status: int
) -> None:
    with bridge(database_url, trust_forwarded_headers=trusted) as client:
        response = ui_login(
            client,
            TOKEN,
            headers={
                "origin": "https://proxy.example.com",
                "x-forwarded-host": "proxy.example.com, internal:8000",
            },
        )
    assert response.status_code == status


def test_an_oversized_login_form_is_refused_even_with_the_right_token(
    client: TestClient,
) -> None:
    client.get("/ui/login")
    csrf = client.cookies.get("callbridge_csrf")
    body = f"token={TOKEN}&csrf={csrf}&padding={'x' * 5000}"
    response = client.post(
        "/ui/login",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403  # the form could not be read, its token neither
    assert "set-cookie" not in response.headers


def test_paging_both_ways_and_the_csv_of_the_filtered_list(
    client: TestClient, database_url: str
) -> None:
    import re

    from bridge.web import ui_console

    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for n in range(ui_console.PAGE_SIZE + 5):
        add_call(
            database_url,
            created_at=start + timedelta(minutes=n),
            outcome="fallback" if n % 2 else "connected",
            from_number=f"+1415555{n:04d}",
            summary="=cmd()" if n == 0 else None,
        )
    first = client.get("/ui/calls", headers=BASIC).text
    assert 'rel="prev"' not in first
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"), headers=BASIC).text
    assert second.count("/ui/calls/CA") == 5
    newer = re.search(r'rel="prev" href="([^"]+)"', second)
    assert newer is not None
    back = client.get(newer.group(1).replace("&amp;", "&"), headers=BASIC).text
    assert back.count("/ui/calls/CA") == ui_console.PAGE_SIZE and 'rel="prev"' not in back

    fallbacks = client.get("/ui/calls", params={"outcome": "fallback"}, headers=BASIC).text
    assert fallbacks.count('<tr class="fallback">') == 27
    export = client.get(
        "/ui/calls.csv", params={"outcome": "agent", "number": "0000"}, headers=BASIC
    )
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.splitlines()
    assert lines[0].startswith("time,call_sid,direction")
    assert len(lines) == 2 and "+14155550000" in lines[1]
    assert ",'=cmd()" in lines[1]  # a spreadsheet formula is defused
    everything = client.get("/ui/calls.csv", headers=BASIC).text.splitlines()
    assert len(everything) == ui_console.PAGE_SIZE + 6


@pytest.mark.parametrize(
    "params",
    [{"outcome": "nope"}, {"from": "2026-13-01"}, {"from": "2026-03-02", "to": "2026-03-01"}],
)
def test_a_bad_filter_is_400_with_the_form(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/ui/calls", params=params, headers=BASIC)
    assert response.status_code == 400
    assert 'role="alert"' in response.text and 'id="f-outcome"' in response.text


def test_the_rules_tester_refuses_bad_numbers(client: TestClient) -> None:
    response = client.get("/ui/rules", params={"from": "12", "to": "+14155550100"}, headers=BASIC)
    assert response.status_code == 400 and "E.164" in response.text
    fine = client.get(
        "/ui/rules",
        params={"from": "anonymous", "to": "+14155550100", "at": "2026-03-08T09:30"},
        headers=BASIC,
    )
    assert fine.status_code == 200 and 'id="result-rule"' in fine.text
