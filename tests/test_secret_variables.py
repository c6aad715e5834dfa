"""`secret__` dynamic variables: one prefix, and every place that hides them agrees."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.answer.actions import redact
from bridge.calllog.post_call import strip_secret_variables
from bridge.outbound.sealing import Sealer
from bridge.sandbox.report import variables
from bridge.secret import SECRET_PREFIX, is_secret_variable

NAMES = {"secret__pin": True, "secret__": True, "name": False, "my_secret__x": False}


@pytest.mark.parametrize(("name", "secret"), NAMES.items())
def test_is_secret_variable(name: str, secret: bool) -> None:
    assert SECRET_PREFIX == "secret__"
    assert is_secret_variable(name) is secret


def test_every_place_hides_the_same_variables() -> None:
    dynamic = {name: f"value-of-{name}" for name in NAMES}
    hidden = {name for name, secret in NAMES.items() if secret}
    data: dict[str, Any] = {"dynamic_variables": dynamic}

    printed = redact({"conversation_initiation_client_data": data})
    shown = printed["conversation_initiation_client_data"]["dynamic_variables"]
    assert {name for name, value in shown.items() if value == "***"} == hidden

    stored = strip_secret_variables({"data": data})
    assert set(dynamic) - set(stored["data"]["dynamic_variables"]) == hidden

    sealed = Sealer("a-long-enough-test-secret").seal(data)
    assert sealed is not None
    changed = {
        name for name, value in sealed["dynamic_variables"].items() if value != dynamic[name]
    }
    assert changed == hidden

    line = variables(dynamic)
    assert {name for name in NAMES if f"value-of-{name}" not in line} == hidden
