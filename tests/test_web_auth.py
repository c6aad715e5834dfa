"""bridge.web.auth: the one constant-time token check and the one guard."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bridge.web.auth import guarded, token_equals, token_matches


@pytest.mark.parametrize(
    ("given", "token", "equal"),
    [("s3cret", "s3cret", True), ("s3cre", "s3cret", False), ("", "", False), ("x", "", False)],
)
def test_token_equals(given: str, token: str, equal: bool) -> None:
    assert token_equals(given, token) is equal


@pytest.mark.parametrize(
    ("authorization", "matches"),
    [
        ("Bearer s3cret", True),
        ("bearer  s3cret ", True),
        ("Bearer wrong", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        (None, False),
    ],
)
def test_token_matches_a_bearer_header(authorization: str | None, matches: bool) -> None:
    assert token_matches(authorization, "s3cret") is matches


def test_the_guard_answers_for_the_endpoint_when_it_refuses() -> None:
    def refusal(request: Request) -> Response | None:
        if request.headers.get("x-pass") == "yes":
            return None
        return PlainTextResponse("no", status_code=401)

    @guarded(refusal)
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("in")

    app = Starlette(routes=[Route("/", endpoint)])
    with TestClient(app) as client:
        assert (client.get("/").status_code, client.get("/").text) == (401, "no")
        assert client.get("/", headers={"x-pass": "yes"}).text == "in"
    assert endpoint.__name__ == "endpoint"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"x-pass": "yes"}, 200), ({}, 401)],
    ids=["answered", "refused"],
)
def test_guarded_answers_are_never_cached(headers: dict[str, str], status: int) -> None:
    # Call records and results are for the token holder only, not a shared cache.
    def refusal(request: Request) -> Response | None:
        return None if request.headers.get("x-pass") == "yes" else JSONResponse({}, 401)

    @guarded(refusal)
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"calls": []})

    app = Starlette(routes=[Route("/calls", endpoint)])
    with TestClient(app) as client:
        response = client.get("/calls", headers=headers)
    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"
