"""Which rule a call matches: the example routing file, schedules, DST, fallbacks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.call import Call
from bridge.routing import RoutingTable, load_routes, parse_routes
from bridge.routing.rules import (
    AgentAction,
    ForwardAction,
    RejectAction,
    SayAction,
    VoicemailAction,
)
from bridge.routing.schedule import Schedule
from bridge.routing.table import DEFAULT_FALLBACK, GLOBAL_FALLBACK_STEP

EXAMPLE = Path(__file__).parent / "data" / "routes_example.toml"

# Numbers used in routes_example.toml.
MAIN = "+12125550123"  # the main line: agent in office hours, voicemail otherwise
SPANISH = "+13055550142"  # the Spanish line
NIGHT = "+12125550177"  # the weekend night line
OTHER = "+12125550188"  # a number no rule names: front desk
BLOCKED = "+12025550199"
BLOCKED_UK = "+447911123456"
PREMIUM = "+19005550123"
VIP = "+12125550100"
VIP_UK = "+442079460123"
CALLER = "+16175550123"  # an ordinary US caller (Boston)
CALIFORNIAN = "+14155550123"
UK_LANDLINE = "+442079460999"
UK_MOBILE = "+447812345678"
IRISH = "+35315550123"
FRENCH = "+33612345678"


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return load_routes(EXAMPLE)


def twilio_call(caller: str, called: str, geo: dict[str, str] | None = None) -> Call:
    """A call as the inbound webhook builds it from Twilio's form."""
    form = [
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", caller),
        ("To", called),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        *(geo or {}).items(),
    ]
    return Call.from_form(form)


