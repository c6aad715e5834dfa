"""Twilio: the credentials work, TWILIO_PHONE_NUMBER is on the account, and its calls
and status callbacks come to this bridge; with --fix, the number is updated through
the REST API and read back, and the values it replaced are kept for undoing it.

The number is only pointed at PUBLIC_BASE_URL when Twilio can reach it there: the
URL must be a public https origin (Settings.twilio_cannot_reach) and its /healthz
must have answered as the bridge does (the public check, which runs first), unless
--skip-public said not to look."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed, skipped
from bridge.doctor.upstream import describe, no_contact, surely_not_applied
from bridge.twilio.numbers import PhoneNumber, TwilioNumbers
from bridge.twilio.paths import HEALTH_PATH, INBOUND_PATH, STATUS_PATH
from bridge.twilio.rest import TwilioError

SERVICE = "Twilio"
CREDENTIALS = ("twilio.credentials", "twilio credentials")
NEEDS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE")
AGAIN = "Twilio may be having trouble (status.twilio.com): run the doctor again later"
UNCONFIRMED = (
    "run `callbridge doctor` again to see the number as it is now; to undo the change, set the "
    "values shown under was: in the Twilio console (Phone Numbers > your number)"
)


@dataclass(frozen=True)
class Wiring:
    """One aspect of the number's configuration: what it should be, and how to say it."""

    name: str
    title: str
    # field -> the value it needs (voice_url, voice_method, ...); "" means none.
    wanted: Callable[[str], dict[str, str]]
    consequence: str
    console: Callable[[str], str]  # how to set it by hand, given the public base URL

    def wrong(self, number: PhoneNumber, base: str) -> dict[str, str]:
        """field -> its current value, for the fields that are not as wanted."""
        return {
            field: number.config.get(field, "")
            for field, value in self.wanted(base).items()
            if _normal(field, number.config.get(field, "")) != _normal(field, value)
        }


VOICE = Wiring(
    name="twilio.number.voice",
    title="voice webhook",
    wanted=lambda base: {
        "voice_url": base + INBOUND_PATH,
        "voice_method": "POST",
        # Either of these makes Twilio ignore voice_url.
        "voice_application_sid": "",
        "trunk_sid": "",
    },
    consequence="calls to the number do not reach the bridge",
    console=lambda base: (
        "run `callbridge doctor --fix`, or in the Twilio console (Phone Numbers > your number > "
        f'Voice configuration) set "A call comes in" to Webhook {base}{INBOUND_PATH}, '
        "HTTP POST, with no TwiML App or SIP trunk"
    ),
)
STATUS = Wiring(
    name="twilio.number.status_callback",
    title="status callback",
    wanted=lambda base: {"status_callback": base + STATUS_PATH, "status_callback_method": "POST"},
    consequence="the call log never learns how inbound calls end",
    console=lambda base: (
        "run `callbridge doctor --fix`, or in the Twilio console set the number's "
        f'"Call status changes" to {base}{STATUS_PATH}, HTTP POST'
    ),
)
WIRINGS = (VOICE, STATUS)


@dataclass(frozen=True)
class FixGate:
    """Whether --fix may point the number at PUBLIC_BASE_URL: `refused` is why not
    and what to do about it; `note` goes with a change made without every check."""

    refused: tuple[str, str] | None = None
    note: str | None = None


def fix_gate(env: Environment, healthz: CheckResult | None) -> FixGate:
    """`healthz`: the public check's line, or None when --skip-public kept it from
    calling /healthz."""
    base = env.settings.public_base_url
    cannot = env.settings.twilio_cannot_reach()
    if cannot is not None:
        setting = f"PUBLIC_BASE_URL {base}" if base else "PUBLIC_BASE_URL"
        return FixGate(
            refused=(
                f"not fixed: {setting} {cannot}",
                "set PUBLIC_BASE_URL to the public https origin Twilio reaches the bridge at "
                "(like https://your-app.herokuapp.com), then run `callbridge doctor --fix` again",
            )
        )
    if healthz is None:
        return FixGate(
            note=f"{base}{HEALTH_PATH} was not checked (--skip-public): make sure the "
            "bridge answers there"
        )
    if healthz.status != "pass":
        return FixGate(
            refused=(
                f"not fixed: the bridge does not answer at PUBLIC_BASE_URL ({healthz.detail}), "
                "so Twilio's calls would fail there",
                f"start or deploy the bridge so that {base}{HEALTH_PATH} answers (see the "
                "public url line), then run `callbridge doctor --fix` again",
            )
        )
    return FixGate()


