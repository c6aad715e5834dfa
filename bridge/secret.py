"""`Secret`: a string that keeps itself out of logs, reprs and tracebacks."""

from __future__ import annotations

# Dynamic variables named so reach an agent's tools but are never stored in clear
# or shown (ElevenLabs' convention).
SECRET_PREFIX = "secret__"  # noqa: S105 - a name prefix, not a password


def is_secret_variable(name: object) -> bool:
    return str(name).startswith(SECRET_PREFIX)


class Secret:
    """A string that does not show itself in repr(), str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
