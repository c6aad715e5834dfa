"""The import-linter contracts name every part of the bridge, so none escapes them."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"cli", "doctor", "sandbox", "simulate", "campaign", "fakes"}


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return parser


def listed(value: str) -> set[str]:
    return {name.strip() for line in value.splitlines() for name in line.split("|") if name.strip()}


def parts_of_bridge() -> set[str]:
    names = set()
    for path in (ROOT / "bridge").iterdir():
        if path.name.startswith("_") or path.name == "py.typed":
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            names.add(path.name)
        elif path.suffix == ".py":
            names.add(path.stem)
    return names


def test_every_server_module_is_in_a_layer() -> None:
    layers = listed(contracts()["importlinter:contract:layers"]["layers"])
    server = parts_of_bridge() - TOOLS
    missing = {name for name in server if f"bridge.{name}" not in layers}
    assert not missing, f"add to the layers contract in .importlinter: {sorted(missing)}"


def test_every_tool_is_forbidden_to_the_server() -> None:
    forbidden = listed(contracts()["importlinter:contract:tools"]["forbidden_modules"])
    assert {f"bridge.{name}" for name in TOOLS} <= forbidden
    assert parts_of_bridge() >= TOOLS, "a tool named here no longer exists"


def test_only_web_app_and_tools_may_import_starlette() -> None:
    sources = listed(contracts()["importlinter:contract:starlette"]["source_modules"])
    allowed = {"web", "app"} | TOOLS
    missing = {name for name in parts_of_bridge() - allowed if f"bridge.{name}" not in sources}
    assert not missing, f"add to the starlette contract in .importlinter: {sorted(missing)}"