async def check_twilio(
    env: Environment,
    twilio: TwilioNumbers | None,
    *,
    fix: bool,
    healthz: CheckResult | None = None,
) -> list[CheckResult]:
    """Credentials, then the number, then its voice webhook and status callback.

    With `fix`, the number is only changed as `fix_gate(env, healthz)` allows: pass the
    public check's line, already run, or None for --skip-public."""
    phone = env.settings.twilio_phone_number
    label = f"twilio number {phone or '(TWILIO_PHONE_NUMBER)'}"
    number_line = ("twilio.number", label)
    wiring_lines = [(w.name, f"{label} {w.title}") for w in WIRINGS]
    blocker = env.blocker(*NEEDS)
    if blocker is not None or twilio is None:
        reason = f"skipped: {blocker or 'Twilio is not configured'}"
        return [skipped(*line, reason) for line in [CREDENTIALS, number_line, *wiring_lines]]

    credentials = await _check_credentials(twilio, env)
    if not credentials.ok:
        reason = "skipped: the twilio credentials check failed (see above)"
        return [credentials] + [skipped(*line, reason) for line in [number_line, *wiring_lines]]

    blocker = env.blocker("TWILIO_PHONE_NUMBER")
    if blocker is not None:
        return [credentials] + [
            skipped(*line, f"skipped: {blocker}") for line in [number_line, *wiring_lines]
        ]
    try:
        number = await twilio.find_number(phone)
    except TwilioError as exc:
        line = failed(*number_line, f"could not list the account's numbers: {exc}", AGAIN)
        reason = "skipped: the number could not be read"
        return [credentials, line] + [skipped(*wl, reason) for wl in wiring_lines]
    if number is None:
        line = failed(
            *number_line,
            f"not on account {env.settings.twilio_account_sid}",
            "set TWILIO_PHONE_NUMBER to one of this account's numbers (console.twilio.com > "
            "Phone Numbers > Active numbers), or buy or port it to this account",
        )
        reason = "skipped: the number is not on the account"
        return [credentials, line] + [skipped(*wl, reason) for wl in wiring_lines]
    found = passed(*number_line, f"on the account ({number.sid})")

    blocker = env.blocker("PUBLIC_BASE_URL")
    if blocker is not None:
        return [credentials, found] + [skipped(*wl, f"skipped: {blocker}") for wl in wiring_lines]
    base = env.settings.public_base_url
    gate = fix_gate(env, healthz) if fix else None
    return [credentials, found, *await _check_wiring(twilio, number, base, phone, gate)]


async def _check_credentials(twilio: TwilioNumbers, env: Environment) -> CheckResult:
    sid = env.settings.twilio_account_sid
    try:
        account = await twilio.account()
    except TwilioError as exc:
        if exc.status is None:
            return failed(
                *CREDENTIALS,
                no_contact(SERVICE, exc, env.settings.twilio_api_base),
                "check the network (or proxy) and TWILIO_API_BASE, then run the doctor again",
            )
        if exc.status in (401, 403, 404):
            return failed(
                *CREDENTIALS,
                f"rejected for account {sid}: {exc}",
                "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to the Account SID and Auth "
                "Token shown at console.twilio.com > Account info",
            )
        return failed(*CREDENTIALS, f"could not read account {sid}: {exc}", AGAIN)
    status = account.get("status")
    label = f"account {sid}" + (
        f" ({account['friendly_name']})" if account.get("friendly_name") else ""
    )
    if status != "active":
        return failed(
            *CREDENTIALS,
            f"{label} is {status}: it cannot take calls",
            "reactivate the account in the Twilio console, or use an active one",
        )
    return passed(*CREDENTIALS, f"{label} is active")


