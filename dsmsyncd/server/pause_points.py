"""Named points where a test can freeze the server, to kill it exactly there.

Crash tests need the server stopped at a precise step (say, between the row write and
its commit) without relying on a file being "big enough" to take long. When the
environment variable ``DSMSYNCD_TEST_PAUSE_AT`` names a point, the server prints
``dsmsyncd serve: paused at POINT`` on stdout when it reaches it and then waits
forever; the test reads that line and sends SIGKILL. Without the variable (always, in
production) a point costs one dictionary lookup.

Points: ``apply-before-commit`` (rows written, DuckDB transaction not committed),
``apply-after-rows`` (rows committed, the metadata not yet published),
``upload-mid-chunk`` (the first piece of a chunk or file written, the rest not received),
``parse-before-output-schema`` (input schema stored, the first output schema not).
"""

from __future__ import annotations

import asyncio
import os
import threading

ENV = "DSMSYNCD_TEST_PAUSE_AT"
APPLY_BEFORE_COMMIT = "apply-before-commit"
APPLY_AFTER_ROWS = "apply-after-rows"
UPLOAD_MID_CHUNK = "upload-mid-chunk"
PARSE_BEFORE_OUTPUT_SCHEMA = "parse-before-output-schema"
# A step that fails once (say, SQLite full or locked while publishing an apply's
# metadata): ``DSMSYNCD_TEST_FAIL_ONCE_AT`` names it; the variable is consumed.
FAIL_ONCE_ENV = "DSMSYNCD_TEST_FAIL_ONCE_AT"
APPLY_PUBLISH = "apply-publish"


def _reached(point: str) -> bool:
    if os.environ.get(ENV) != point:
        return False
    print(f"dsmsyncd serve: paused at {point}", flush=True)
    return True


def pause_thread(point: str) -> None:
    """In a worker thread: block it for good if ``point`` is the one asked for."""
    if _reached(point):
        threading.Event().wait()


async def pause(point: str) -> None:
    """On the event loop: never return if ``point`` is the one asked for."""
    if _reached(point):
        await asyncio.Event().wait()


def fail_once(point: str) -> None:
    """Raise once if ``point`` is the one asked for (then never again in this process)."""
    if os.environ.get(FAIL_ONCE_ENV) == point:
        del os.environ[FAIL_ONCE_ENV]
        raise OSError(f"test failure injected at {point}")
