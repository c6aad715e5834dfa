"""Loading routing files: every mistake is a clear error naming file, rule and field."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from bridge.call import Call
from bridge.routing import RoutesError, RoutingTable, load_routes, parse_routes
from bridge.routing.rules import AgentAction, ForwardAction, RuleLookup

DATA = Path(__file__).parent / "data"

OFFICE = """
[schedules.office]
timezone = "America/New_York"
hours = [{ days = ["mon", "tue", "wed", "thu", "fri"], open = "09:00", close = "17:00" }]
"""

GEO_FIELDS_TEXT = (
    "FromCity, FromState, FromZip, FromCountry, ToCity, ToState, ToZip, ToCountry, "
    "CallerCity, CallerState, CallerZip, CallerCountry, CalledCity, CalledState, CalledZip, "
    "CalledCountry"
)
PLACEHOLDERS_TEXT = (
    "{call_sid}, {account_sid}, {from}, {to}, {caller_name}, {forwarded_from}, {direction}, "
    "{from_city}, {from_state}, {from_zip}, {from_country}, {to_city}, {to_state}, {to_zip}, "
    "{to_country}, {stir_verstat}"
)
ALL_ACTIONS = "agent, forward, voicemail, reject, say, hangup"
E164_HINT = "is not an E.164 number like +14155550123"

# (routing file text, the error lines after "<file>: ").
ERRORS = [
    pytest.param(
        '[[rules]]\nname = "a\naction = "hangup"\n',
        ["invalid TOML: Illegal character '\\n' (at line 2, column 10)"],
        id="toml-unclosed-string",
    ),
    pytest.param(
        '[[rules]]\nname "a"\n',
        ["invalid TOML: Expected '=' after a key in a key/value pair (at line 2, column 6)"],
        id="toml-missing-equals",
    ),
    pytest.param(
        '[[rule]]\nname = "a"\naction = "hangup"\n',
        ["top level: field 'rule': unknown key; did you mean 'rules'?"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\ncolour = "red"\n',
        ["rule 'a' (#1): field 'colour': unknown key"],
        id="unknown-rule-key",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.caler = ["+12125550100"]\n',
        ["rule 'a' (#1): field 'when.caler': unknown key; did you mean 'callers'?"],
        id="unknown-when-key",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "say"\nmessage = "Hi"\nagent_id = "agent_x"\n',
        ["rule 'a' (#1): field 'agent_id': unknown key"],
        id="key-of-another-action",
    ),
    pytest.param(
        '[[rules]]\naction = "hangup"\n',
        ["rule (unnamed) (#1): field 'name': required"],
        id="missing-name",
    ),
    pytest.param(
        '[[rules]]\nname = ""\naction = "hangup"\n',
        ["rule (unnamed) (#1): field 'name': String should have at least 1 character"],
        id="empty-name",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\n'
        '[[rules]]\nname = "b"\naction = "hangup"\n'
        '[[rules]]\nname = "a"\naction = "hangup"\n',
        ["rule 'a' (#3): field 'name': duplicate rule name"],
        id="duplicate-name",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "transfer"\n',
        [
            f"rule 'a' (#1): field 'action': unknown action 'transfer' "
            f"(expected one of: {ALL_ACTIONS})"
        ],
        id="unknown-action",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\n',
        [f"rule 'a' (#1): field 'action': required (one of: {ALL_ACTIONS})"],
        id="missing-action",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "say"\n',
        ["rule 'a' (#1): field 'message': required"],
        id="say-without-message",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.callers = ["+12125550100", "2125550100"]\n',
        [f"rule 'a' (#1): field 'when.callers[1]': '2125550100' {E164_HINT}"],
        id="callers-not-e164",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.called = ["+1212"]\n',
        [f"rule 'a' (#1): field 'when.called[0]': '+1212' {E164_HINT}"],
        id="called-too-short",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["0044 20 7946 0123"]\n',
        [f"rule 'a' (#1): field 'to[0]': '0044 20 7946 0123' {E164_HINT}"],
        id="forward-to-not-e164",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["sip:pbx.example.com"]\n',
        [
            "rule 'a' (#1): field 'to[0]': 'sip:pbx.example.com' is not a SIP URI like "
            "sip:alice@example.com"
        ],
        id="forward-to-bad-sip",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = []\n',
        ["rule 'a' (#1): field 'to': List should have at least 1 item after validation, not 0"],
        id="forward-to-empty",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\n'
        'caller_id = "12125550100"\n',
        [f"rule 'a' (#1): field 'caller_id': '12125550100' {E164_HINT}"],
        id="caller-id-not-e164",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.caller_prefixes = ["44"]\n',
        [
            "rule 'a' (#1): field 'when.caller_prefixes[0]': '44' is not a number prefix like "
            "+1 or +4420"
        ],
        id="prefix-without-plus",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.caller_countries = ["UK"]\n',
        [
            "rule 'a' (#1): field 'when.caller_countries[0]': 'UK' is not an ISO 3166 country "
            "code like US or GB"
        ],
        id="country-uk-is-gb",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "America/NewYork"\n'
        'hours = [{ days = ["mon"], open = "09:00", close = "17:00" }]\n',
        [
            "schedule 'office': field 'timezone': unknown time zone 'America/NewYork': use an "
            "IANA name like 'America/New_York'"
        ],
        id="bad-time-zone",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "EST5EDT/nope"\n'
        'hours = [{ days = ["mon"], open = "09:00", close = "17:00" }]\n',
        [
            "schedule 'office': field 'timezone': unknown time zone 'EST5EDT/nope': use an "
            "IANA name like 'America/New_York'"
        ],
        id="bad-time-zone-path",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "America/New_York"\n'
        'hours = [{ days = ["mon"], open = "09:00", close = "09:00" }]\n',
        [
            "schedule 'office': field 'hours[0]': open and close are the same time: the window "
            "would be empty"
        ],
        id="open-equals-close",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "America/New_York"\n'
        'hours = [{ days = ["mon", "tues"], open = "09:00", close = "17:00" }]\n',
        [
            "schedule 'office': field 'hours[0].days[1]': Input should be 'mon', 'tue', 'wed', "
            "'thu', 'fri', 'sat' or 'sun'"
        ],
        id="bad-weekday",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "America/New_York"\n'
        'hours = [{ days = ["mon"], open = "9am", close = "17:00" }]\n',
        [
            "schedule 'office': field 'hours[0].open': '9am' is not a 24-hour time like 09:00 "
            "or 21:30; did you mean 09:00?"
        ],
        id="bad-time",
    ),
    pytest.param(
        '[schedules.office]\ntimezone = "America/New_York"\nhours = []\n',
        [
            "schedule 'office': field 'hours': List should have at least 1 item after "
            "validation, not 0"
        ],
        id="no-hours",
    ),
    pytest.param(
        '[[schedules]]\ntimezone = "America/New_York"\n',
        ["top level: field 'schedules': Input should be a valid dictionary"],
        id="schedules-as-array-of-tables",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.during = "office"\n',
        ["rule 'a' (#1): field 'when.during': unknown schedule 'office' (known: none defined)"],
        id="during-unknown-schedule",
    ),
    pytest.param(
        OFFICE + '[[rules]]\nname = "a"\naction = "hangup"\nwhen.outside = "ofice"\n',
        ["rule 'a' (#1): field 'when.outside': unknown schedule 'ofice' (known: office)"],
        id="outside-unknown-schedule",
    ),
    pytest.param(
        OFFICE + '[[rules]]\nname = "a"\naction = "hangup"\n'
        'when.during = "office"\nwhen.outside = "office"\n',
        ["rule 'a' (#1): field 'when': during and outside the same schedule"],
        id="during-and-outside",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.geo = { FromProvince = ["ON"] }\n',
        [
            f"rule 'a' (#1): field 'when.geo.FromProvince': 'FromProvince' is not a Twilio geo "
            f"field ({GEO_FIELDS_TEXT})"
        ],
        id="unknown-geo-field",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nwhen.geo = { FromState = "CA" }\n',
        ["rule 'a' (#1): field 'when.geo.FromState': Input should be a valid list"],
        id="geo-value-not-a-list",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = { who = "{nope}" }\n',
        [
            f"rule 'a' (#1): field 'dynamic_variables.who': unknown placeholder {{nope}} in "
            f"'{{nope}}'; known: {PLACEHOLDERS_TEXT}"
        ],
        id="unknown-placeholder",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = { who = "{from!r}" }\n',
        [
            f"rule 'a' (#1): field 'dynamic_variables.who': unknown placeholder {{from}} in "
            f"'{{from!r}}'; known: {PLACEHOLDERS_TEXT}"
        ],
        id="placeholder-with-conversion",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = { who = "{from" }\n',
        [
            "rule 'a' (#1): field 'dynamic_variables.who': bad template '{from': expected '}' "
            "before end of string; write {{ for a literal brace"
        ],
        id="unclosed-brace",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = { "first-name" = "x" }\n',
        [
            "rule 'a' (#1): field 'dynamic_variables.first-name': 'first-name' is not a variable "
            "name (letters, digits, underscore)"
        ],
        id="dynamic-variable-bad-name",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = { tags = ["a", "b"] }\n',
        ["rule 'a' (#1): field 'dynamic_variables.tags': must be a string, number or boolean"],
        id="dynamic-variable-list",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "agent"\n[rules.dynamic_variables.nested]\nx = 1\n',
        ["rule 'a' (#1): field 'dynamic_variables.nested': must be a string, number or boolean"],
        id="dynamic-variable-table",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\ntimeout = 4\n',
        ["rule 'a' (#1): field 'timeout': Input should be greater than or equal to 5"],
        id="forward-timeout-too-short",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\ntimeout = 601\n',
        ["rule 'a' (#1): field 'timeout': Input should be less than or equal to 600"],
        id="forward-timeout-too-long",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "voicemail"\nmax_length = 0\n',
        ["rule 'a' (#1): field 'max_length': Input should be greater than or equal to 1"],
        id="voicemail-max-length-zero",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "voicemail"\nmax_length = 14401\n',
        ["rule 'a' (#1): field 'max_length': Input should be less than or equal to 14400"],
        id="voicemail-max-length-over-4h",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "reject"\nreason = "declined"\n',
        ["rule 'a' (#1): field 'reason': Input should be 'busy' or 'rejected'"],
        id="reject-reason",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\n'
        'on_no_answer = { action = "reject" }\n',
        [
            "rule 'a' (#1): field 'on_no_answer.action': unknown action 'reject' (expected one "
            "of: say, voicemail, hangup, agent)"
        ],
        id="on-no-answer-reject",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\n'
        'on_no_answer = { action = "forward", to = ["+12125550101"] }\n',
        [
            "rule 'a' (#1): field 'on_no_answer.action': unknown action 'forward' (expected one "
            "of: say, voicemail, hangup, agent)"
        ],
        id="on-no-answer-forward",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "forward"\nto = ["+12125550100"]\n'
        'on_no_answer = { action = "voicemail", max_length = 0 }\n',
        [
            "rule 'a' (#1): field 'on_no_answer.max_length': Input should be greater than or "
            "equal to 1"
        ],
        id="on-no-answer-field",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\nfallback = { action = "agent" }\n',
        [
            "rule 'a' (#1): field 'fallback.action': unknown action 'agent' (expected one of: "
            "say, forward, voicemail, reject, hangup)"
        ],
        id="rule-fallback-agent",
    ),
    pytest.param(
        '[[rules]]\nname = "a"\naction = "hangup"\n'
        'fallback = { action = "forward", to = ["123"] }\n',
        [f"rule 'a' (#1): field 'fallback.to[0]': '123' {E164_HINT}"],
        id="rule-fallback-field",
    ),
    pytest.param(
        '[fallback]\naction = "agent"\n',
        [
            "fallback: field 'action': unknown action 'agent' (expected one of: say, forward, "
            "voicemail, reject, hangup)"
        ],
        id="global-fallback-agent",
    ),
    pytest.param(
        '[fallback]\naction = "say"\n',
        ["fallback: field 'message': required"],
        id="global-fallback-field",
    ),
    pytest.param(
        '[fallback]\naction = "forward"\nto = ["+12125550100"]\ntimeout = 1\n',
        ["fallback: field 'timeout': Input should be greater than or equal to 5"],
        id="global-fallback-forward-field",
    ),
    pytest.param(
        '[[rules]]\nname = "ok"\naction = "hangup"\n'
        '[[rules]]\nname = "b"\naction = "hangup"\nwhen.callers = ["x"]\n'
        '[[rules]]\naction = "hangup"\n',
        [
            f"rule 'b' (#2): field 'when.callers[0]': 'x' {E164_HINT}",
            "rule (unnamed) (#3): field 'name': required",
        ],
        id="every-problem-reported",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_load_error(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert caught.value.problems == [f"{path}: {line}" for line in expected]
    assert str(caught.value) == "\n".join(caught.value.problems)


FORWARD = '[[rules]]\nname = "vip"\naction = "forward"\nto = ["+12125550100"]\n'
HOURS = '[schedules.office]\ntimezone = "America/New_York"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            FORWARD + 'when.callers_ = ["+12125550100"]\n',
            "rule 'vip' (#1): field 'when.callers_': unknown key; did you mean 'callers'?",
            id="when",
        ),
        pytest.param(
            FORWARD + 'callers = ["+12125550100"]\n',
            "rule 'vip' (#1): field 'callers': unknown key; did you mean 'when.callers'?",
            id="condition-outside-when",
        ),
        pytest.param(
            FORWARD + "timout = 30\n",
            "rule 'vip' (#1): field 'timout': unknown key; did you mean 'timeout'?",
            id="rule",
        ),
        pytest.param(
            FORWARD + 'on_no_answer = { action = "voicemail", mesage = "Bye" }\n',
            "rule 'vip' (#1): field 'on_no_answer.mesage': unknown key; did you mean 'message'?",
            id="on-no-answer",
        ),
        pytest.param(
            FORWARD + 'fallback = { action = "voicemail", max_lenght = 60 }\n',
            "rule 'vip' (#1): field 'fallback.max_lenght': unknown key; did you mean 'max_length'?",
            id="rule-fallback",
        ),
        pytest.param(
            '[fallback]\naction = "forward"\nto = ["+12125550100"]\ncaller_ld = "+12125550100"\n',
            "fallback: field 'caller_ld': unknown key; did you mean 'caller_id'?",
            id="file-fallback",
        ),
        pytest.param(
            HOURS + 'hours = [{ days = ["mon"], open = "09:00", close = "17:00", clos = 1 }]\n',
            "schedule 'office': field 'hours[0].clos': unknown key; did you mean 'close'?",
            id="window",
        ),
        pytest.param(
            HOURS + 'hours = [{ days = ["mon"], open = "09:00", close = "17:00" }]\n'
            'holiday = ["2026-12-25"]\n',
            "schedule 'office': field 'holiday': unknown key; did you mean 'holidays'?",
            id="schedule",
        ),
        pytest.param(
            '[[rules]]\nname = "a"\naction = "hangup"\nwhen.xyz = 1\n',
            "rule 'a' (#1): field 'when.xyz': unknown key",
            id="nothing-near",
        ),
    ],
)
def test_unknown_key_suggests_the_nearest_known_key(text: str, expected: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(text, source="routes.toml")
    assert caught.value.problems == [f"routes.toml: {expected}"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param(
            '"+1 415 555 0123"',
            f"'+1 415 555 0123' {E164_HINT}; did you mean +14155550123?",
            id="spaces",
        ),
        pytest.param(
            '"+1 (415) 555-0123"',
            f"'+1 (415) 555-0123' {E164_HINT}; did you mean +14155550123?",
            id="punctuation",
        ),
        pytest.param('"+14155550123x"', f"'+14155550123x' {E164_HINT}", id="trailing-letter"),
        pytest.param('"+1 415"', f"'+1 415' {E164_HINT}", id="spaces-too-short"),
        pytest.param("14155550123", f"14155550123 {E164_HINT}, in quotes", id="toml-number"),
    ],
)
def test_a_bad_number_says_the_expected_form(written: str, message: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(
            f'[[rules]]\nname = "a"\naction = "hangup"\nwhen.callers = [{written}]\n',
            source="routes.toml",
        )
    assert caught.value.problems == [
        f"routes.toml: rule 'a' (#1): field 'when.callers[0]': {message}"
    ]


def test_parse_routes_names_its_source() -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes('[[rules]]\nname = "a"\naction = "nope"\n', source="ROUTES_FILE")
    assert caught.value.problems[0].startswith("ROUTES_FILE: rule 'a' (#1): field 'action': ")
    with pytest.raises(RoutesError) as caught:
        parse_routes("rules = 1")
    assert caught.value.problems == [
        "<routes>: top level: field 'rules': Input should be a valid list"
    ]


@pytest.mark.parametrize(
    "value",
    [pytest.param("nan", id="nan"), pytest.param("inf", id="inf"), pytest.param("-inf", id="-inf")],
)
def test_dynamic_variable_must_be_finite(value: str) -> None:
    # JSON has no NaN or Infinity: httpx refuses to send such a body, so every call to
    # this rule would fail at call time instead of the file failing at load time.
    with pytest.raises(RoutesError) as caught:
        parse_routes(
            f'[[rules]]\nname = "a"\naction = "agent"\ndynamic_variables = {{ score = {value} }}\n',
            source="routes.toml",
        )
    (problem,) = caught.value.problems
    assert problem.startswith("routes.toml: rule 'a' (#1): field 'dynamic_variables.score': ")


@pytest.mark.parametrize(
    ("open_", "close"),
    [
        pytest.param('"09:00Z"', '"17:00Z"', id="utc"),
        pytest.param('"09:00-05:00"', '"17:00"', id="offset-on-open"),
    ],
)
def test_schedule_times_must_be_local(open_: str, close: str) -> None:
    # A time with an offset cannot be compared with the local wall clock: today it
    # loads, then every call that checks the schedule raises TypeError.
    with pytest.raises(RoutesError) as caught:
        parse_routes(
            '[schedules.office]\ntimezone = "America/New_York"\n'
            f'hours = [{{ days = ["mon"], open = {open_}, close = {close} }}]\n',
            source="routes.toml",
        )
    assert caught.value.problems
    assert all(
        line.startswith("routes.toml: schedule 'office': field 'hours[0]")
        for line in caught.value.problems
    )


EXPECTED_TIME = "is not a 24-hour time like 09:00 or 21:30"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param('"10am"', f"'10am' {EXPECTED_TIME}; did you mean 10:00?", id="10am"),
        pytest.param('"10 AM"', f"'10 AM' {EXPECTED_TIME}; did you mean 10:00?", id="10-AM"),
        pytest.param('"9:00pm"', f"'9:00pm' {EXPECTED_TIME}; did you mean 21:00?", id="9:00pm"),
        pytest.param('"9:30 p.m."', f"'9:30 p.m.' {EXPECTED_TIME}; did you mean 21:30?", id="pm"),
        pytest.param('"12am"', f"'12am' {EXPECTED_TIME}; did you mean 00:00?", id="12am"),
        pytest.param('"12pm"', f"'12pm' {EXPECTED_TIME}; did you mean 12:00?", id="12pm"),
        pytest.param('"noon"', f"'noon' {EXPECTED_TIME}; did you mean 12:00?", id="noon"),
        pytest.param('"9.30"', f"'9.30' {EXPECTED_TIME}; did you mean 09:30?", id="9.30"),
        pytest.param('"9:00"', f"'9:00' {EXPECTED_TIME}; did you mean 09:00?", id="9:00"),
        pytest.param('"0930"', f"'0930' {EXPECTED_TIME}; did you mean 09:30?", id="0930"),
        pytest.param('" 09:00"', f"' 09:00' {EXPECTED_TIME}; did you mean 09:00?", id="space"),
        pytest.param('"24:00"', f"'24:00' {EXPECTED_TIME}; did you mean 00:00?", id="24:00"),
        pytest.param('"25:00"', f"'25:00' {EXPECTED_TIME}", id="25:00"),
        pytest.param('"13pm"', f"'13pm' {EXPECTED_TIME}", id="13pm"),
        pytest.param('"09:60"', f"'09:60' {EXPECTED_TIME}", id="09:60"),
        pytest.param('"soon"', f"'soon' {EXPECTED_TIME}", id="word"),
        # A bare TOML number was read as seconds after midnight (9 -> 00:00:09 UTC).
        pytest.param("9", f'9 {EXPECTED_TIME}, in quotes; did you mean "09:00"?', id="int-9"),
        pytest.param(
            "1730", f'1730 {EXPECTED_TIME}, in quotes; did you mean "17:30"?', id="int-1730"
        ),
        pytest.param("9.5", f"9.5 {EXPECTED_TIME}, in quotes", id="float"),
        pytest.param("true", f"True {EXPECTED_TIME}, in quotes", id="bool"),
    ],
)
def test_schedule_time_says_the_expected_form(written: str, message: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(
            '[schedules.office]\ntimezone = "America/New_York"\n'
            f'hours = [{{ days = ["mon"], open = {written}, close = "23:00" }}]\n',
            source="routes.toml",
        )
    assert caught.value.problems == [
        f"routes.toml: schedule 'office': field 'hours[0].open': {message}"
    ]


# --- things that are accepted ----------------------------------------------------------


def test_empty_file_is_no_rules() -> None:
    table = parse_routes("# nothing yet\n")
    assert table.rules == ()
    assert table.schedules == {}
    assert table.fallback is None


def test_accepted_spellings() -> None:
    table = parse_routes(
        """
        [schedules.office]
        timezone = "Europe/London"
        hours = [{ days = ["mon"], open = 09:00:00, close = 17:30:00 }]
        holidays = [2026-12-25, "2026-12-26"]

        [[rules]]
        name = "countries"
        action = "forward"
        to = ["+442079460123", "SIP:desk@pbx.example.com"]
        caller_id = "+442079460000"
        when.caller_countries = ["gb", "Ie"]
        when.during = "office"
        on_no_answer = { action = "agent", agent_id = "agent_overflow" }

        [[rules]]
        name = "agent"
        action = "agent"
        dynamic_variables = { n = 1, x = 1.5, ok = true, text = "{{literal}} {from}" }
        """,
        source="routes.toml",
    )
    assert table.source == "routes.toml"
    office = table.schedules["office"]
    assert office.hours[0].open == time(9, 0)
    assert office.hours[0].close == time(17, 30)
    assert [str(day) for day in office.holidays] == ["2026-12-25", "2026-12-26"]
    countries, agent = table.rules
    assert isinstance(countries, ForwardAction)
    assert countries.when.caller_countries == ["GB", "IE"]
    assert isinstance(countries.on_no_answer, AgentAction)
    assert countries.on_no_answer.agent_id == "agent_overflow"
    assert isinstance(agent, AgentAction)
    assert agent.dynamic_variables == {"n": 1, "x": 1.5, "ok": True, "text": "{{literal}} {from}"}


# --- reading the file ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert caught.value.problems == [f"{path}: cannot read routing file: No such file or directory"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(RoutesError) as caught:
        load_routes(tmp_path)
    assert caught.value.problems == [f"{tmp_path}: cannot read routing file: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[[rules]]\nname = "Café"\naction = "hangup"\n'.encode("latin-1"))
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    assert caught.value.problems == [f"{path}: routing file is not UTF-8 text"]


def test_load_routes_source_is_the_path(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text('[[rules]]\nname = "all"\naction = "hangup"\n', encoding="utf-8")
    table = load_routes(path)
    assert isinstance(table, RoutingTable)
    assert table.source == str(path)
    assert [rule.name for rule in table.rules] == ["all"]


EXAMPLES = sorted(DATA.glob("*.toml"))


def test_there_are_examples() -> None:
    assert DATA / "routes_example.toml" in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_file_loads(path: Path) -> None:
    table = load_routes(path)
    assert table.rules
    assert table.source == str(path)


# --- a rule's lookup hook -----------------------------------------------------------------

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
LOOKUP_RULE = '[[rules]]\nname = "sales"\naction = "agent"\n'


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("lookup = false", False),
        ('lookup = { url = "https://crm.example/l" }', RuleLookup(url="https://crm.example/l")),
        (
            'lookup = { url = "https://crm.example/l", timeout = 0.8 }',
            RuleLookup(url="https://crm.example/l", timeout=0.8),
        ),
        ('lookup = { url = "http://127.0.0.1:8080/l" }', RuleLookup(url="http://127.0.0.1:8080/l")),
        ('lookup = { url = "http://localhost/l" }', RuleLookup(url="http://localhost/l")),
        ("", None),
    ],
)
def test_a_rules_lookup(written: str, expected: object) -> None:
    table = parse_routes(LOOKUP_RULE + written)
    assert table.rules[0].lookup == expected
    assert table.choose(Call(call_sid="CA1", from_number="+1", to_number="+2"), NOW).lookup == (
        expected
    )


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (
            "lookup = true",
            "field 'lookup': must be a table like { url = \"https://...\", timeout = 1.5 } "
            "or false",
        ),
        ('lookup = "https://x.example"', "field 'lookup': must be a table"),
        ("lookup = {}", "field 'lookup.url': required"),
        (
            'lookup = { url = "http://crm.example/l" }',
            "field 'lookup.url': 'http://crm.example/l' must be an https URL "
            "(plain http only to loopback)",
        ),
        ('lookup = { url = "crm.example" }', "field 'lookup.url': 'crm.example' must be an https"),
        (
            'lookup = { url = "https://crm.example/l", timeout = 0 }',
            "field 'lookup.timeout': Input should be greater than 0",
        ),
        (
            'lookup = { url = "https://crm.example/l", timeout = 11 }',
            "field 'lookup.timeout': Input should be less than or equal to 10",
        ),
        (
            'lookup = { url = "https://crm.example/l", tmeout = 1 }',
            "field 'lookup.tmeout': unknown key; did you mean 'timeout'?",
        ),
    ],
)
def test_a_bad_lookup_names_the_rule_and_field(written: str, problem: str) -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes(LOOKUP_RULE + written, source="routes.toml")
    [line] = caught.value.problems
    assert line.startswith("routes.toml: rule 'sales' (#1): ") and problem in line