async def _check_wiring(
    twilio: TwilioNumbers, number: PhoneNumber, base: str, phone: str, gate: FixGate | None
) -> list[CheckResult]:
    """`gate` is None without --fix."""
    wrong = {wiring: wiring.wrong(number, base) for wiring in WIRINGS}
    results: dict[Wiring, CheckResult] = {}
    for wiring, fields in wrong.items():
        title = f"twilio number {phone} {wiring.title}"
        if not fields:
            results[wiring] = passed(wiring.name, title, _describe(wiring, number.config, base))
        elif gate is None:
            detail = f"{_mismatch(wiring, fields, base)}: {wiring.consequence}"
            results[wiring] = failed(wiring.name, title, detail, wiring.console(base), fixable=True)
    to_fix = {wiring: fields for wiring, fields in wrong.items() if fields}
    if to_fix and gate is not None:
        results.update(await _fix(twilio, number, base, phone, to_fix, gate))
    return [results[wiring] for wiring in WIRINGS]


async def _fix(
    twilio: TwilioNumbers,
    number: PhoneNumber,
    base: str,
    phone: str,
    to_fix: dict[Wiring, dict[str, str]],
    gate: FixGate,
) -> dict[Wiring, CheckResult]:
    def title(wiring: Wiring) -> str:
        return f"twilio number {phone} {wiring.title}"

    def each(
        detail: str, fix: str | None = None, *, fixable: bool = False, sent: bool = True
    ) -> dict[Wiring, CheckResult]:
        """The same failure for every line being fixed; once the update was sent, the
        values it may have replaced go with it."""
        return {
            wiring: failed(
                wiring.name,
                title(wiring),
                f"{_mismatch(wiring, fields, base)}; {detail}",
                fix or wiring.console(base),
                fixable=fixable,
                previous=dict(fields) if sent else None,
            )
            for wiring, fields in to_fix.items()
        }

    if gate.refused is not None:
        why, what = gate.refused
        return each(why, what, sent=False)
    note = f"; {gate.note}" if gate.note else ""
    changes = {
        field: wiring.wanted(base)[field] for wiring, fields in to_fix.items() for field in fields
    }
    try:
        await twilio.update_number(number.sid, changes)
    except TwilioError as exc:
        if surely_not_applied(exc):
            return each(f"the fix failed: {describe(SERVICE, exc)}", fixable=True, sent=False)
        # A 5xx or no answer: the number may have been changed all the same.
        reason = describe(SERVICE, exc)
        return each(
            f"the update may have been applied, but could not confirm: {reason}{note}", UNCONFIRMED
        )
    try:
        # Trust what the number says now, not the update's answer.
        after = await twilio.fetch_number(number.sid)
    except TwilioError as exc:
        return each(f"applied, but could not confirm: {describe(SERVICE, exc)}{note}", UNCONFIRMED)
    results: dict[Wiring, CheckResult] = {}
    for wiring, fields in to_fix.items():
        still = wiring.wrong(after, base)
        if still:
            detail = f"{_list(fields)}; updated, but the number still shows {_list(still)}{note}"
            results[wiring] = failed(
                wiring.name,
                title(wiring),
                detail,
                wiring.console(base),
                fixable=True,
                previous=dict(fields),
            )
        else:
            detail = f"now {_describe(wiring, after.config, base)}, confirmed by reading back{note}"
            results[wiring] = CheckResult(
                wiring.name, title(wiring), "fixed", detail, previous=dict(fields)
            )
    return results


def _normal(field: str, value: str) -> str:
    return value.upper() if field.endswith("_method") else value


def _describe(wiring: Wiring, config: dict[str, str], base: str) -> str:
    fields = [field for field, value in wiring.wanted(base).items() if value]
    return ", ".join(f"{field}={config.get(field, '')}" for field in fields)


def _mismatch(wiring: Wiring, fields: dict[str, str], base: str) -> str:
    wanted = wiring.wanted(base)
    return ", ".join(
        f"{field}={value or '(none)'} (wanted {wanted[field] or 'none'})"
        for field, value in fields.items()
    )


def _list(fields: dict[str, str]) -> str:
    return ", ".join(f"{field}={value or '(none)'}" for field, value in fields.items())
