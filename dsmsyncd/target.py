"""The DSMAPI client for the configured target, built in one place from ``[target]``.

Separate from the daemon so that one-shot commands (``push``, ``check-config``) build
the same client without importing the daemon's sources and their S3 client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from dsmsyncd.config import Config
from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.dsmapi.retry import OnRetry


def client_for(config: Config, *, on_retry: OnRetry | None = None) -> DsmapiClient:
    target = config.target
    credentials = Credentials(
        username=target.username.get_secret_value() if target.username else None,
        password=target.password.get_secret_value() if target.password else None,
        token=target.token.get_secret_value() if target.token else None,
        app_token=target.app_token.get_secret_value() if target.app_token else None,
    )
    ca = str(target.ca_bundle) if target.ca_bundle else None
    return DsmapiClient(target.url, credentials, ca_bundle=ca, on_retry=on_retry)


class ClientLease:
    """One opened client and the jobs running with it, so that a replaced one closes after them.

    A SIGHUP that changes ``[target]`` builds a new client for the jobs that start
    from then on; jobs already running keep the client they started with (a job's
    revision lives on the target it was opened on) and ``retire`` closes the old
    client once the last of them is done.
    """

    def __init__(self, client: DsmapiClient) -> None:
        self.client = client
        self.users = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[DsmapiClient]:
        self.users += 1
        self._idle.clear()
        try:
            yield self.client
        finally:
            self.users -= 1
            if self.users == 0:
                self._idle.set()

    async def retire(self) -> None:
        """Close the client once no job uses it (at once if none does)."""
        await self._idle.wait()
        await self.client.aclose()
