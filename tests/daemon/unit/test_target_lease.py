"""A replaced target client stays open for the jobs that started with it, then closes."""

from __future__ import annotations

import asyncio

from dsmsyncd.daemon.target import ClientLease
from dsmsyncd.dsmapi import Credentials, DsmapiClient


async def test_retired_client_closes_only_after_its_last_job() -> None:
    client = await DsmapiClient("http://127.0.0.1:1", Credentials()).__aenter__()
    lease = ClientLease(client)
    async with lease.use() as first, lease.use():
        assert first is client
        retiring = asyncio.create_task(lease.retire())
        await asyncio.sleep(0)  # let it run up to its wait for the jobs
        assert not retiring.done()
        assert lease.users == 2
    await asyncio.wait_for(retiring, 5)
    assert lease.users == 0
    assert client._session is None  # closed


async def test_idle_client_is_closed_at_once() -> None:
    client = await DsmapiClient("http://127.0.0.1:1", Credentials()).__aenter__()
    await asyncio.wait_for(ClientLease(client).retire(), 5)
    assert client._session is None
