"""`callbridge serve` and the Procfile run uvicorn with the same limits, and uvicorn's
own proxy-header handling (leftmost X-Forwarded-For, written by the client) is off."""

from __future__ import annotations

import shlex
from pathlib import Path

from bridge.cli.serve import UVICORN_OPTIONS

ROOT = Path(__file__).parent.parent


def procfile_web() -> list[str]:
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web":
            return shlex.split(command)
    raise AssertionError("the Procfile has no web process")


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def test_the_procfile_runs_uvicorn_with_the_limits_of_callbridge_serve() -> None:
    words = procfile_web()
    for option, value in UVICORN_OPTIONS.items():
        if value is False:
            assert flag(option).replace("--", "--no-", 1) in words, option
        elif value is True:
            assert flag(option) in words, option
        else:
            assert words[words.index(flag(option)) + 1] == str(value), option


def test_uvicorn_never_decides_the_client_address() -> None:
    words = procfile_web()
    assert not any(word.startswith("--forwarded-allow-ips") for word in words)
    assert "--proxy-headers" not in words and UVICORN_OPTIONS["proxy_headers"] is False


def test_on_heroku_the_router_is_the_one_trusted_proxy() -> None:
    # Its router appends the client's address to X-Forwarded-For; app.json sets it too.
    assert "TRUSTED_PROXY_COUNT=${TRUSTED_PROXY_COUNT:-1}" in procfile_web()
