"""Twilio: the parsed webhook form, request signatures, webhook paths, and the REST
client (calls, numbers)."""
