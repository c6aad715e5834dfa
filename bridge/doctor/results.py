"""What a doctor check found: one line of the report, and the report itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Status = Literal["pass", "fail", "skip", "fixed"]
# Secrets shorter than this are not searched for: replacing every "a" would garble
# the report and hide nothing worth hiding.
MIN_SECRET_LENGTH = 4
REDACTED = "**********"


@dataclass(frozen=True)
class CheckResult:
    name: str  # stable, for machines: "twilio.number.voice"
    title: str  # for people: "twilio number +14155550100 voice webhook"
    status: Status
    detail: str
    fix: str | None = None  # what to do about a failure
    # Values a --fix replaced (or may have: on a fail), so that the change can be undone.
    previous: dict[str, str] | None = None
    fixable: bool = False  # `callbridge doctor --fix` can fix this failure

    @property
    def ok(self) -> bool:
        """Passed, fixed (and confirmed by reading back), or not applicable."""
        return self.status != "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "fixable": self.fixable,
            "previous": self.previous,
        }


def passed(name: str, title: str, detail: str) -> CheckResult:
    return CheckResult(name, title, "pass", detail)


def failed(
    name: str,
    title: str,
    detail: str,
    fix: str | None = None,
    *,
    fixable: bool = False,
    previous: dict[str, str] | None = None,
) -> CheckResult:
    """`previous`: a change was sent but not confirmed; these are the values it may
    have replaced."""
    return CheckResult(name, title, "fail", detail, fix, previous=previous, fixable=fixable)


def skipped(name: str, title: str, detail: str) -> CheckResult:
    return CheckResult(name, title, "skip", detail)


@dataclass(frozen=True)
class Report:
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status == status)

    def redacted(self, secrets: list[str]) -> Report:
        """The same report with every secret value replaced, wherever it came from
        (an upstream's error message may echo what it was sent)."""
        hidden = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

        def clean(text: str) -> str:
            for secret in hidden:
                text = text.replace(secret, REDACTED)
            return text

        def clean_check(check: CheckResult) -> CheckResult:
            previous = (
                {key: clean(value) for key, value in check.previous.items()}
                if check.previous is not None
                else None
            )
            return replace(
                check,
                title=clean(check.title),
                detail=clean(check.detail),
                fix=clean(check.fix) if check.fix is not None else None,
                previous=previous,
            )

        return Report(tuple(clean_check(check) for check in self.checks))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.to_json() for check in self.checks]}
