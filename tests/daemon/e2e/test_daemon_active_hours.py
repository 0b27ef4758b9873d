"""A file found outside its mapping's ``active_hours`` waits, visibly (log, ``/status``,
``dsmsyncd status``), and is published when the window opens, or at once when a reload
drops the window. The tests move the daemon's active-hours clock (a seam set in a
``Daemon`` subclass); the scheduler notices the change at its next look, and the tests
wait on the job's end as an event, never a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from dsmsyncd.config import load_config
from dsmsyncd.config.schema import Config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState, open_state_store
from tests.daemon.e2e.inprocess import RunningDaemon, running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import run_cli
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.jobs import add_job
from tests.daemon.support.log_lines import LogLines, watching

SEED = b"id,name,score\n1,ann,10\n"
PARIS = ZoneInfo("Europe/Paris")
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=PARIS)
MONDAY_EVENING = datetime(2026, 11, 30, 19, 0, tzinfo=PARIS)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


CLOCK = Clock(MONDAY_NOON)


class ClockedDaemon(Daemon):
    """The daemon, its active hours read on ``CLOCK``."""

    def __init__(self, config_path: Path, config: Config) -> None:
        super().__init__(config_path, config)
        self.active_hours.clock = CLOCK


async def status_of(daemon: Daemon, dataset: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{daemon.admin_url}/status") as got:
        snapshot = await got.json()
    entry: dict[str, Any] = next(d for d in snapshot["datasets"] if d["dataset"] == dataset)
    return entry


@dataclass
class Waiting:
    dataset: str
    running: RunningDaemon
    said: LogLines  # the daemon's "waiting for active hours" lines


@contextlib.asynccontextmanager
async def file_waiting(
    site: Site, client: DsmapiClient, name: str, content: bytes
) -> AsyncIterator[Waiting]:
    """A dataset mapped for Mon-Fri nights in Paris, the daemon running on ``CLOCK`` at
    Monday noon, and ``name`` dropped: yielded once the daemon said the file waits."""
    ff = await publish_dataset(client, SEED)
    site.map(ff, action="update", active_hours=["Mon-Fri 19:00-07:00"])
    site.limits["timezone"] = "Europe/Paris"
    CLOCK.now = MONDAY_NOON
    waits = watching("dsmsyncd.daemon.active_hours", "waiting for active hours", logging.INFO)
    with waits as said:
        async with running_daemon(site, ClockedDaemon) as running:
            site.drop_file(name, content)
            await asyncio.wait_for(said.seen.wait(), 30)
            assert running.runs == []  # recorded, not started
            yield Waiting(ff, running, said)


async def test_a_file_found_outside_the_window_waits_then_is_published_when_it_opens(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with file_waiting(site, client, "evening.csv", b"id,name,score\n2,bob,20\n") as wait:
        ff, running = wait.dataset, wait.running
        assert wait.said.text == (
            "evening.csv waits: waiting for active hours until Mon 2026-11-30 19:00 Europe/Paris"
        )
        entry = await status_of(running.daemon, ff)
        assert entry["waiting"] == "waiting for active hours until 19:00 Europe/Paris"
        assert (entry["current"], entry["queued"]) == (None, 1)
        assert [row["name"] for row in await http.rows(ff)] == ["ann"]

        CLOCK.now = MONDAY_EVENING  # the window opens
        (job,) = await running.finished_jobs(1)
        assert "waiting" not in await status_of(running.daemon, ff)
    assert job.state is JobState.PUBLISHED, job.error
    assert job.relative_path == "evening.csv"
    assert wait.said.count == 1  # said once, not at every look
    rows = await http.rows(ff, **{"$order": "id"})
    assert [row["name"] for row in rows] == ["ann", "bob"]


async def test_dsmsyncd_status_shows_a_job_waiting_for_its_window(site: Site) -> None:
    # A daily window six hours from now (UTC): closed now, whenever the test runs.
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=6)
    window = f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"
    site.map("abcd-1234", active_hours=[window])
    path = site.write_config()
    async with open_state_store(f"sqlite:///{site.state_db}") as store:
        await add_job(store, "night.csv", identity="n", mtime=opens)
    result = await run_cli("status", "-c", str(path))
    assert result.code == 0, result
    waits = re.escape("(waiting for active hours until ") + r"(\w{3} \d{4}-\d\d-\d\d )?"
    assert re.search(waits + re.escape(f"{opens:%H:%M} UTC)"), result.out), result.out
    as_json = await run_cli("status", "-c", str(path), "--json")
    (row,) = json.loads(as_json.out)
    assert row["state"] == "discovered"
    assert row["waiting"].startswith("waiting for active hours until ")


async def test_a_reload_that_drops_the_window_starts_the_waiting_file(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with file_waiting(site, client, "now.csv", b"id,name,score\n3,cy,30\n") as wait:
        site.mappings[0].pop("active_hours")
        await wait.running.daemon.apply_config(load_config(site.write_config()))
        (job,) = await wait.running.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    assert CLOCK.now == MONDAY_NOON  # the reload, not the clock, let it go
    rows = await http.rows(wait.dataset, **{"$order": "id"})
    assert [row["name"] for row in rows] == ["ann", "cy"]
