"""The daemon's signal handlers, on the event loop: SIGTERM/SIGINT stop, SIGHUP reloads.

Handlers are installed on the running loop (``loop.add_signal_handler``), so they run
as ordinary callbacks between two steps of the daemon, never inside one; and they are
removed at shutdown, so that an in-process daemon (the demo, the tests) gives the
signals back to whoever had them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install(on_stop: Callable[[signal.Signals], None], on_reload: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_stop, sig)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_reload)


def remove() -> None:
    loop = asyncio.get_running_loop()
    for sig in (*STOP_SIGNALS, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
