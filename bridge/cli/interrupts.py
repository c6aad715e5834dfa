"""Ctrl-C while a call or campaign runs: handled in the event loop, press by press."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any


def current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


@contextlib.contextmanager
def on_ctrl_c(first: Callable[[], object], again: Callable[[], object]) -> Iterator[None]:
    """Run `first` on the first Ctrl-C and `again` on the next ones, in the event loop.

    asyncio.run's own handling would cancel every task on the second Ctrl-C, and a
    request cancelled inside an in-process bridge releases its Idempotency-Key even
    when Twilio may already have placed the call.
    """
    loop = asyncio.get_running_loop()
    presses = 0

    def pressed() -> None:
        nonlocal presses
        presses += 1
        (first if presses == 1 else again)()

    previous = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, pressed)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