def at(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, "give every time in the table an offset"
    return moment


# (caller, called, time with offset, Twilio geo fields) -> rule name.
# Times are written in the local offset of the place that matters for the row
# (New York: -05:00 EST / -04:00 EDT; London: +00:00 GMT / +01:00 BST), or in UTC (Z)
# where the point is which local time a UTC instant becomes.
MATCHES = [
    # --- first match wins ----------------------------------------------------------
    pytest.param(CALLER, MAIN, "2026-03-09T10:00-04:00", {}, "business-hours", id="main-line"),
    pytest.param(BLOCKED, MAIN, "2026-03-09T10:00-04:00", {}, "blocklist", id="blocked-caller"),
    pytest.param(BLOCKED_UK, MAIN, "2026-03-09T10:00-04:00", {}, "blocklist", id="blocked-uk"),
    pytest.param(
        BLOCKED, SPANISH, "2026-03-09T10:00-04:00", {}, "blocklist", id="blocked-beats-spanish"
    ),
    pytest.param(
        BLOCKED,
        MAIN,
        "2026-03-09T10:00-04:00",
        {"FromState": "CA"},
        "blocklist",
        id="blocked-beats-geo",
    ),
    pytest.param(PREMIUM, MAIN, "2026-03-09T10:00-04:00", {}, "blocked-prefixes", id="prefix-1900"),
    pytest.param(
        "+19765550123", OTHER, "2026-03-09T10:00-04:00", {}, "blocked-prefixes", id="prefix-1976"
    ),
    pytest.param(
        "+19075550123",
        MAIN,
        "2026-03-09T10:00-04:00",
        {},
        "business-hours",
        id="prefix-is-not-substring",
    ),
    pytest.param(VIP, MAIN, "2026-03-09T10:00-04:00", {}, "vip", id="vip-in-hours"),
    pytest.param(VIP, MAIN, "2026-03-08T03:30-04:00", {}, "vip", id="vip-at-night"),
    pytest.param(VIP, MAIN, "2026-12-25T10:00-05:00", {}, "vip", id="vip-on-holiday"),
    pytest.param(VIP, SPANISH, "2026-03-09T10:00-04:00", {}, "vip", id="vip-beats-spanish"),
    pytest.param(VIP_UK, MAIN, "2026-03-09T10:00+00:00", {}, "vip", id="vip-beats-uk"),
    pytest.param(
        VIP, MAIN, "2026-03-09T10:00-04:00", {"FromState": "CA"}, "vip", id="vip-beats-geo"
    ),
    pytest.param(CALLER, SPANISH, "2026-03-09T10:00-04:00", {}, "spanish-line", id="spanish"),
    pytest.param(CALLER, SPANISH, "2026-03-08T03:00-04:00", {}, "spanish-line", id="spanish-night"),
    pytest.param(
        UK_LANDLINE,
        SPANISH,
        "2026-03-09T10:00+00:00",
        {},
        "spanish-line",
        id="spanish-beats-uk",
    ),
    pytest.param(
        CALLER,
        SPANISH,
        "2026-03-09T10:00-04:00",
        {"FromState": "CA"},
        "spanish-line",
        id="spanish-beats-geo",
    ),
    pytest.param(CALLER, OTHER, "2026-03-09T10:00-04:00", {}, "front-desk", id="other-number"),
    pytest.param(CALLER, OTHER, "2026-03-08T03:00-04:00", {}, "front-desk", id="other-at-night"),
    # --- anonymous callers, in every form Twilio uses ----------------------------------
    pytest.param("anonymous", MAIN, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-word"),
    pytest.param("Anonymous", MAIN, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-capital"),
    pytest.param("+266696687", MAIN, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-keypad"),
    pytest.param("", MAIN, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-empty-from"),
    pytest.param(
        "restricted", MAIN, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-restricted"
    ),
    pytest.param(
        "anonymous", SPANISH, "2026-03-09T10:00-04:00", {}, "anonymous", id="anon-spanish"
    ),
    pytest.param(
        "anonymous",
        MAIN,
        "2026-03-09T10:00-04:00",
        {"FromState": "CA"},
        "anonymous",
        id="anon-with-geo",
    ),
    # --- caller countries, while London is open -----------------------------------------
    pytest.param(UK_LANDLINE, MAIN, "2026-03-09T14:30+00:00", {}, "uk-ireland", id="uk-landline"),
    pytest.param(UK_MOBILE, MAIN, "2026-03-09T14:30+00:00", {}, "uk-ireland", id="uk-mobile"),
    pytest.param(IRISH, MAIN, "2026-03-09T14:30+00:00", {}, "uk-ireland", id="irish"),
    pytest.param(IRISH, OTHER, "2026-03-09T14:30+00:00", {}, "uk-ireland", id="irish-other-number"),
    pytest.param(FRENCH, MAIN, "2026-03-09T14:30+00:00", {}, "business-hours", id="french"),
    pytest.param(
        UK_LANDLINE,
        MAIN,
        "2026-03-09T18:00+00:00",
        {},
        "business-hours",
        id="uk-after-london-closes",
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-07T16:00+00:00", {}, "business-hours", id="uk-on-saturday"
    ),
    # --- London across its DST change (2026-03-29, 01:00 GMT -> 02:00 BST) ------------
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-27T08:30Z", {}, "after-hours", id="london-gmt-0830-closed"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-30T08:30Z", {}, "uk-ireland", id="london-bst-0930-open"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-30T07:59Z", {}, "after-hours", id="london-bst-0859-closed"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-30T08:00Z", {}, "uk-ireland", id="london-bst-0900-opens"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-27T17:15Z", {}, "uk-ireland", id="london-gmt-1715-open"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-30T16:29:59Z", {}, "uk-ireland", id="london-bst-172959-open"
    ),
    pytest.param(
        UK_LANDLINE, MAIN, "2026-03-30T16:30Z", {}, "business-hours", id="london-bst-1730-closes"
    ),
    # --- geo fields ---------------------------------------------------------------------
    pytest.param(
        CALIFORNIAN,
        MAIN,
        "2026-03-09T10:00-04:00",
        {"FromState": "CA"},
        "california",
        id="geo-ca",
    ),
    pytest.param(
        CALLER,
        OTHER,
        "2026-03-08T03:00-04:00",
        {"FromState": "ca"},
        "california",
        id="geo-case-insensitive",
    ),
    pytest.param(
        CALLER,
        MAIN,
        "2026-03-09T10:00-04:00",
        {"FromState": "NY"},
        "business-hours",
        id="geo-other-state",
    ),
    pytest.param(
        CALIFORNIAN,
        MAIN,
        "2026-03-09T10:00-04:00",
        {},
        "business-hours",
        id="geo-number-alone-is-not-enough",
    ),
    pytest.param(
        CALLER,
        MAIN,
        "2026-03-09T10:00-04:00",
        {"ToState": "CA"},
        "business-hours",
        id="geo-wrong-field",
    ),
    # --- business hours, open inclusive and close exclusive ------------------------------
    pytest.param(CALLER, MAIN, "2026-03-09T08:59:59-04:00", {}, "after-hours", id="mon-085959"),
    pytest.param(CALLER, MAIN, "2026-03-09T09:00-04:00", {}, "business-hours", id="mon-0900"),
    pytest.param(CALLER, MAIN, "2026-03-09T16:59:59-04:00", {}, "business-hours", id="mon-165959"),
    pytest.param(CALLER, MAIN, "2026-03-09T17:00-04:00", {}, "after-hours", id="mon-1700"),
    pytest.param(CALLER, MAIN, "2026-03-07T09:59-05:00", {}, "after-hours", id="sat-0959"),
    pytest.param(CALLER, MAIN, "2026-03-07T10:00-05:00", {}, "business-hours", id="sat-1000"),
    pytest.param(CALLER, MAIN, "2026-03-07T13:59-05:00", {}, "business-hours", id="sat-1359"),
    pytest.param(CALLER, MAIN, "2026-03-07T14:00-05:00", {}, "after-hours", id="sat-1400"),
    pytest.param(CALLER, MAIN, "2026-03-08T12:00-04:00", {}, "after-hours", id="sunday"),
    pytest.param(
        CALLER, MAIN, "2026-03-09T23:00+09:00", {}, "business-hours", id="offset-converted-tokyo"
    ),
    pytest.param(
        CALLER, MAIN, "2026-03-09T14:00Z", {}, "business-hours", id="offset-converted-utc"
    ),
    # --- holidays (local dates) ---------------------------------------------------------------
    pytest.param(CALLER, MAIN, "2026-12-24T10:00-05:00", {}, "business-hours", id="christmas-eve"),
    pytest.param(CALLER, MAIN, "2026-12-25T10:00-05:00", {}, "after-hours", id="christmas"),
    pytest.param(CALLER, MAIN, "2026-07-03T12:00-04:00", {}, "after-hours", id="july-4th-observed"),
    pytest.param(CALLER, MAIN, "2026-11-26T12:00-05:00", {}, "after-hours", id="thanksgiving"),
    pytest.param(CALLER, MAIN, "2026-11-27T12:00-05:00", {}, "business-hours", id="black-friday"),
    pytest.param(CALLER, OTHER, "2026-12-25T10:00-05:00", {}, "front-desk", id="holiday-other"),
    # --- New York across spring forward (2026-03-08 02:00 EST -> 03:00 EDT) --------------
    pytest.param(CALLER, MAIN, "2026-03-06T14:00Z", {}, "business-hours", id="ny-fri-0900-est"),
    pytest.param(CALLER, MAIN, "2026-03-06T13:30Z", {}, "after-hours", id="ny-fri-0830-est"),
    pytest.param(CALLER, MAIN, "2026-03-06T21:30Z", {}, "business-hours", id="ny-fri-1630-est"),
    pytest.param(CALLER, MAIN, "2026-03-09T13:00Z", {}, "business-hours", id="ny-mon-0900-edt"),
    pytest.param(CALLER, MAIN, "2026-03-09T12:30Z", {}, "after-hours", id="ny-mon-0830-edt"),
    pytest.param(CALLER, MAIN, "2026-03-09T21:00Z", {}, "after-hours", id="ny-mon-1700-edt"),
    # --- New York across fall back (2026-11-01 02:00 EDT -> 01:00 EST) -------------------
    pytest.param(CALLER, MAIN, "2026-10-30T13:00Z", {}, "business-hours", id="ny-fri-0900-edt"),
    pytest.param(CALLER, MAIN, "2026-11-02T13:30Z", {}, "after-hours", id="ny-mon-0830-est"),
    pytest.param(CALLER, MAIN, "2026-11-02T14:00Z", {}, "business-hours", id="ny-mon-0900-est"),
    pytest.param(CALLER, MAIN, "2026-11-02T21:59Z", {}, "business-hours", id="ny-mon-1659-est"),
    pytest.param(CALLER, MAIN, "2026-11-02T22:00Z", {}, "after-hours", id="ny-mon-1700-est"),
    # --- overnight window: Fri and Sat 22:00 -> 06:00 the next morning -------------------
    pytest.param(CALLER, NIGHT, "2026-03-06T21:59-05:00", {}, "front-desk", id="night-fri-2159"),
    pytest.param(CALLER, NIGHT, "2026-03-06T22:00-05:00", {}, "night-line", id="night-fri-2200"),
    pytest.param(CALLER, NIGHT, "2026-03-06T23:59-05:00", {}, "night-line", id="night-fri-2359"),
    pytest.param(CALLER, NIGHT, "2026-03-07T00:00-05:00", {}, "night-line", id="night-sat-0000"),
    pytest.param(CALLER, NIGHT, "2026-03-07T03:00-05:00", {}, "night-line", id="night-sat-0300"),
    pytest.param(CALLER, NIGHT, "2026-03-07T05:59-05:00", {}, "night-line", id="night-sat-0559"),
    pytest.param(CALLER, NIGHT, "2026-03-07T06:00-05:00", {}, "front-desk", id="night-sat-0600"),
    pytest.param(CALLER, NIGHT, "2026-03-06T03:00-05:00", {}, "front-desk", id="night-fri-0300"),
    pytest.param(CALLER, NIGHT, "2026-03-07T12:00-05:00", {}, "front-desk", id="night-sat-noon"),
    pytest.param(CALLER, NIGHT, "2026-03-07T23:00-05:00", {}, "night-line", id="night-sat-2300"),
    pytest.param(CALLER, NIGHT, "2026-03-08T22:00-04:00", {}, "front-desk", id="night-sun-2200"),
    pytest.param(CALLER, NIGHT, "2026-03-09T03:00-04:00", {}, "front-desk", id="night-mon-0300"),
    # Spring forward inside the night shift: 01:59 EST is followed by 03:00 EDT.
    pytest.param(CALLER, NIGHT, "2026-03-08T06:59Z", {}, "night-line", id="spring-0159-est"),
    pytest.param(CALLER, NIGHT, "2026-03-08T07:00Z", {}, "night-line", id="spring-0300-edt"),
    pytest.param(CALLER, NIGHT, "2026-03-08T09:59Z", {}, "night-line", id="spring-0559-edt"),
    pytest.param(CALLER, NIGHT, "2026-03-08T10:00Z", {}, "front-desk", id="spring-0600-edt"),
    # 10:30 UTC would be 05:30 in EST, but New York is on EDT by then: 06:30, closed.
    pytest.param(CALLER, NIGHT, "2026-03-08T10:30Z", {}, "front-desk", id="spring-0630-edt"),
    pytest.param(
        CALLER, NIGHT, "2026-03-08T05:30-05:00", {}, "front-desk", id="spring-stale-est-offset"
    ),
    # Fall back inside the night shift: 01:00-02:00 happens twice; the close moves to 11:00 UTC.
    pytest.param(CALLER, NIGHT, "2026-11-01T01:30-04:00", {}, "night-line", id="fall-0130-first"),
    pytest.param(CALLER, NIGHT, "2026-11-01T01:30-05:00", {}, "night-line", id="fall-0130-second"),
    pytest.param(CALLER, NIGHT, "2026-11-01T10:30Z", {}, "night-line", id="fall-0530-est"),
    pytest.param(CALLER, NIGHT, "2026-11-01T10:59Z", {}, "night-line", id="fall-0559-est"),
    pytest.param(CALLER, NIGHT, "2026-11-01T11:00Z", {}, "front-desk", id="fall-0600-est"),
]


@pytest.mark.parametrize(("caller", "called", "when", "geo", "expected"), MATCHES)
def test_example_file_rule(
    table: RoutingTable, caller: str, called: str, when: str, geo: dict[str, str], expected: str
) -> None:
    assert table.choose(twilio_call(caller, called, geo), at(when)).rule == expected


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        ("blocklist", RejectAction),
        ("anonymous", SayAction),
        ("vip", AgentAction),
        ("business-hours", AgentAction),
        ("after-hours", VoicemailAction),
        ("front-desk", ForwardAction),
    ],
)
def test_example_rule_actions(table: RoutingTable, rule: str, kind: type) -> None:
    (found,) = [r for r in table.rules if r.name == rule]
    assert isinstance(found, kind)


def test_example_details(table: RoutingTable) -> None:
    rules = {rule.name: rule for rule in table.rules}
    assert isinstance(rules["blocklist"], RejectAction)
    assert rules["blocklist"].reason == "busy"
    spanish = rules["spanish-line"]
    assert isinstance(spanish, AgentAction)
    assert spanish.language == "es"
    assert spanish.agent_id is None  # the default agent
    vip = rules["vip"]
    assert isinstance(vip, AgentAction)
    assert vip.dynamic_variables == {
        "tier": "gold",
        "caller_number": "{from}",
        "call_reference": "{call_sid}",
        "priority": 1,
        "secret__crm_token": "crm-test-token",
    }
    front_desk = rules["front-desk"]
    assert isinstance(front_desk, ForwardAction)
    assert front_desk.to == ["+12125550150", "sip:frontdesk@pbx.example.com"]
    assert front_desk.timeout == 25
    assert isinstance(front_desk.on_no_answer, VoicemailAction)
    assert table.schedules["london-office"].timezone == "Europe/London"


def test_callers_and_prefixes_in_one_rule_must_both_hold() -> None:
    table = parse_routes(
        """
        [[rules]]
        name = "both"
        action = "hangup"
        when.callers = ["+12025550199"]
        when.caller_prefixes = ["+1202"]

        [[rules]]
        name = "neither"
        action = "hangup"
        when.callers = ["+12025550199"]
        when.caller_prefixes = ["+1900"]
        """
    )
    moment = at("2026-03-09T10:00-04:00")
    assert table.choose(twilio_call("+12025550199", MAIN), moment).rule == "both"
    assert table.choose(twilio_call("+12025550100", MAIN), moment).rule == "default"
    assert table.choose(twilio_call("+19005550123", MAIN), moment).rule == "default"


# --- no match: the implicit default rule ------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "called", "geo"),
    [
        pytest.param(CALLER, MAIN, {}, id="ordinary"),
        pytest.param(BLOCKED, MAIN, {}, id="would-be-blocked"),
        pytest.param("anonymous", MAIN, {}, id="anonymous"),
        pytest.param("", "", {}, id="empty"),
        pytest.param(CALLER, SPANISH, {"FromState": "CA"}, id="geo"),
    ],
)
def test_no_routing_file_everything_goes_to_the_default_agent(
    caller: str, called: str, geo: dict[str, str]
) -> None:
    decision = RoutingTable().choose(twilio_call(caller, called, geo), at("2026-03-09T10:00Z"))
    assert decision.rule == "default"
    assert decision.action == AgentAction(action="agent")
    assert decision.action.agent_id is None
    assert decision.step == "default"
    assert decision.fallback == DEFAULT_FALLBACK
    assert decision.fallback_step == GLOBAL_FALLBACK_STEP


LINES_ONLY = """
[fallback]
action = "hangup"

[[rules]]
name = "spanish-line"
action = "agent"
language = "es"
when.called = ["+13055550142"]
"""


@pytest.mark.parametrize(
    ("caller", "called", "expected"),
    [
        pytest.param(CALLER, SPANISH, "spanish-line", id="match"),
        pytest.param(CALLER, MAIN, "default", id="other-number"),
        pytest.param(SPANISH, CALLER, "default", id="called-not-caller"),
        pytest.param("anonymous", MAIN, "default", id="anonymous"),
    ],
)
def test_unmatched_call_falls_through_to_default(caller: str, called: str, expected: str) -> None:
    table = parse_routes(LINES_ONLY)
    decision = table.choose(twilio_call(caller, called), at("2026-03-09T10:00Z"))
    assert decision.rule == expected
    assert isinstance(decision.action, AgentAction)
    # The file's global fallback applies to the implicit default rule too.
    assert decision.fallback.action == "hangup"
    assert decision.fallback_step == GLOBAL_FALLBACK_STEP


# --- schedules on their own ---------------------------------------------------------------


def schedule(timezone: str, *hours: tuple[list[str], str, str]) -> Schedule:
    return Schedule.model_validate(
        {
            "timezone": timezone,
            "hours": [
                {"days": days, "open": open_, "close": close} for days, open_, close in hours
            ],
        }
    )


FRIDAY_NIGHT = schedule("America/New_York", (["fri"], "22:00", "06:00"))
SUNDAY_1AM = schedule("America/New_York", (["sun"], "01:00", "02:00"))
SUNDAY_2AM = schedule("America/New_York", (["sun"], "02:00", "03:00"))
LONDON = schedule("Europe/London", (["sun"], "00:30", "03:00"))
UNTIL_MIDNIGHT = schedule("UTC", (["mon"], "18:00", "00:00"))


@pytest.mark.parametrize(
    ("hours", "when", "expected"),
    [
        # Overnight window with days=["fri"]: Friday night into Saturday morning only.
        pytest.param(FRIDAY_NIGHT, "2026-03-06T22:00-05:00", True, id="fri-2200"),
        pytest.param(FRIDAY_NIGHT, "2026-03-07T03:00-05:00", True, id="sat-0300"),
        pytest.param(FRIDAY_NIGHT, "2026-03-06T03:00-05:00", False, id="fri-0300"),
        pytest.param(FRIDAY_NIGHT, "2026-03-07T22:00-05:00", False, id="sat-2200"),
        pytest.param(FRIDAY_NIGHT, "2026-03-07T06:00-05:00", False, id="sat-0600"),
        # The repeated hour on 2026-11-01: 01:30 EDT and 01:30 EST are both open.
        pytest.param(SUNDAY_1AM, "2026-11-01T04:59Z", False, id="fall-0059-edt"),
        pytest.param(SUNDAY_1AM, "2026-11-01T05:00Z", True, id="fall-0100-edt"),
        pytest.param(SUNDAY_1AM, "2026-11-01T05:30Z", True, id="fall-0130-edt"),
        pytest.param(SUNDAY_1AM, "2026-11-01T06:30Z", True, id="fall-0130-est"),
        pytest.param(SUNDAY_1AM, "2026-11-01T06:59Z", True, id="fall-0159-est"),
        pytest.param(SUNDAY_1AM, "2026-11-01T07:00Z", False, id="fall-0200-est"),
        # 02:00-03:00 does not exist on 2026-03-08 in New York.
        pytest.param(SUNDAY_2AM, "2026-03-08T06:59Z", False, id="spring-0159-est"),
        pytest.param(SUNDAY_2AM, "2026-03-08T07:00Z", False, id="spring-0300-edt"),
        pytest.param(SUNDAY_2AM, "2026-03-15T06:30Z", True, id="next-sunday-0230-edt"),
        # London on 2026-03-29: 01:00 GMT becomes 02:00 BST.
        pytest.param(LONDON, "2026-03-29T00:59Z", True, id="london-0059-gmt"),
        pytest.param(LONDON, "2026-03-29T01:00Z", True, id="london-0200-bst"),
        pytest.param(LONDON, "2026-03-29T01:59Z", True, id="london-0259-bst"),
        pytest.param(LONDON, "2026-03-29T02:00Z", False, id="london-0300-bst"),
        pytest.param(LONDON, "2026-03-22T02:30Z", True, id="london-week-before-0230-gmt"),
        # A close of 00:00 means "until midnight".
        pytest.param(UNTIL_MIDNIGHT, "2026-03-09T23:59:59Z", True, id="midnight-2359"),
        pytest.param(UNTIL_MIDNIGHT, "2026-03-10T00:00Z", False, id="midnight-0000"),
        pytest.param(UNTIL_MIDNIGHT, "2026-03-09T17:59Z", False, id="midnight-1759"),
    ],
)
def test_schedule_is_open(hours: Schedule, when: str, expected: bool) -> None:
    assert hours.is_open(at(when)) is expected


def test_schedule_holidays_are_local_dates() -> None:
    hours = Schedule.model_validate(
        {
            "timezone": "Pacific/Auckland",
            "hours": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "17:00"}
            ],
            "holidays": ["2026-12-25"],
        }
    )
    # 2026-12-24 21:00 UTC is Friday 25 December 10:00 in Auckland: a holiday.
    assert not hours.is_open(at("2026-12-24T21:00Z"))
    # The day before at the same UTC time is Thursday 24 December 10:00 there: open.
    assert hours.is_open(at("2026-12-23T21:00Z"))
    local = at("2026-12-24T21:00Z").astimezone(ZoneInfo("Pacific/Auckland"))
    assert (local.day, local.hour) == (25, 10)


