"""The paths Twilio is told to call: the app serves them, and the TwiML the bridge
writes, the calls it places and `callbridge doctor --fix` point Twilio at them."""

INBOUND_PATH = "/twilio/inbound"
STATUS_PATH = "/twilio/status"
OUTBOUND_ANSWER_PATH = "/twilio/outbound-answer"
DIAL_COMPLETE_PATH = "/twilio/dial-complete"
VOICEMAIL_COMPLETE_PATH = "/twilio/voicemail-complete"
HEALTH_PATH = "/healthz"
