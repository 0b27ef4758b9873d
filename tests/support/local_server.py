"""The local server as every test starts it: its users, how to sign in, its API prefix.

Both wings talk to the same server: the server wing's tests sign in as ``alice`` (and
``bob``, who owns nothing of hers), the daemon wing's as ``robot`` (and ``other``, a
person staging revisions by hand). One user list serves both, so one ``server``
fixture (``tests/conftest.py``) does.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from dsmsyncd.server.main import RunningServer, ServeOptions, start_server

API = "/api/publishing/v1"

ALICE = ("alice", "alice-password")
BOB = ("bob", "bob-password")
ALICE_TOKEN = "alice-token-0123456789"
ROBOT = ("robot", "robot-pw")
OTHER = ("other", "other-pw")
USERS = [ALICE, BOB, ROBOT, OTHER]


def basic_auth(name: str, password: str) -> str:
    """An ``Authorization`` header value (aiohttp's ``BasicAuth`` is deprecated)."""
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@asynccontextmanager
async def local_server(data_dir: Path, **options: Any) -> AsyncIterator[RunningServer]:
    """The server in this event loop on a free loopback port; stopped on exit.

    Bound before it is yielded (``start_server`` returns once the socket accepts), so
    no test waits on time. ``options`` are ``ServeOptions`` fields (every user and
    alice's token unless told).
    """
    options.setdefault("users", USERS)
    options.setdefault("tokens", [(ALICE[0], ALICE_TOKEN)])
    running = await start_server(
        ServeOptions(listen_host="127.0.0.1", listen_port=0, data_dir=data_dir, **options)
    )
    try:
        yield running
    finally:
        await running.stop()