def holiday_nights(holiday: str) -> Schedule:
    """Thursday and Friday 22:00 -> 06:00 the next morning, in New York, with one holiday."""
    return Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "hours": [{"days": ["thu", "fri"], "open": "22:00", "close": "06:00"}],
            "holidays": [holiday],
        }
    )


# A window belongs to the date it opens on: a holiday closes every window that opens on
# it, all night long, and leaves alone a window that opened the evening before.
@pytest.mark.parametrize(
    ("holiday", "when", "expected"),
    [
        # Friday 2026-03-06 is a holiday: its night (Fri 22:00 -> Sat 06:00) stays closed.
        pytest.param("2026-03-06", "2026-03-06T22:00-05:00", False, id="fri-holiday-fri-2200"),
        pytest.param("2026-03-06", "2026-03-06T23:59-05:00", False, id="fri-holiday-fri-2359"),
        pytest.param("2026-03-06", "2026-03-07T00:00-05:00", False, id="fri-holiday-sat-0000"),
        pytest.param("2026-03-06", "2026-03-07T02:00-05:00", False, id="fri-holiday-sat-0200"),
        pytest.param("2026-03-06", "2026-03-07T05:59-05:00", False, id="fri-holiday-sat-0559"),
        # Thursday's night opened before the holiday: it runs to 06:00 on the holiday.
        pytest.param("2026-03-06", "2026-03-05T23:00-05:00", True, id="fri-holiday-thu-2300"),
        pytest.param("2026-03-06", "2026-03-06T02:00-05:00", True, id="fri-holiday-fri-0200"),
        pytest.param("2026-03-06", "2026-03-06T05:59-05:00", True, id="fri-holiday-fri-0559"),
        pytest.param("2026-03-06", "2026-03-06T06:00-05:00", False, id="fri-holiday-fri-0600"),
        # The mirror: Saturday 2026-03-07 is a holiday, and Friday's night opened on Friday.
        pytest.param("2026-03-07", "2026-03-06T22:00-05:00", True, id="sat-holiday-fri-2200"),
        pytest.param("2026-03-07", "2026-03-07T02:00-05:00", True, id="sat-holiday-sat-0200"),
        pytest.param("2026-03-07", "2026-03-07T06:00-05:00", False, id="sat-holiday-sat-0600"),
        # The holiday is a local date: 03:00 UTC on Saturday is still Friday 22:00 in New York.
        pytest.param("2026-03-06", "2026-03-07T03:00Z", False, id="fri-holiday-utc"),
        pytest.param("2026-03-07", "2026-03-07T03:00Z", True, id="sat-holiday-utc"),
    ],
)
def test_holiday_closes_the_windows_that_open_on_it(
    holiday: str, when: str, expected: bool
) -> None:
    assert holiday_nights(holiday).is_open(at(when)) is expected


