"""The paths Twilio is told to call: the app serves them, and the TwiML the bridge
writes, the calls it places and `callbridge doctor --fix` point Twilio at them."""

INBOUND_PATH = "/twilio/inbound"
STATUS_PATH = "/twilio/status"
OUTBOUND_ANSWER_PATH = "/twilio/outbound-answer"
DIAL_COMPLETE_PATH = "/twilio/dial-complete"
VOICEMAIL_COMPLETE_PATH = "/twilio/voicemail-complete"
RECORDING_STATUS_PATH = "/twilio/recording-status"
HEALTH_PATH = "/healthz"

# What a recording status callback is about, in its URL's `kind` query parameter (set
# by the bridge, covered by the signature): a voicemail, or a recorded call.
RECORDING_KINDS = frozenset({"voicemail", "recording"})
# The recording status events the bridge asks for (Twilio sends "completed" by default).
RECORDING_EVENTS = ("completed", "absent")


def recording_status_url(kind: str, *, base: str = "") -> str:
    """Where Twilio posts a recording's status: relative (TwiML) or absolute (REST)."""
    if kind not in RECORDING_KINDS:
        raise ValueError(f"kind must be one of {sorted(RECORDING_KINDS)}, got {kind!r}")
    return f"{base}{RECORDING_STATUS_PATH}?kind={kind}"
