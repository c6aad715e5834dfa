"""requirements.txt, what Heroku installs, pins a version of every dependency in
pyproject.toml that its bound allows, and then installs the project itself.

A bound raised in pyproject.toml without `.ci/lock` fails here."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def lock_lines() -> list[str]:
    """requirements.txt without comments and blank lines."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in lock_lines():
        if line == ".":
            continue
        name, _, version = line.partition("==")
        pinned[canonicalize_name(name)] = Version(version)
    return pinned


def runtime_dependencies() -> list[Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    return [Requirement(line) for line in project["dependencies"]]


@pytest.mark.parametrize("requirement", runtime_dependencies(), ids=str)
def test_every_dependency_is_pinned_within_its_bound(requirement: Requirement) -> None:
    pinned = pins().get(canonicalize_name(requirement.name))
    assert pinned is not None, f"{requirement.name} is not in requirements.txt: run .ci/lock"
    assert requirement.specifier.contains(pinned, prereleases=True), (
        f"requirements.txt pins {requirement.name}=={pinned}, outside pyproject.toml's "
        f"{requirement}: run .ci/lock"
    )


def test_every_line_is_an_exact_pin_and_the_project_comes_last() -> None:
    lines = lock_lines()
    assert lines[-1] == ".", "requirements.txt must still install the project itself"
    loose = [line for line in lines[:-1] if "==" not in line or line.startswith("-")]
    assert loose == []
    assert len(pins()) == len(lines) - 1  # no package pinned twice