# --- fallbacks and steps ------------------------------------------------------------------


def test_rule_with_its_own_fallback(table: RoutingTable) -> None:
    decision = table.choose(twilio_call(VIP, MAIN), at("2026-03-09T10:00-04:00"))
    assert decision.rule == "vip"
    assert decision.step == "rule:vip"
    assert decision.fallback_step == "fallback:vip"
    assert isinstance(decision.fallback, ForwardAction)
    assert decision.fallback.to == ["+12125550111"]
    assert decision.fallback.timeout == 30


def test_rule_without_fallback_uses_the_files_fallback(table: RoutingTable) -> None:
    decision = table.choose(twilio_call(CALLER, MAIN), at("2026-03-09T10:00-04:00"))
    assert decision.rule == "business-hours"
    assert decision.step == "rule:business-hours"
    assert decision.fallback_step == "fallback"
    assert decision.fallback == table.global_fallback
    assert isinstance(decision.fallback, SayAction)
    assert decision.fallback.message.startswith("Sorry, our assistant is unavailable")


def test_decision_action_is_the_rule(table: RoutingTable) -> None:
    decision = table.choose(twilio_call(CALLER, OTHER), at("2026-03-09T10:00-04:00"))
    assert isinstance(decision.action, ForwardAction)
    assert decision.action.caller_id == MAIN
    assert decision.action.message == "Please hold while we connect you."


