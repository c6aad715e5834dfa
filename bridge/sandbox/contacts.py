"""The sandbox's contacts file: one row per kind of callee the virtual phone plays, for
trying a campaign (`callbridge campaign DIR/contacts.csv ...`, the banner's line).

Written once, then kept: a person may edit it (add rows, change the names) and
restart, as with routes.toml.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bridge.sandbox.numbers import CALLER
from bridge.sandbox.virtual_phone import CALLEES

CONTACTS_FILE = "contacts.csv"
_NUMBER_OF = {behaviour: number for number, behaviour in CALLEES.items()}
# Every column but `phone` is a dynamic variable of the row's call.
EXAMPLE_CONTACTS = f"""\
phone,name,plays
{CALLER},Ada,answers
{_NUMBER_OF["busy"]},Grace,busy
{_NUMBER_OF["no-answer"]},Alan,no-answer
{_NUMBER_OF["machine"]},Edsger,machine
"""
# Busy, no-answer and the machine are retried once, soon; the sandbox's callees are in
# California, and the default calling hours (09:00-20:00, Monday to Saturday, in the
# callee's zone) would leave a demo at night or on a Sunday waiting: any time here.
RETRY_DELAY = 5
CAMPAIGN_OPTIONS = (
    "--machine-detection",
    "--retry-on",
    "busy,no-answer,machine",
    "--retry-attempts",
    "1",
    "--retry-delay",
    str(RETRY_DELAY),
    "--hours",
    "00:00-23:59",
    "--days",
    "mon,tue,wed,thu,fri,sat,sun",
    "--allow-outside-legal-hours",
)


def contacts_file(directory: Path) -> Path:
    """DIR/contacts.csv, written when missing (an edited one is kept)."""
    path = directory / CONTACTS_FILE
    if not path.exists():
        path.write_text(EXAMPLE_CONTACTS, encoding="utf-8")
    return path


def campaign_command(contacts: Path, bridge_url: str) -> str:
    """The command line that runs the contacts file as a campaign on this sandbox."""
    argv = ["callbridge", "campaign", str(contacts), *CAMPAIGN_OPTIONS, "--url", bridge_url]
    return shlex.join(argv)
