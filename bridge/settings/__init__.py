"""Settings, read once from the environment and validated at startup.

`schema` (the Settings fields and `from_env`), `reader` (typed values from variables),
`problems` (SettingsError: what is malformed), `diagnostics` (what is missing or risky).
"""

from bridge.settings.diagnostics import Note, Severity
from bridge.settings.problems import Problem, SettingsError
from bridge.settings.schema import (
    DEFAULT_DATABASE_URL,
    DEFAULT_ELEVENLABS_API_BASE,
    DEFAULT_INBOUND_DEADLINE,
    DEFAULT_TWILIO_API_BASE,
    MAX_INBOUND_DEADLINE,
    Settings,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_ELEVENLABS_API_BASE",
    "DEFAULT_INBOUND_DEADLINE",
    "DEFAULT_TWILIO_API_BASE",
    "MAX_INBOUND_DEADLINE",
    "Note",
    "Problem",
    "Settings",
    "SettingsError",
    "Severity",
]