@pytest.mark.parametrize(
    ("step", "expected_to"),
    [
        pytest.param(
            "rule:front-desk", ["+12125550150", "sip:frontdesk@pbx.example.com"], id="rule"
        ),
        pytest.param("fallback:vip", ["+12125550111"], id="rule-fallback"),
        pytest.param("rule:vip", None, id="agent-rule"),
        pytest.param("rule:after-hours", None, id="voicemail-rule"),
        pytest.param("fallback:front-desk", None, id="rule-without-fallback"),
        pytest.param("fallback", None, id="global-fallback-is-say"),
        pytest.param("default", None, id="implicit-default"),
        pytest.param("rule:gone", None, id="unknown-rule"),
        pytest.param("fallback:gone", None, id="unknown-rule-fallback"),
        pytest.param("", None, id="empty"),
    ],
)
def test_forward_for(table: RoutingTable, step: str, expected_to: list[str] | None) -> None:
    forward = table.forward_for(step)
    if expected_to is None:
        assert forward is None
    else:
        assert isinstance(forward, ForwardAction)
        assert forward.to == expected_to


def test_forward_for_front_desk_keeps_on_no_answer(table: RoutingTable) -> None:
    forward = table.forward_for("rule:front-desk")
    assert forward is not None
    assert isinstance(forward.on_no_answer, VoicemailAction)
    assert forward.on_no_answer.message == (
        "Nobody could take your call. Please leave a message after the beep."
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        pytest.param("rule:vip", "vip-forward", id="rule-with-fallback"),
        pytest.param("fallback:vip", "vip-forward", id="rule-fallback-step"),
        pytest.param("rule:business-hours", "global", id="rule-without-fallback"),
        pytest.param("default", "global", id="implicit-default"),
        pytest.param("fallback", "global", id="global"),
        pytest.param("rule:gone", "global", id="unknown-rule"),
    ],
)
def test_fallback_for(table: RoutingTable, step: str, expected: str) -> None:
    fallback = table.fallback_for(step)
    if expected == "global":
        assert fallback == table.global_fallback
    else:
        assert isinstance(fallback, ForwardAction)
        assert fallback.to == ["+12125550111"]


