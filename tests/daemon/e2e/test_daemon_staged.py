"""Staged publishing (``publish = "stage"``, issue 10): the daemon leaves a checked
revision open; ``dsmsyncd apply`` publishes it, ``dsmsyncd discard`` throws it away.

The daemon runs in this event loop; ``apply`` and ``discard`` run as the operator runs
them, as processes on the same state file while the daemon runs. What they did is read
back over plain HTTP (the revision, the dataset's rows) and from the folders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import Job, JobState, SqliteStateStore, utc_now
from tests.daemon.e2e.inprocess import RunningDaemon, admin_get, running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import run_cli, wait_until
from tests.daemon.e2e.site import Site, job_state
from tests.daemon.support.datasets import publish_dataset
from tests.support.local_server import API

SEED = b"id,name\n1,ann\n2,bob\n"
FIRST = b"id,name\n3,cy\n4,di\n"
SECOND = b"id,name\n5,ed\n"


def ended(name: str, state: JobState) -> Any:
    """A ``RunningDaemon.until`` condition: ``name``'s job ended a run in ``state``."""
    return lambda runs: any(j.relative_path == name and j.state is state for j in runs)


def queued(site: Site, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return job_state(site, name) is JobState.DISCOVERED

    return check


async def staged_job(daemon: RunningDaemon, name: str) -> Job:
    await daemon.until(ended(name, JobState.STAGED))
    return next(j for j in daemon.runs if j.relative_path == name and j.state is JobState.STAGED)


async def revision(http: Http, dataset: str, seq: int | None) -> dict[str, Any]:
    body = await http.get(f"{API}/revision/{dataset}/{seq}")
    resource: dict[str, Any] = body["resource"]
    return resource


def report_of(site: Site, name: str) -> dict[str, Any]:
    reports = list(site.quarantine.rglob(f"{name}*.report.json"))
    assert len(reports) == 1, reports
    loaded: dict[str, Any] = json.loads(reports[0].read_text())
    return loaded


async def staged_dataset(site: Site, client: DsmapiClient, **options: Any) -> str:
    dataset = await publish_dataset(client, SEED)
    site.map(dataset, publish="stage", **options)
    return dataset


@dataclass(frozen=True)
class Staged:
    dataset: str
    daemon: RunningDaemon
    job: Job  # a.csv's, staged


@contextlib.asynccontextmanager
async def a_staged_file(site: Site, client: DsmapiClient, **options: Any) -> AsyncIterator[Staged]:
    """A dataset mapped with ``publish = "stage"`` (and ``options``), the daemon running,
    and ``a.csv`` dropped and staged."""
    dataset = await staged_dataset(site, client, **options)
    async with running_daemon(site) as daemon:
        site.drop_file("a.csv", FIRST, mtime=1_700_000_000)
        yield Staged(dataset, daemon, await staged_job(daemon, "a.csv"))


async def test_staged_revision_stays_open_until_apply_publishes_it_while_the_daemon_runs(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with a_staged_file(site, client) as staged_a:
        dataset, daemon, job = staged_a.dataset, staged_a.daemon, staged_a.job
        staged = await revision(http, dataset, job.revision_seq)
        assert staged["closed_at"] is None
        assert staged["task_sets"] == []
        assert await http.count(dataset) == 2  # the dataset is unchanged
        assert (site.drop / "a.csv").exists()
        status = json.loads(await admin_get(daemon, "/status"))
        [lane] = [d for d in status["datasets"] if d["dataset"] == dataset]
        [shown] = lane["staged"]
        assert shown["state"] == "staged"
        url = f"{site.server_url}/d/{dataset}/revisions/{job.revision_seq}"
        assert shown["revision_url"] == url
        assert f'<a href="{url}">' in await admin_get(daemon, "/status?format=html")
        metrics = await admin_get(daemon, "/metrics")
        assert f'dsmsyncd_jobs_finished_total{{dataset="{dataset}",outcome="staged"}} 1.0' in (
            metrics
        )
        listed = await run_cli("status", "-c", str(site.config_path))
        assert "staged             " in listed.out, listed
        assert url in listed.out, listed

        applied = await run_cli("apply", "-c", str(site.config_path), dataset)

    assert applied.code == 0, applied
    assert f"applied revision {job.revision_seq} of {dataset} (a.csv): published" in applied.out
    assert await http.count(dataset) == 4
    assert (await revision(http, dataset, job.revision_seq))["closed_at"] is not None
    assert job_state(site, "a.csv") is JobState.PUBLISHED
    assert not (site.drop / "a.csv").exists()
    assert [p.name for p in site.archive.rglob("*.csv")] == ["a.csv"]


async def test_restart_keeps_the_revision_staged_and_discard_quarantines_it(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    other = await publish_dataset(client, SEED)
    site.map(other, match="other*.csv")  # first: the staged mapping's "*.csv" takes the rest
    dataset = await staged_dataset(site, client)
    async with running_daemon(site) as daemon:
        site.drop_file("a.csv", FIRST)
        job = await staged_job(daemon, "a.csv")

    async with running_daemon(site) as daemon:
        # A file for another dataset published after the restart: by then the daemon
        # has started, swept and run its lanes, and left the staged one alone.
        site.drop_file("other.csv", SECOND)
        await daemon.until(ended("other.csv", JobState.PUBLISHED))
        assert job_state(site, "a.csv") is JobState.STAGED
        assert (await revision(http, dataset, job.revision_seq))["closed_at"] is None

        discarded = await run_cli("discard", "-c", str(site.config_path), dataset)

    assert discarded.code == 0, discarded
    assert f"discarded revision {job.revision_seq} of {dataset}" in discarded.out
    closed = await revision(http, dataset, job.revision_seq)
    assert closed["closed_at"] is not None
    assert closed["task_sets"] == []
    assert await http.count(dataset) == 2
    assert job_state(site, "a.csv") is JobState.QUARANTINED
    report = report_of(site, "a.csv")
    assert report["reason"] == "discarded_by_operator"
    assert report["revision_seq"] == job.revision_seq
    assert "discarded by an operator (dsmsyncd discard)" in report["message"]


async def test_newer_file_waits_behind_the_staged_one_and_runs_after_apply(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    other = await publish_dataset(client, SEED)
    site.map(other, match="other*.csv")
    async with a_staged_file(site, client, on_staged="wait") as staged_a:
        dataset, daemon, first = staged_a.dataset, staged_a.daemon, staged_a.job
        site.drop_file("b.csv", SECOND, mtime=1_700_000_100)
        await wait_until(queued(site, "b.csv"), what="b.csv queued")
        # Another dataset's file published after b.csv was queued: the lanes have run
        # meanwhile, and b.csv's did not.
        site.drop_file("other.csv", SECOND)
        await daemon.until(ended("other.csv", JobState.PUBLISHED))
        assert job_state(site, "b.csv") is JobState.DISCOVERED
        assert [j.relative_path for j in daemon.runs if j.dataset == dataset] == ["a.csv"]

        applied = await run_cli("apply", "-c", str(site.config_path), dataset)
        assert applied.code == 0, applied
        second = await staged_job(daemon, "b.csv")

    assert await http.count(dataset) == 4  # a.csv applied, b.csv staged
    assert second.revision_seq != first.revision_seq
    assert (await revision(http, dataset, second.revision_seq))["closed_at"] is None


async def test_newer_file_supersedes_the_staged_one(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with a_staged_file(site, client, on_staged="supersede") as staged_a:
        dataset, daemon, first = staged_a.dataset, staged_a.daemon, staged_a.job
        site.drop_file("b.csv", SECOND, mtime=1_700_000_100)
        second = await staged_job(daemon, "b.csv")

    superseded = [j for j in daemon.runs if j.relative_path == "a.csv"][-1]
    assert superseded.state is JobState.QUARANTINED
    report = report_of(site, "a.csv")
    assert report["reason"] == "superseded"
    assert f"while revision {first.revision_seq} was staged" in report["message"]
    assert (await revision(http, dataset, first.revision_seq))["closed_at"] is not None
    assert (await revision(http, dataset, second.revision_seq))["closed_at"] is None
    assert await http.count(dataset) == 2


async def test_apply_and_discard_say_what_is_staged_when_the_target_is_wrong(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    dataset = await staged_dataset(site, client)
    config = str(site.write_config())
    nothing = await run_cli("apply", "-c", config, dataset)
    assert nothing.code == 2, nothing
    assert f"dsmsyncd apply: nothing is staged for dataset {dataset}" in nothing.err
    malformed = await run_cli("discard", "-c", config, "not a dataset")
    assert malformed.code == 2, malformed
    assert "dsmsyncd discard: expected DATASET or DATASET/REVISION" in malformed.err

    async with running_daemon(site) as daemon:
        site.drop_file("a.csv", FIRST)
        job = await staged_job(daemon, "a.csv")
    unknown = await run_cli("apply", "-c", config, f"{dataset}/999")
    assert unknown.code == 2, unknown
    assert (
        f"dsmsyncd apply: revision 999 of dataset {dataset} is not staged; "
        f"staged: {dataset}/{job.revision_seq}"
    ) in unknown.err
    assert "Traceback" not in unknown.err + nothing.err + malformed.err
    # Named by its revision, it applies without a daemon running.
    applied = await run_cli("apply", "-c", config, f"{dataset}/{job.revision_seq}")
    assert applied.code == 0, applied
    assert await http.count(dataset) == 4
    assert [p.name for p in site.archive.rglob("*.csv")] == ["a.csv"]


async def test_apply_and_discard_at_once_exactly_one_moves_the_staged_job(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with a_staged_file(site, client) as staged_a:
        dataset, job = staged_a.dataset, staged_a.job
        config = str(site.config_path)
        applied, discarded = await asyncio.gather(
            run_cli("apply", "-c", config, dataset), run_cli("discard", "-c", config, dataset)
        )

    assert sorted([applied.code, discarded.code]) == [0, 2], (applied, discarded)
    loser = applied if applied.code else discarded
    assert "nothing is staged" in loser.err or "was moved meanwhile" in loser.err, loser
    closed = await revision(http, dataset, job.revision_seq)
    assert closed["closed_at"] is not None
    if applied.code == 0:
        assert job_state(site, "a.csv") is JobState.PUBLISHED
        assert await http.count(dataset) == 4
        assert len(closed["task_sets"]) == 1
    else:
        assert job_state(site, "a.csv") is JobState.QUARANTINED
        assert await http.count(dataset) == 2
        assert closed["task_sets"] == []


async def test_apply_runs_the_guards_again_and_quarantines_what_they_refuse_now(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path
) -> None:
    grown = tmp_path / "grown.csv"
    grown.write_bytes(b"id,name\n" + b"".join(b"%d,new\n" % i for i in range(10, 20)))
    async with a_staged_file(site, client, action="replace") as staged_a:
        dataset, job, config = staged_a.dataset, staged_a.job, str(site.config_path)
        # Meanwhile someone else adds rows: the staged replace would now drop most of them.
        pushed = await run_cli(
            "push", str(grown), "--dataset", dataset, "--action", "update", "-c", config
        )
        assert pushed.code == 0, pushed
        applied = await run_cli("apply", "-c", config, dataset)

    assert applied.code == 4, applied
    assert (
        f"dsmsyncd apply: revision {job.revision_seq} of {dataset} (a.csv) was not applied: "
        "row_drop_guard: refusing to replace 12 rows with 2"
    ) in applied.err
    assert await http.count(dataset) == 12
    assert job_state(site, "a.csv") is JobState.QUARANTINED
    assert report_of(site, "a.csv")["reason"] == "row_drop_guard"
    assert (await revision(http, dataset, job.revision_seq))["closed_at"] is not None


async def test_an_apply_whose_command_died_is_finished_by_the_daemon_once_its_hold_ends(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    async with a_staged_file(site, client) as staged_a:
        # What `dsmsyncd apply` writes first, by a command killed right after, its hold over.
        async with SqliteStateStore(site.state_db) as store:
            await store.transition(
                staged_a.job.id,
                JobState.APPLYING,
                expect=JobState.STAGED,
                next_attempt_at=utc_now() - timedelta(seconds=1),
            )
        await staged_a.daemon.until(ended("a.csv", JobState.PUBLISHED))

    assert await http.count(staged_a.dataset) == 4
    assert (
        len((await revision(http, staged_a.dataset, staged_a.job.revision_seq))["task_sets"]) == 1
    )
    assert [p.name for p in site.archive.rglob("*.csv")] == ["a.csv"]
