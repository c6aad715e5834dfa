"""The sandbox's pretend phone numbers, and the routing rules it starts with.

The rules show each kind of decision with numbers the banner suggests; a person
edits the written file (or passes --routes) to try their own.
"""

from __future__ import annotations

from pathlib import Path

OUR_NUMBER = "+14155550100"  # the Twilio number: inbound calls go to it, outbound come from it
SPANISH_LINE = "+14155550102"
AFTER_HOURS_LINE = "+14155550103"  # forwarded to a desk that never answers: voicemail
CALLER = "+14155550123"  # a person who answers when called
BLOCKED_CALLER = "+14155550199"
UK_CALLER = "+442079460123"
DESK = "+14155550111"
UNANSWERED_DESK = "+14155550125"  # the virtual phone lets it ring out (no-answer)
DEFAULT_AGENT = "agent_sandbox"
AGENT_PHONE_NUMBER_ID = "phnum_sandbox"

ROUTES_FILE = "routes.toml"
EXAMPLE_ROUTES = f"""\
# Routing rules for the callbridge sandbox. Edit, then restart `callbridge sandbox`
# (or run it with --routes FILE). The README's "Routing rules" lists every key.
# Rules are tried in order; a call no rule takes goes to the default agent.
#
#   callbridge simulate inbound --from {CALLER} --to {OUR_NUMBER}        -> main line
#   callbridge simulate inbound --from anonymous --to {OUR_NUMBER}          -> withheld numbers
#   callbridge simulate inbound --from {BLOCKED_CALLER} --to {OUR_NUMBER}   -> blocklist
#   callbridge simulate inbound --from {UK_CALLER} --to {OUR_NUMBER}       -> uk callers
#   callbridge simulate inbound --from {CALLER} --to {SPANISH_LINE}        -> spanish line
#   callbridge simulate inbound --from {CALLER} --to {AFTER_HOURS_LINE}        -> after hours

[fallback]
action = "say"
message = "Sorry, our assistant is unavailable right now. Please call back later."

[[rules]]
name = "blocklist"
when = {{ callers = ["{BLOCKED_CALLER}"] }}
action = "reject"
reason = "busy"

[[rules]]
name = "withheld numbers"
when = {{ anonymous = true }}
action = "say"
message = "We do not accept calls from withheld numbers. Goodbye."

[[rules]]
name = "spanish line"
when = {{ called = ["{SPANISH_LINE}"] }}
action = "agent"
agent_id = "agent_sandbox_es"
language = "es"
first_message = "Hola, ¿en qué puedo ayudarle?"

[[rules]]
name = "uk callers"
when = {{ caller_countries = ["GB"] }}
action = "forward"
to = ["{DESK}"]
message = "Connecting you to our front desk."

# Nobody answers the desk: the caller leaves a voicemail, which the bridge fetches
# into the audio store (see `callbridge calls show CALL_SID`).
[[rules]]
name = "after hours"
when = {{ called = ["{AFTER_HOURS_LINE}"] }}
action = "forward"
to = ["{UNANSWERED_DESK}"]
timeout = 5
message = "Trying the front desk."
on_no_answer = {{ action = "voicemail", message = "Nobody is free. Please leave a message." }}

[[rules]]
name = "main line"
when = {{ called = ["{OUR_NUMBER}"] }}
action = "agent"

# {{from}} and {{from_city}} are filled from the call. secret__ variables reach the
# agent's tools but never the LLM, the bridge's log or the call log.
[rules.dynamic_variables]
caller = "{{from}}"
city = "{{from_city}}"
secret__crm_token = "sandbox-crm"
"""


def routes_file(directory: Path, given: Path | None) -> Path:
    """The rules to run: the given file, else the sandbox's own (written once, then kept)."""
    if given is not None:
        return given
    path = directory / ROUTES_FILE
    if not path.exists():
        path.write_text(EXAMPLE_ROUTES, encoding="utf-8")
    return path