def test_global_forward_fallback_is_found_by_its_step() -> None:
    table = parse_routes(
        """
        [fallback]
        action = "forward"
        to = ["+12125550150"]
        """
    )
    decision = table.choose(twilio_call(CALLER, MAIN), at("2026-03-09T10:00Z"))
    assert decision.fallback_step == "fallback"
    forward = table.forward_for(decision.fallback_step)
    assert isinstance(forward, ForwardAction)
    assert forward.to == ["+12125550150"]
    assert table.fallback_for("fallback") is table.fallback


def test_no_file_fallbacks() -> None:
    table = RoutingTable()
    assert table.global_fallback == DEFAULT_FALLBACK
    assert table.fallback_for("default") == DEFAULT_FALLBACK
    assert table.forward_for("fallback") is None


def test_forward_for_a_rule_named_fallback() -> None:
    # The <Dial action> callback of a forward rule finds the rule by its step; the
    # step of a rule named "fallback" is "rule:fallback", not the fallback of a rule.
    table = parse_routes(
        """
        [[rules]]
        name = "fallback"
        action = "forward"
        to = ["+12125550150"]
        on_no_answer = { action = "voicemail" }
        """
    )
    decision = table.choose(twilio_call(CALLER, MAIN), at("2026-03-09T10:00Z"))
    assert decision.step == "rule:fallback"
    forward = table.forward_for(decision.step)
    assert isinstance(forward, ForwardAction)
    assert forward.to == ["+12125550150"]
    assert isinstance(forward.on_no_answer, VoicemailAction)
