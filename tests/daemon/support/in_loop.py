"""The daemon run in this event loop: started before the block, drained after it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from dsmsyncd.daemon.lifecycle import Daemon


@contextlib.asynccontextmanager
async def daemon_running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """``daemon.run()`` as a task, yielded once it has started; stopped on exit, and it must
    then end with exit code 0 (drained, nothing left running)."""
    runner = asyncio.create_task(daemon.run())
    try:
        started = asyncio.ensure_future(daemon.started.wait())
        await asyncio.wait([started, runner], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        assert daemon.started.is_set(), "the daemon did not start"
        yield daemon
    finally:
        daemon.stop.set()
        async with asyncio.timeout(30):
            code = await runner
        assert code == 0
