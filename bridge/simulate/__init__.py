"""Twilio's voice webhooks imitated, for `callbridge simulate` and the sandbox."""
