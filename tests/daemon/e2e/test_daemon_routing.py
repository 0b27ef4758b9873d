"""Queued jobs keep the routing they were discovered with across config changes (issue 11 #3).

The files are queued by a first daemon lifetime that stops before running them
(``queue_files``); the config is then edited and the daemon started again, as an
operator's restart does. Datasets are append datasets without a row
identifier, so rows sent to the wrong place, or twice, show in the counts.
"""

from __future__ import annotations

import json
import os
import signal

import aiohttp

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import run_cli
from tests.daemon.e2e.queued import queue_files
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.log_lines import watching

SEED_A = b"id,name\n1,a\n2,a\n3,a\n4,a\n5,a\n"
SEED_B = b"id,name\n1,b\n2,b\n3,b\n4,b\n"
FILES = {
    "a1.csv": b"id,name\n6,a\n7,a\n",
    "a2.csv": b"id,name\n8,a\n9,a\n10,a\n",
    "b1.csv": b"id,name\n11,b\n12,b\n13,b\n",
}


async def test_reordered_mappings_send_queued_files_to_their_own_dataset_and_action(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    first = await publish_dataset(client, SEED_A)
    second = await publish_dataset(client, SEED_B)
    site.map(first, match="a*.csv", action="update")
    site.map(second, match="b*.csv", action="replace")
    await queue_files(site, FILES)

    site.mappings.reverse()  # the operator reorders the [[mapping]] tables, then restarts
    async with running_daemon(site) as daemon:
        jobs = await daemon.finished_jobs(3)

    assert {job.relative_path: job.state for job in jobs} == dict.fromkeys(
        FILES, JobState.PUBLISHED
    )
    assert {job.relative_path: job.dataset for job in jobs} == {
        "a1.csv": first,
        "a2.csv": first,
        "b1.csv": second,
    }
    assert await http.count(first) == 5 + 2 + 3  # two updates appended
    assert [r["id"] for r in await http.rows(second, **{"$order": "id"})] == ["11", "12", "13"]


async def test_removed_mapping_holds_its_jobs_others_publish_and_it_resumes_on_reload(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    first = await publish_dataset(client, SEED_A)
    second = await publish_dataset(client, SEED_B)
    site.map(first, match="a*.csv")
    site.map(second, match="b*.csv")
    await queue_files(site, FILES)
    removed = site.mappings.pop(0)
    with watching("dsmsyncd.pipeline.sync_job", "held (mapping_removed)") as held_lines:
        async with running_daemon(site) as daemon:
            (published,) = await daemon.finished_jobs(1)
            assert (published.relative_path, published.state) == ("b1.csv", JobState.PUBLISHED)

            await daemon.until(lambda runs: held_paths(runs) == {"a1.csv", "a2.csv"})
            states = {row["relative_path"]: row["state"] for row in site.jobs()}
            assert states["a1.csv"] == states["a2.csv"] == "held"
            assert daemon.daemon.admin_url is not None
            async with aiohttp.ClientSession(daemon.daemon.admin_url) as admin:
                async with admin.get("/readyz") as response:
                    assert response.status == 200, await response.text()
                async with admin.get("/status") as response:
                    status = json.loads(await response.text())
            assert status["counts"]["held"] == 2
            lane = next(d for d in status["datasets"] if d["dataset"] == first)
            assert (lane["held"], lane["queued"]) == (2, 0)
            assert await http.count(first) == 5
            assert (site.drop / "a1.csv").exists()

            site.mappings.insert(0, removed)  # the operator puts the mapping back
            site.write_config()
            os.kill(os.getpid(), signal.SIGHUP)
            resumed = await daemon.finished_jobs(2)

    assert sorted((j.relative_path, j.state) for j in resumed) == [
        ("a1.csv", JobState.PUBLISHED),
        ("a2.csv", JobState.PUBLISHED),
    ]
    assert held_lines.count == 2  # once per job, however often the lanes looked
    assert await http.count(first) == 5 + 2 + 3
    assert await http.count(second) == 4 + 3
    result = await run_cli("status", "-c", str(site.config_path), "--json")
    events = {row["file"]: row["state"] for row in json.loads(result.out)}
    assert events == dict.fromkeys(("drop:a1.csv", "drop:a2.csv", "drop:b1.csv"), "published")


def held_paths(runs: list[Job]) -> set[str]:
    """The files whose job ended a run held (each held job runs once until released)."""
    return {job.relative_path for job in runs if job.state is JobState.HELD}


async def test_removed_mapping_held_job_shows_in_status_command(
    site: Site, client: DsmapiClient
) -> None:
    first = await publish_dataset(client, SEED_A)
    site.map(first, match="a*.csv")
    await queue_files(site, {"a1.csv": FILES["a1.csv"]})
    site.mappings.clear()  # every mapping removed: the lane has nothing it may run
    async with running_daemon(site) as daemon:
        await daemon.until(lambda runs: held_paths(runs) == {"a1.csv"})
    assert [row["state"] for row in site.jobs()] == ["held"]
    result = await run_cli("status", "-c", str(site.config_path))
    assert result.code == 0, result
    assert "held" in result.out
    assert "mapping_removed" in result.out
    assert "reload (SIGHUP)" in result.out
