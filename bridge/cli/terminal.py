"""Text from the call log on the operator's terminal, with nothing a terminal would obey.

A call record holds what callers wrote (a SIP `From`, transcripts, summaries) and what
the bridge at --url answered. Printed raw, an escape sequence in it could write the
operator's clipboard (OSC 52), clear the screen, or retitle the window; a carriage
return or newline could make up a line that looks like another call; a right-to-left
override could show one name as another. `printable` shows such characters as
Python-style escapes (`\\x1b`, `\\u202e`), visible and harmless, and leaves every
other character, accented letters and emoji included, as it is.
"""

from __future__ import annotations

import re

# C0 controls (tab, CR and LF included: the CLI draws its own lines), DEL, C1 controls
# (0x9b is an 8-bit CSI to many terminals), the bidirectional overrides, embeddings,
# isolates and marks, line and paragraph separators, and lone surrogates (which stdout
# cannot even encode).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """`text` with every character a terminal could act on shown as an escape."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}.get(code)
    if named:
        return named
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
