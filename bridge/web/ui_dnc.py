"""The console's do-not-call page (/ui/dnc), behind sign-in: the list (search by
number, cursor pages), adding one number with a reason, removing one, importing a CSV.
The same services as the API (bridge.web.dnc_api, bridge.dnc): adding a number also
stops its waiting campaign calls.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bridge.dnc import entries, imports
from bridge.dnc.entries import BadCursor, BadNumber
from bridge.elevenlabs.client_data import field_errors
from bridge.web import bodies, campaigns_api, dnc_api
from bridge.web.bodies import BadBody
from bridge.web.campaigns_api import Invalid
from bridge.web.ui import refusal, signed_in
from bridge.web.ui_render import HEADERS, message, render

PAGE_SIZE = 50
MAX_FORM_BYTES = 4096
# Larger lists go through `POST /dnc/import` or `callbridge dnc import`.
MAX_IMPORT_BYTES = 2 * 1024 * 1024
SHOWN_PROBLEMS = 100


async def _dnc_page(
    request: Request,
    *,
    error: str = "",
    done: str = "",
    problems: list[dict[str, Any]] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    params = request.query_params if request.method == "GET" else {}
    search = params.get("q", "").strip()
    cursor = params.get("cursor")
    engine = await request.app.state.database.engine()
    listed: list[dict[str, Any]] = []
    next_href = None
    async with engine.connect() as connection:
        if search:
            try:
                found = await entries.entry(connection, entries.normalized(search))
            except BadNumber as bad:
                found, error, status = None, f"Search: {bad}", 400
            listed = [found] if found else []
        else:
            try:
                page = await entries.page(connection, limit=PAGE_SIZE, cursor=cursor)
            except BadCursor as bad:
                page, error, status = await entries.page(connection, limit=PAGE_SIZE), str(bad), 400
            listed = page.entries
            if page.next_cursor:
                next_href = "/ui/dnc?" + urlencode({"cursor": page.next_cursor})
    return render(
        request,
        "dnc.html",
        {
            "title": "Do-not-call list",
            "signed_in": True,
            "entries": listed,
            "search": search,
            "next_href": next_href,
            "first_href": "/ui/dnc" if cursor or search else None,
            "error": error,
            "done": done,
            "problems": problems or [],
            "form": form or {"number": "", "reason": ""},
            "max_import_mb": MAX_IMPORT_BYTES // (1024 * 1024),
        },
        status,
    )


@signed_in
async def dnc_page(request: Request) -> Response:
    return await _dnc_page(request, done=_done_text(request.query_params.get("done", "")))


def _done_text(code: str) -> str:
    return {"added": "Added.", "listed": "Already on the list.", "removed": "Removed."}.get(
        code, ""
    )


async def _small_form(request: Request) -> dict[str, str] | Response:
    try:
        raw = await bodies.read(request, MAX_FORM_BYTES)
    except BadBody as bad:
        return message(request, "Refused", bad.message, bad.status, signed_in=True)
    form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), True).items()}
    refused = refusal(request, form)
    return form if refused is None else refused


def _back(done: str) -> Response:
    return RedirectResponse(f"/ui/dnc?done={done}", status_code=303, headers=HEADERS)


@signed_in
async def add(request: Request) -> Response:
    form = await _small_form(request)
    if isinstance(form, Response):
        return form
    given = {"number": form.get("number", "").strip(), "reason": form.get("reason", "").strip()}
    try:
        wanted = dnc_api.NewEntry.model_validate(
            {"number": given["number"], "reason": given["reason"] or None}
        )
    except ValidationError as error:
        text = "; ".join(f"{p['field']}: {p['problem']}" for p in field_errors(error))
        return await _dnc_page(request, error=text, form=given, status=400)
    engine = await request.app.state.database.engine()
    async with engine.begin() as connection:
        added = await entries.add(
            connection, wanted.number, reason=wanted.reason, source="console", now=datetime.now(UTC)
        )
        await dnc_api.recipients_stopped(
            connection, dnc_api.outbox(request), added.stopped_recipients
        )
    dnc_api.log(
        "dnc_added" if added.added else "dnc_listed_already", added.number, stopped=added.stopped
    )
    return _back("added" if added.added else "listed")


@signed_in
async def remove(request: Request) -> Response:
    form = await _small_form(request)
    if isinstance(form, Response):
        return form
    try:
        number = entries.normalized(form.get("number", ""))
    except BadNumber as bad:
        return await _dnc_page(request, error=f"number: {bad}", status=400)
    engine = await request.app.state.database.engine()
    async with engine.begin() as connection:
        removed = await entries.remove(connection, number)
    if not removed:
        return await _dnc_page(request, error=f"{number} is not on the list.", status=404)
    dnc_api.log("dnc_removed", number)
    return _back("removed")


@signed_in
async def import_csv(request: Request) -> Response:
    try:
        fields, data = await campaigns_api.read_upload(request, MAX_IMPORT_BYTES + 64 * 1024)
    except BadBody as bad:
        return message(request, "Upload refused", bad.message, bad.status, signed_in=True)
    except Invalid:
        return await _dnc_page(request, error="file: required (a CSV file)", status=400)
    refused = refusal(request, fields)
    if refused is not None:
        return refused
    try:
        parsed = await asyncio.to_thread(imports.parse, data)
    except imports.BadFile as bad:
        return await _dnc_page(request, error=f"file: {bad}", status=400)
    engine = await request.app.state.database.engine()
    async with engine.begin() as connection:
        done = await entries.add_many(
            connection,
            [(number, reason) for _, number, reason in parsed.rows],
            source="import",
            now=datetime.now(UTC),
        )
        await dnc_api.recipients_stopped(
            connection, dnc_api.outbox(request), done.stopped_recipients
        )
    text = (
        f"Imported: {done.added} added, {done.already_listed} already listed, "
        f"{len(parsed.problems)} invalid, {done.stopped} waiting campaign calls stopped."
    )
    return await _dnc_page(request, done=text, problems=parsed.problems[:SHOWN_PROBLEMS])


routes = [
    Route("/ui/dnc", dnc_page, methods=["GET"]),
    Route("/ui/dnc/add", add, methods=["POST"]),
    Route("/ui/dnc/remove", remove, methods=["POST"]),
    Route("/ui/dnc/import", import_csv, methods=["POST"]),
]
