"""The job log dataset end to end: after a mixed run, one row per finished job in the
``[log_dataset]`` dataset, published by the pipeline and read back over SODA."""

from __future__ import annotations

from dsmsyncd.config.schema import JOB_LOG_SOURCE
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.e2e.test_daemon_publish import PERMITS_HEADER, permits_dataset
from tests.daemon.support.datasets import publish_dataset

GOOD = PERMITS_HEADER + b"G1,1,First St,5\nG2,2,Second St,6\n"
BAD = PERMITS_HEADER + b"X1,2,Second St,lots\n"


def log_published(runs: list[Job]) -> bool:
    return any(job.source == JOB_LOG_SOURCE and job.terminal for job in runs)


async def test_job_log_holds_one_row_per_finished_job(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await permits_dataset(site, client, "logged", max_error_rows=0)
    log_ff = await publish_dataset(client, None, name="Job log")
    site.tables["log_dataset"] = {
        "dataset": log_ff,
        "spool_dir": str(site.root / "spool"),
        "batch_rows": 3,
        "batch_interval": "1h",
    }
    async with running_daemon(site) as daemon:
        jobs = []
        for name, content in (("good.csv", GOOD), ("bad.csv", BAD), ("again.csv", GOOD)):
            site.drop_file(name, content)
            jobs += await daemon.finished_jobs(1)
        await daemon.until(log_published)
    published, quarantined, skipped = jobs
    assert [job.state for job in jobs] == [
        JobState.PUBLISHED,
        JobState.QUARANTINED,
        JobState.SKIPPED,
    ]
    (log_job,) = [job for job in daemon.runs if job.source == JOB_LOG_SOURCE]
    assert log_job.state is JobState.PUBLISHED, log_job.error
    rows = await http.rows(log_ff, **{"$order": "job"})
    assert [(row["job"], row["file"], row["outcome"]) for row in rows] == [
        (str(published.id), "good.csv", "published"),
        (str(quarantined.id), "bad.csv", "quarantined"),
        (str(skipped.id), "again.csv", "skipped"),
    ]
    for row, job in zip(rows, jobs, strict=True):
        assert row["dataset"] == ff
        assert row["source"] == "drop"
        assert row["action"] == "config:logged"
        assert row["bytes"] == str(job.size)
        assert row["error_rows"] == str(job.error_count)
        assert row.get("revision") == (None if job.revision_seq is None else str(job.revision_seq))
        assert float(row["duration_s"]) >= 0
        assert job.finished_at is not None
        assert row["time"] == job.finished_at.isoformat(timespec="milliseconds")
    assert published.revision_seq is not None
    assert quarantined.revision_seq is not None
    assert skipped.revision_seq is None
    assert rows[0]["rows_created"] == "2"
    assert (rows[0]["rows_updated"], rows[0]["rows_deleted"]) == ("0", "0")
    assert "rows_created" not in rows[1]
    assert "rows_created" not in rows[2]
    assert rows[1]["error_rows"] == "1"
    # Published, the batch leaves the spool; the log's own job has no row.
    assert sorted(p.name for p in (site.root / "spool").iterdir()) == []
