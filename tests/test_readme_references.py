"""What the README points at exists: module paths, folders of its Layout section,
and the checks its test command promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def module_paths() -> list[str]:
    """Every `bridge/....py` or `twiml/....py` the README names."""
    return sorted(set(re.findall(r"\b(?:bridge|twiml)/[\w/]*\.py\b", README)))


def layout_folders() -> list[str]:
    """The folders of the Layout section's tree, as paths from the repository root."""
    section = README.split("## Layout", 1)[1]
    tree = re.search(r"```\n(.*?)```", section, re.S)
    assert tree is not None
    folders = []
    parent = ""
    for line in tree.group(1).splitlines():
        name = line.split()[0]
        if line.startswith("  "):
            folders.append(parent + name)
        else:
            parent = name
            folders.append(name)
    return folders


def test_module_paths_exist() -> None:
    paths = module_paths()
    assert paths, "the README's Layout section names the modules a call passes through"
    missing = [path for path in paths if not (ROOT / path).is_file()]
    assert missing == [], f"README.md names modules that do not exist: {missing}"


@pytest.mark.parametrize("folder", layout_folders())
def test_layout_folders_exist(folder: str) -> None:
    assert (ROOT / folder).is_dir(), f"README.md's Layout lists {folder}, which does not exist"


def test_every_package_is_in_the_layout() -> None:
    packages = {f"bridge/{path.parent.name}/" for path in (ROOT / "bridge").glob("*/__init__.py")}
    assert packages <= set(layout_folders())


def test_the_test_command_runs_every_check() -> None:
    command = README.split("<!-- test-command -->", 1)[1].splitlines()[2]
    steps = [step.strip() for step in command.split("&&")]
    for step in ("ruff check .", "ruff format --check .", "mypy", "lint-imports"):
        assert step in steps
    last = steps[-1].split()
    assert last[0] == "pytest" and "--cov" in last  # the gate: fail_under in pyproject.toml


def test_the_command_is_callbridge() -> None:
    """`bridge` alone is also iproute2's network tool: the README never runs it."""
    assert re.findall(r"`bridge [a-z]", README.replace("\n", " ")) == []
    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.S))
    assert re.findall(r"(?:^|\$ |&& |heroku run )bridge ", blocks, re.M) == []
