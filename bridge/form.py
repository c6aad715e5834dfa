"""Twilio's url-encoded webhook forms, parsed once and kept with repeated names."""

from __future__ import annotations

from urllib.parse import unquote


class Form:
    """The fields of a form post, in order; `get` gives the first value of a name."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._first: dict[str, str] = {}
        for name, value in pairs:
            self._first.setdefault(name, value)

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
        return self._first.get(name, default)

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


def _unquote(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = unquote(text, encoding="utf-8", errors="replace")
    return text
