"""When to look at a drop folder again: watchfiles events, re-armed when the root is
replaced or comes back.

The events only wake the folder's scan (``folder.py``); a lost one costs latency,
never a file. A root that cannot be watched (missing, a file system without inotify)
is said once and retried every ``WATCH_RETRY_S``; the periodic rescan covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from watchfiles import awatch

# The folder source's lines, whichever of its modules writes them.
logger = logging.getLogger("dsmsyncd.sources.folder")

# watchfiles groups changes for at most this long; the gate waits min_age anyway.
WATCH_DEBOUNCE_MS = 500
WATCH_STEP_MS = 50
# How often the watch thread wakes without events, to notice a replaced root.
WATCH_TIMEOUT_MS = 5_000
# Between attempts to (re)start watching a missing or unwatchable root.
WATCH_RETRY_S = 5.0


@dataclass
class WatchHealth:
    """Whether events are being delivered now: a watch is armed on the root (it has
    answered once, with events or its timeout). The folder's rescans lean on it."""

    armed: bool = False


async def watch(
    name: str,
    root: Path,
    poll_s: float,
    halt: asyncio.Event,
    wake: asyncio.Event,
    health: WatchHealth,
) -> None:
    """Set ``wake`` on every event batch; re-arm when the root is replaced or returns."""
    reported = False
    while not halt.is_set():
        health.armed = False  # until the (new) watch answers
        armed = _dir_id(root)
        if armed is not None:
            try:
                async with contextlib.aclosing(
                    awatch(
                        root,
                        watch_filter=None,
                        debounce=WATCH_DEBOUNCE_MS,
                        step=WATCH_STEP_MS,
                        stop_event=halt,
                        rust_timeout=WATCH_TIMEOUT_MS,
                        yield_on_timeout=True,
                        recursive=True,
                    )
                ) as batches:
                    async for batch in batches:
                        reported, health.armed = False, True
                        if batch:
                            wake.set()
                        if _dir_id(root) != armed:
                            wake.set()
                            break
                    else:
                        return  # halted
                continue  # the root was replaced: watch the new one at once
            except (OSError, RuntimeError) as exc:
                health.armed = False
                if not reported:
                    logger.warning(
                        "source %s: cannot watch %s for events (%s); relying on the "
                        "rescan every %.0fs",
                        name,
                        root,
                        exc,
                        poll_s,
                    )
                    reported = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WATCH_RETRY_S):
                await halt.wait()


def _dir_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
