"""Twilio's url-encoded webhook forms, parsed once and kept with repeated names."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote


class Form:
    """The fields of a form post, in order; `get` gives the first value of a name.

    It also has the shape twilio's RequestValidator reads (iterating names,
    `getall`), so the signature check needs no copy of the fields.
    """

    __slots__ = ("_pairs", "_values")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    @classmethod
    def parse(cls, body: bytes) -> Form:
        """Same result as `urllib.parse.parse_qsl(..., keep_blank_values=True)`.

        That function costs more than anything else in a webhook (it unquotes every
        piece); Twilio's fields are mostly plain, so only pieces with '%' or '+' are
        unquoted here.
        """
        pairs = []
        for field in body.decode("latin-1").split("&"):
            if field:
                name, _, value = field.partition("=")
                pairs.append((_unquote(name), _unquote(value)))
        return cls(pairs)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        return self._values[name]

    def grouped(self) -> dict[str, list[str]]:
        """Every value of every name, in order: a copy, as `parse_qs` would give it."""
        return {name: list(values) for name, values in self._values.items()}

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _unquote(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = unquote(text, encoding="utf-8", errors="replace")
    return text
