"""What is wrong with the environment: one `Problem` per malformed variable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A malformed variable and what is wrong with it; never its value if secret."""

    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


class SettingsError(ValueError):
    """One or more settings are malformed; each problem names the variable.

    `details` is for programs (the doctor keeps the other variables); `problems`,
    the same as text ("NAME: what is wrong"), is for people."""

    def __init__(self, details: Sequence[Problem]) -> None:
        self.details = tuple(details)
        self.problems = [str(problem) for problem in self.details]
        super().__init__("invalid settings:\n  " + "\n  ".join(self.problems))
