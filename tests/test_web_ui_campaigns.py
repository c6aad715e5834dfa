"""The console's campaign and do-not-call pages: upload, preview, start (once), control,
recipients, results through the session, the DNC list; CSRF and sign-in on each."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import bridge.app
from bridge.secret import Secret
from tests.helpers import API_TOKEN, fresh_sqlite, make_settings, ui_login, without_campaign_worker

HTML = {"accept": "text/html"}
GOOD_CSV = (
    "phone,first_name,secret__pin\n"
    "+14155550123,Ada,4321\n"
    "not-a-number,Bob,1\n"
    "+14155550124,Cy,2\n"
    "+1 415 555 0123,Ada again,3\n"
)
BAD_CSV = "phone,name\nnope,A\n12,B\n"
OPTIONS = {
    "name": "Spring reminders",
    "open": "00:00",
    "close": "23:59",
    **{f"day_{day}": "1" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    "allow_outside": "1",
    "rate": "1",
    "max_in_flight": "2",
    "retry_attempts": "0",
    "retry_delay": "0",
}


def make_app(database_url: str) -> Starlette:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN), database_url=database_url, **without_campaign_worker()
    )
    return bridge.app.create_app(settings)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    fresh_sqlite(url)
    with TestClient(make_app(url), follow_redirects=False, headers=HTML) as client:
        assert ui_login(client, API_TOKEN).status_code == 303
        yield client


def csrf(client: TestClient) -> str:
    return client.cookies.get("callbridge_csrf") or ""


def upload(client: TestClient, data: str, **changes: str) -> Any:
    fields = {**OPTIONS, "csrf": csrf(client), **changes}
    return client.post(
        "/ui/campaigns/new", data=fields, files={"file": ("contacts.csv", data, "text/csv")}
    )


def sealed_of(text: str) -> str:
    found = re.search(r'name="upload" value="([^"]+)"', text)
    assert found, "no Start form"
    return found.group(1)


def start(client: TestClient, sealed: str) -> str:
    response = client.post("/ui/campaigns/start", data={"csrf": csrf(client), "upload": sealed})
    assert response.status_code == 303
    location: str = response.headers["location"]
    return location


def campaign_ids(client: TestClient) -> list[str]:
    listed = client.get("/campaigns", headers={"authorization": f"Bearer {API_TOKEN}"})
    return [item["id"] for item in listed.json()["campaigns"]]


def test_the_preview_shows_rows_zones_bad_lines_and_duplicates(client: TestClient) -> None:
    response = upload(client, GOOD_CSV)
    assert response.status_code == 200
    page = response.text
    assert "America/Los_Angeles" in page
    assert "Ada" in page and "first_name" in page
    assert "<td>3</td><td>not-a-number</td>" in page  # the invalid row, by its line
    assert "duplicate of line 2" in page
    assert "4321" not in page and "***" in page  # secret__ values are never shown
    assert campaign_ids(client) == []  # nothing is created by a preview


def test_a_file_without_a_valid_row_is_a_clear_error(client: TestClient) -> None:
    response = upload(client, BAD_CSV)
    assert response.status_code == 422
    assert "No valid recipient" in response.text
    assert 'name="upload"' not in response.text


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"open": "07:00", "allow_outside": ""}, "08:00-21:00"),
        ({"rate": "0"}, "Rate: Input should be greater than 0"),
        ({"name": ""}, "Name:"),
        ({"timezone": "Mars/Base"}, "Time zone:"),
    ],
)
def test_bad_options_name_the_field(
    client: TestClient, changes: dict[str, str], shown: str
) -> None:
    response = upload(client, GOOD_CSV, **changes)
    assert response.status_code == 400
    assert shown in response.text


def test_a_bad_file_names_the_line(client: TestClient) -> None:
    response = upload(client, "name,first\nA,B\n")
    assert response.status_code == 400
    assert "CSV file:" in response.text and "phone" in response.text


def test_start_twice_makes_one_campaign(client: TestClient) -> None:
    sealed = sealed_of(upload(client, GOOD_CSV).text)
    first = start(client, sealed)
    second = start(client, sealed)
    assert first == second
    assert len(campaign_ids(client)) == 1
    page = client.get(first)
    assert page.status_code == 200
    assert "Spring reminders" in page.text
    assert 'data-count="pending">2<' in page.text
    assert "00:00-23:59" in page.text
    assert "4321" not in page.text


def test_a_tampered_or_foreign_upload_is_refused(client: TestClient) -> None:
    response = client.post("/ui/campaigns/start", data={"csrf": csrf(client), "upload": "x" * 80})
    assert response.status_code == 400
    assert campaign_ids(client) == []


@pytest.mark.parametrize("path", ["/ui/campaigns/new", "/ui/campaigns/start", "/ui/dnc/add"])
def test_posts_without_the_csrf_token_are_refused(client: TestClient, path: str) -> None:
    if path == "/ui/campaigns/new":
        response = client.post(
            path, data={**OPTIONS}, files={"file": ("c.csv", GOOD_CSV, "text/csv")}
        )
    else:
        response = client.post(path, data={"number": "+14155550199", "upload": "x"})
    assert response.status_code == 403
    assert campaign_ids(client) == []


def test_pause_resume_cancel_and_a_bad_transition(client: TestClient) -> None:
    where = start(client, sealed_of(upload(client, GOOD_CSV).text))
    token = {"csrf": csrf(client)}
    assert client.post(where + "/pause", data=token).status_code == 303
    assert '<strong data-field="state">paused<' in client.get(where).text
    refused = client.post(where + "/pause", data=token)
    assert refused.status_code == 409
    assert "paused" in refused.text and 'role="alert"' in refused.text
    assert client.post(where + "/resume", data=token).status_code == 303
    assert client.post(where + "/cancel", data=token).status_code == 303
    assert '<strong data-field="state">cancelled<' in client.get(where).text
    assert client.post(where + "/resume", data=token).status_code == 409
    assert client.post(where + "/pause", data={"csrf": "wrong" * 5}).status_code == 403


def test_results_csv_and_progress_through_the_session(client: TestClient) -> None:
    where = start(client, sealed_of(upload(client, GOOD_CSV).text))
    results = client.get(where + "/results.csv")
    assert results.status_code == 200
    assert results.headers["content-type"].startswith("text/csv")
    lines = results.text.splitlines()
    assert lines[0].startswith("line,id,phone,state")
    assert len(lines) == 3
    live = client.get(where + "/progress.json").json()
    assert live["campaigns"][0]["total"] == 2 and live["campaigns"][0]["done"] == 0
    running = client.get("/ui/campaigns/running.json").json()
    assert [item["id"] for item in running["campaigns"]] == [where.rsplit("/", 1)[1]]
    assert "Spring reminders" in client.get("/ui/dashboard").text
    assert "Spring reminders" in client.get("/ui/campaigns").text


def test_recipients_filter_by_state(client: TestClient) -> None:
    where = start(client, sealed_of(upload(client, GOOD_CSV).text))
    assert client.post(where + "/cancel", data={"csrf": csrf(client)}).status_code == 303
    assert "+14155550124" in client.get(where + "?state=cancelled").text
    assert "+14155550124" not in client.get(where + "?state=completed").text
    assert client.get(where + "?state=nope").status_code == 400
    assert client.get("/ui/campaigns/cmp_nope").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/ui/campaigns", "/ui/campaigns/new", "/ui/dnc", "/ui/campaigns/running.json"],
)
def test_without_a_session_the_login_form_is_shown(tmp_path: Path, path: str) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    fresh_sqlite(url)
    with TestClient(make_app(url), follow_redirects=False, headers=HTML) as client:
        response = client.get(path)
        assert 'type="password" name="token"' in response.text
        assert client.get(path, headers={"accept": "*/*"}).status_code == 401


def test_dnc_add_search_remove(client: TestClient) -> None:
    token = csrf(client)
    added = client.post(
        "/ui/dnc/add", data={"csrf": token, "number": "+1 (415) 555-0199", "reason": "asked"}
    )
    assert added.status_code == 303
    page = client.get("/ui/dnc").text
    assert "+14155550199" in page and "asked" in page
    assert "<td>asked</td><td>console</td>" in page  # who listed it
    assert "+14155550199" in client.get("/ui/dnc?q=%2B14155550199").text
    assert "is not on the list" in client.get("/ui/dnc?q=%2B14155550100").text
    bad = client.post("/ui/dnc/add", data={"csrf": token, "number": "12", "reason": ""})
    assert bad.status_code == 400 and "number:" in bad.text
    removed = client.post("/ui/dnc/remove", data={"csrf": token, "number": "+14155550199"})
    assert removed.status_code == 303
    assert "The list is empty" in client.get("/ui/dnc").text
    again = client.post("/ui/dnc/remove", data={"csrf": token, "number": "+14155550199"})
    assert again.status_code == 404


def test_dnc_import_reports_bad_rows_by_line(client: TestClient) -> None:
    data = "number,reason\n+14155550150,moved\nwhat,x\n+14155550151,\n"
    response = client.post(
        "/ui/dnc/import",
        data={"csrf": csrf(client)},
        files={"file": ("dnc.csv", data, "text/csv")},
    )
    assert response.status_code == 200
    assert "2 added" in response.text and "1 invalid" in response.text
    assert "<td>3</td><td>what</td>" in response.text
    bad = client.post(
        "/ui/dnc/import", data={"csrf": csrf(client)}, files={"file": ("d.csv", "a,b\n1,2\n")}
    )
    assert bad.status_code == 400 and "file:" in bad.text


def test_listing_a_number_stops_its_pending_campaign_call(client: TestClient) -> None:
    where = start(client, sealed_of(upload(client, GOOD_CSV).text))
    client.post("/ui/dnc/add", data={"csrf": csrf(client), "number": "+14155550124"})
    assert 'data-count="do_not_call">1<' in client.get(where).text


def test_the_dnc_list_pages_on_and_back(client: TestClient) -> None:
    numbers = [f"+1415555{n:04d}" for n in range(55)]
    data = "number,reason\n" + "".join(f"{number},asked\n" for number in numbers)
    client.post("/ui/dnc/import", data={"csrf": csrf(client)}, files={"file": ("dnc.csv", data)})
    first = client.get("/ui/dnc").text
    assert first.count("<td>asked</td>") == 50 and "First page" not in first
    (next_href,) = re.findall(r'<a href="([^"]+)" rel="next">Next numbers</a>', first)
    second = client.get(html.unescape(next_href)).text
    assert second.count("<td>asked</td>") == 5 and "Next numbers" not in second
    assert '<a href="/ui/dnc">First page</a>' in second
