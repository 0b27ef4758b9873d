"""Watch a logger for the lines that say a thing: how often, the last one, the first as an event.

Log lines are what operators see; a test that the daemon said something once (and not
once per retry) counts them here instead of parsing captured output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator


class LogLines(logging.Handler):
    """Records of a logger whose message contains ``needle``."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.count = 0
        self.text = ""  # the last such message
        self.seen = asyncio.Event()  # set at the first

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.needle in message:
            self.count += 1
            self.text = message
            self.seen.set()


@contextlib.contextmanager
def watching(logger: str, needle: str, level: int | None = None) -> Iterator[LogLines]:
    """``LogLines`` on ``logger`` while the block runs (at ``level`` if given)."""
    lines = LogLines(needle)
    log = logging.getLogger(logger)
    before = log.level
    log.addHandler(lines)
    if level is not None:
        log.setLevel(level)
    try:
        yield lines
    finally:
        log.setLevel(before)
        log.removeHandler(lines)
