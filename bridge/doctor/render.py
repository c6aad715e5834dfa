"""The report for people (one line per check, then what to do) and for machines.

The text masks passwords in URLs (a webhook may be https://user:pass@host/...,
Twilio's basic auth): `user:***@`. The JSON keeps them, so that a value it shows
under "previous" can be put back as it was."""

from __future__ import annotations

import json
import re

from bridge.doctor.results import CheckResult, Report, Status

LABELS = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "fixed": "FIXED"}
SUMMARY: tuple[tuple[Status, str], ...] = (
    ("pass", "passed"),
    ("fixed", "fixed"),
    ("fail", "failed"),
    ("skip", "skipped"),
)
INDENT = " " * 6
# scheme://user:password@host: the password runs to the authority's last "@" (as in
# urlsplit), so an unescaped "@" in it is masked too.
URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s:]*:)[^/?#\s]*@")


def render_text(report: Report) -> str:
    lines: list[str] = []
    for check in report.checks:
        lines.extend(_check_lines(check))
    summary = ", ".join(
        f"{report.count(status)} {word}"
        for status, word in SUMMARY
        if report.count(status) or status == "fail"
    )
    lines.append("")
    lines.append(("OK: " if report.ok else "NOT OK: ") + summary)
    if any(check.fixable and check.status == "fail" for check in report.checks):
        lines.append("Some failures can be fixed for you: run `callbridge doctor --fix`.")
    return mask_passwords("\n".join(lines) + "\n")


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _check_lines(check: CheckResult) -> list[str]:
    first, *more = check.detail.splitlines() or [""]
    lines = [f"{LABELS[check.status]:<5} {check.title}: {first}"]
    lines.extend(INDENT + line for line in more)
    if check.previous:
        was = ", ".join(f"{field}={value or '(none)'}" for field, value in check.previous.items())
        lines.append(f"{INDENT}was: {was}")
    if check.status == "fail" and check.fix:
        lines.append(f"{INDENT}fix: {check.fix}")
    return lines


def mask_passwords(text: str) -> str:
    """`https://user:secret@host` -> `https://user:***@host`, wherever a URL is."""
    return URL_PASSWORD.sub(r"\g<head>***@", text)
