"""systemd's sd_notify protocol, without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the unit started,
and with ``WatchdogSec=`` it restarts a daemon whose ``WATCHDOG=1`` pings stop. Outside
systemd (a terminal, Kubernetes) ``NOTIFY_SOCKET`` is unset and every call is a no-op.
A failed send is logged and reported as ``False``, never raised: the daemon must not
stop because its supervisor's socket went away.

Protocol: https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

__all__ = [
    "keep_watchdog",
    "notify",
    "ready",
    "status",
    "stopping",
    "watchdog",
    "watchdog_interval",
]

logger = logging.getLogger("dsmsyncd.observe.sdnotify")

# A datagram to systemd is queued at once; the timeout only bounds a full receive queue,
# which would otherwise block the event loop.
SEND_TIMEOUT_S = 1.0


def _address(value: str) -> str | None:
    if value.startswith("@"):
        # Abstract namespace: the leading "@" stands for a NUL byte.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # vsock: and other address families are not supported: treat as absent.
    return None


def notify(message: str) -> bool:
    """Send ``message`` (``KEY=value`` lines) to systemd; False if not under systemd or failed."""
    value = os.environ.get("NOTIFY_SOCKET", "")
    if not value:
        return False
    address = _address(value)
    if address is None:
        logger.warning("NOTIFY_SOCKET %r is not a unix socket address; not notifying", value)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        logger.warning("cannot notify systemd at %s: %s", value, exc)
        return False
    return True


def _one_line(text: str) -> str:
    # A newline would start another assignment (say, READY=1) inside the status text.
    return " ".join(text.splitlines())


def ready(status_text: str | None = None) -> bool:
    """Startup finished: systemd considers the unit started (``READY=1``)."""
    message = "READY=1" if status_text is None else f"READY=1\nSTATUS={_one_line(status_text)}"
    return notify(message)


def stopping() -> bool:
    """Draining has begun (``STOPPING=1``): systemd shows the unit as deactivating."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status`` (``STATUS=...``)."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog() -> bool:
    """Liveness ping (``WATCHDOG=1``); send it at least every ``watchdog_interval() / 2``."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds within which systemd expects a ping, or None when no watchdog is set for us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        # Inherited from a parent that systemd watches, not us.
        return None
    return int(usec) / 1_000_000


async def keep_watchdog(interval_s: float, healthy: Callable[[], Awaitable[bool]]) -> None:
    """Ping ``WATCHDOG=1`` every ``interval_s / 2`` while ``healthy()`` holds; until cancelled.

    Skipping the pings while unhealthy is the point: systemd then restarts a daemon that
    is alive but stuck (say, on a state store that no longer answers). A stuck event loop
    stops them by itself. The first unhealthy look and the recovery are logged once each.
    """
    period = interval_s / 2
    loop = asyncio.get_running_loop()
    was_healthy = True
    while True:
        began = loop.time()
        ok = await healthy()
        if ok:
            watchdog()
        if ok != was_healthy:
            if ok:
                logger.info("healthy again: watchdog pings resume")
            else:
                logger.error(
                    "not healthy: watchdog pings stop; systemd restarts the daemon after %gs",
                    interval_s,
                )
            was_healthy = ok
        await asyncio.sleep(max(0.0, period - (loop.time() - began)))
