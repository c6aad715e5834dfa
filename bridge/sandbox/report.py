"""What the sandbox shows as it happens: one timestamped line per thing, by source.

Sources: `bridge` (the bridge's own log lines), `elevenlabs` and `twilio` (what the
stand-ins receive), `phone` (the virtual phone). `secret__` variables show as `***`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from bridge.secret import is_secret_variable

HIDDEN = "***"


def _stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


class Reporter:
    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self.out = out or _stdout

    def __call__(self, source: str, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        for number, line in enumerate(text.splitlines() or [""]):
            self.out(f"{stamp} {source:<10} {line}" if number == 0 else f"{' ' * 20}{line}")

    def plain(self, text: str = "") -> None:
        self.out(text)

    @contextlib.contextmanager
    def bridge_log(self) -> Iterator[None]:
        """Send the bridge's log lines here while the sandbox runs; then put things back."""
        logger = logging.getLogger("bridge")
        handler = _ReporterHandler(self)
        saved = (logger.level, logger.propagate)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]


class _ReporterHandler(logging.Handler):
    def __init__(self, report: Reporter) -> None:
        super().__init__()
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            text = message if record.levelno == logging.INFO else f"{record.levelname} {message}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.report("bridge", text)
        except Exception:
            self.handleError(record)


def variables(values: Mapping[str, Any]) -> str:
    """Dynamic variables as `name=value` pairs, secret values hidden."""
    return " ".join(
        f"{name}={HIDDEN if is_secret_variable(name) else value!r}"
        for name, value in values.items()
    )
