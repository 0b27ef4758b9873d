"""When to look at a drop folder again, and where: watchfiles events, re-armed when the
root is replaced or comes back.

The events name the paths that changed; the folder looks at those alone
(``folder.py``). A lost event costs latency, never a file: the full scan every
``poll_interval`` is the safety net. What cannot be trusted to name every change asks
for a full scan instead (``WatchNews.rescan``): a watch re-armed after it failed or the
root was replaced (events were not delivered meanwhile), a flood of events (the kind
that overflows the kernel's event queue, which watchfiles does not report), a path
outside the root or the root itself. A root that cannot be watched (missing, a file
system without inotify) is said once and retried every ``WATCH_RETRY_S``; the periodic
rescan covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import Change, awatch

# The folder source's lines, whichever of its modules writes them.
logger = logging.getLogger("dsmsyncd.sources.folder")

# watchfiles groups changes for at most this long; the gate waits min_age anyway.
WATCH_DEBOUNCE_MS = 500
WATCH_STEP_MS = 50
# How often the watch thread wakes without events, to notice a replaced root.
WATCH_TIMEOUT_MS = 5_000
# Between attempts to (re)start watching a missing or unwatchable root.
WATCH_RETRY_S = 5.0
# Changes in one batch past which the folder is scanned whole rather than path by path:
# a flood this size (half of inotify's default queue of 16,384 events) is when the
# kernel drops events, and watchfiles passes on only events that name a path (its
# src/lib.rs): the kernel's overflow notice names none.
FLOOD_CHANGES = 8_192


@dataclass
class WatchNews:
    """What the watch has seen since the folder last looked, and whether events are
    being delivered now (``armed``: a watch on the root has answered once).

    ``paths``: relative paths named by events; ``rescan``: events may have been lost or
    name something a path look cannot judge, so the next look must be a full scan.
    """

    armed: bool = False
    rescan: bool = False
    paths: set[str] = field(default_factory=set)

    def take(self) -> tuple[set[str], bool]:
        """The paths and the rescan flag gathered so far; both start afresh."""
        paths, rescan = self.paths, self.rescan
        self.paths, self.rescan = set(), False
        return paths, rescan

    def add(self, root: str, changed: Collection[tuple[Change, str]]) -> None:
        """Record one batch of (change, absolute path) from watchfiles."""
        if len(changed) > FLOOD_CHANGES:
            self.rescan = True
            return
        prefix = root.rstrip(os.sep) + os.sep
        for _, path in changed:
            if path.startswith(prefix):
                self.paths.add(path[len(prefix) :])
            else:  # the root itself, or a path the watch should not name
                self.rescan = True


async def watch(
    name: str,
    root: Path,
    poll_s: float,
    halt: asyncio.Event,
    wake: asyncio.Event,
    news: WatchNews,
) -> None:
    """Record every event batch in ``news`` and set ``wake``; re-arm when the root is
    replaced or returns (asking for a full scan then: events were not delivered)."""
    reported = False
    first = True
    while not halt.is_set():
        news.armed = False  # until the (new) watch answers
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
                        if not news.armed and not first:
                            news.rescan = True  # re-armed: what happened meanwhile is unknown
                            wake.set()
                        reported, news.armed, first = False, True, False
                        if batch:
                            news.add(str(root), batch)
                            wake.set()
                        if _dir_id(root) != armed:
                            news.rescan = True
                            wake.set()
                            break
                    else:
                        return  # halted
                continue  # the root was replaced: watch the new one at once
            except (OSError, RuntimeError) as exc:
                news.armed, first = False, False
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
        else:
            first = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WATCH_RETRY_S):
                await halt.wait()


def _dir_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
