"""Three ``dsmsyncd run`` replicas on one PostgreSQL database share the work, and two die.

All three watch one drop folder and one bucket on moto (discovery on every replica)
and publish through the local server: ``WORKLOAD`` small files over append datasets.
Replica ``a`` reaches the server through a proxy that freezes its first chunk upload
mid-body, ``b`` through one that lets the server take its first apply and holds the
answer (``step_proxy.py``); each is killed with SIGKILL while frozen there, its job
in ``uploading`` or ``applying``. Replica ``c`` (or ``b`` while it lives) takes
their lanes over once their leases end. Then every file is on its dataset exactly
once (append datasets: a double shows as a doubled id), in each dataset's arrival
order, no revision is open, every job is terminal, and the lanes of the dead were
taken over by name.

The time from each kill to its replica's last job finished is printed (it is measured
in ``bench/scale.py``, not asserted: no timing assertions in tests).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from tests.daemon.e2e.cluster import (
    BUCKET_PREFIX,
    ClusterState,
    Workload,
    assert_published_in_order,
    drop_workload,
    make_datasets,
    map_workload,
    replica,
)
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, run_cli, wait_until
from tests.daemon.e2e.site import Site
from tests.daemon.support.moto_server import MotoServer, new_bucket_name
from tests.daemon.support.step_proxy import APPLY, UPLOAD, StepProxy, step_proxy

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

WORKLOAD = Workload(datasets=30, files=300)
FROM_BUCKET = 15  # datasets 0-14 are fed by the drop folder, 15-29 by the bucket
LEASE_TIMEOUT_S = 4.0


async def kill_when_frozen(
    daemon: DaemonProcess, proxy: StepProxy, state: ClusterState, name: str
) -> tuple[dict[str, Any], set[int], float]:
    """Wait for ``proxy`` to freeze ``daemon`` at its step, SIGKILL it there: the frozen
    job (as the state store had it), the jobs of every lane the replica held, the kill's
    monotonic time."""
    async with asyncio.timeout(120):
        await proxy.held.wait()
    if len(proxy.step) == 1:
        frozen = await state.job("source_id = $1", int(proxy.step[0]))
    else:
        frozen = await state.job(
            "dataset = $1 AND revision_seq = $2", proxy.step[0], int(proxy.step[1])
        )
    assert frozen is not None, proxy.step
    held = {lease["job_id"] for lease in await state.leases(name) if lease["job_id"]}
    daemon.kill()
    killed_at = time.monotonic()
    assert await daemon.wait(10) == -9
    proxy.cut_held()
    assert frozen["id"] in held, (frozen, held)
    return frozen, held, killed_at


async def finished_after(state: ClusterState, jobs: Iterable[int], since: float) -> float:
    """Seconds from ``since`` until every one of ``jobs`` is terminal."""
    ids = sorted(jobs)

    async def finished() -> bool:
        return await state.unfinished(ids) == 0

    await wait_until(finished, within=180, what=f"jobs {ids} finished")
    return time.monotonic() - since


async def cluster_status(daemon: DaemonProcess) -> dict[str, Any]:
    admin = daemon.admin_url()
    assert admin is not None
    async with aiohttp.ClientSession() as session, session.get(f"{admin}/status") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


# About a minute on two busy cores; the default 120 s is too close when they are busier.
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("aws_env")
async def test_three_replicas_publish_every_file_once_in_order_when_two_are_killed(
    site: Site,
    client: DsmapiClient,
    server: RunningServer,
    http: Http,
    moto: MotoServer,
    s3: S3Client,
    fresh_database: str,
) -> None:
    began = time.monotonic()
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    site.more_sources = [{"name": "bucket", **moto.source_keys(bucket, BUCKET_PREFIX)}]
    site.limits = {"max_concurrent_jobs": 4}
    fourfours = await make_datasets(client, WORKLOAD.datasets)
    map_workload(site, fourfours, bucket_from=FROM_BUCKET)
    await drop_workload(site, WORKLOAD, bucket_from=FROM_BUCKET, s3=s3, bucket=bucket)
    state = ClusterState(fresh_database)

    async with step_proxy(server.url, UPLOAD) as upload, step_proxy(server.url, APPLY) as apply:
        a = replica(site, "a", fresh_database, LEASE_TIMEOUT_S, upload.url)
        b = replica(site, "b", fresh_database, LEASE_TIMEOUT_S, apply.url)
        c = replica(site, "c", fresh_database, LEASE_TIMEOUT_S)
        try:
            await asyncio.gather(a.start(), b.start(), c.start())
            (frozen_a, held_a, killed_a), (frozen_b, held_b, killed_b) = await asyncio.gather(
                kill_when_frozen(a, upload, state, "a"), kill_when_frozen(b, apply, state, "b")
            )
            assert frozen_a["state"] == "uploading", frozen_a
            assert frozen_b["state"] == "applying", frozen_b
            took_a, took_b = await asyncio.gather(
                finished_after(state, held_a, killed_a), finished_after(state, held_b, killed_b)
            )
            await wait_until(
                lambda: state.all_done(WORKLOAD.files), within=300, what="every job terminal"
            )
            status = await cluster_status(c)
        finally:
            await asyncio.gather(a.stop(), b.stop(), c.stop())

    assert await state.states() == {"published": WORKLOAD.files}
    await assert_published_in_order(http, WORKLOAD, fourfours)
    logs = {d: d.log.read_text(encoding="utf-8") for d in (a, b, c)}
    for victim, frozen in ((a, frozen_a), (b, frozen_b)):
        # By c, or by b when b lived on long enough after a's lease ended.
        line = f"lane {frozen['dataset']} taken over from replica {victim.log.stem}"
        assert any(line in log for d, log in logs.items() if d is not victim), line
    assert status["replica"] == "c"
    alive = {r["name"]: r["alive"] for r in status["cluster"]["replicas"]}
    assert alive == {"a": False, "b": False, "c": True}, status["cluster"]
    print(
        f"\n{WORKLOAD.files} files over {WORKLOAD.datasets} datasets, lease "
        f"{LEASE_TIMEOUT_S:g}s: a's {len(held_a)} job(s) finished {took_a:.1f}s after its "
        f"kill, b's {len(held_b)} {took_b:.1f}s after; whole test {time.monotonic() - began:.1f}s"
    )


async def test_second_replica_under_a_live_replicas_name_is_refused(
    site: Site, client: DsmapiClient, fresh_database: str
) -> None:
    first = replica(site, "same", fresh_database, LEASE_TIMEOUT_S)
    second = site.root / "second.toml"
    second.write_text(first.config.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        await first.start()
        assert first.process is not None
        refused = await run_cli("run", "-c", str(second), within=30)
    finally:
        await first.stop()

    assert refused.code == 3, refused
    lines = [line for line in refused.err.splitlines() if "replica name 'same' is in use" in line]
    assert len(lines) == 1, refused.err
    message = json.loads(lines[0])["event"]
    assert f"dsmsyncd pid {first.process.pid} on " in message, message
    assert "give each replica its own [state] replica name" in message, message
