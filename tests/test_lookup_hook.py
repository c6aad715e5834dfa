"""Which lookup a call gets, and its share of the call's deadline."""

from __future__ import annotations

import httpx
import pytest

from bridge.lookup.hook import LookupTarget, lookup_budget, lookups_for
from bridge.routing.rules import RuleLookup
from bridge.secret import Secret

TRANSPORT = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
SECRETS = (Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),)
RULE_LOOKUP = RuleLookup(url="https://rule.example/l", timeout=0.5)


@pytest.mark.parametrize(
    ("timeout", "deadline", "budget"),
    [
        (1.5, 5.0, 1.5),  # the usual: its own timeout
        (10.0, 5.0, 4.0),  # register-call keeps a second
        (1.5, 1.0, 0.5),  # a short deadline: half of it at most
        (0.2, 1.0, 0.2),
        (3.0, 0.0, 0.0),
    ],
)
def test_budget(timeout: float, deadline: float, budget: float) -> None:
    assert lookup_budget(timeout, deadline) == pytest.approx(budget)


def test_nothing_configured_is_no_lookups_at_all() -> None:
    assert (
        lookups_for(
            url="", timeout=1.5, secrets=SECRETS, rule_lookups=[None, False], transport=TRANSPORT
        )
        is None
    )


def test_targets() -> None:
    lookups = lookups_for(
        url="https://global.example/l",
        timeout=1.5,
        secrets=SECRETS,
        rule_lookups=[],
        transport=TRANSPORT,
    )
    assert lookups is not None
    assert lookups.target(None) == LookupTarget("https://global.example/l", 1.5)
    assert lookups.target(False) is None
    assert lookups.target(RULE_LOOKUP) == LookupTarget("https://rule.example/l", 0.5)
    assert lookups.target(RuleLookup(url="https://rule.example/l")) == LookupTarget(
        "https://rule.example/l", 1.5
    )


def test_a_rules_lookup_alone_turns_lookups_on() -> None:
    lookups = lookups_for(
        url="", timeout=2.0, secrets=SECRETS, rule_lookups=[None, RULE_LOOKUP], transport=TRANSPORT
    )
    assert lookups is not None
    assert lookups.target(None) is None
    assert lookups.target(RULE_LOOKUP) == LookupTarget("https://rule.example/l", 0.5)
