"""The job log's spool: which runs get a row, what the row says, and when a batch closes
(the clock is a test's, so no test waits for a real interval)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dsmsyncd.config.schema import JOB_LOG_SOURCE, LogDatasetConfig
from dsmsyncd.daemon.job_log import COLUMNS, OPEN_BATCH, JobLog
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, JobState, SqliteStateStore
from tests.daemon.support.fake_clock import FakeClock
from tests.daemon.support.jobs import add_job

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def job_log(spool: Path, clock: FakeClock, *, rows: int = 2, interval: float = 60.0) -> JobLog:
    config = LogDatasetConfig(
        dataset="logs-0001", spool_dir=spool, batch_rows=rows, batch_interval=interval
    )
    return JobLog(config, Metrics(), clock)


async def ended(
    store: SqliteStateStore,
    name: str,
    state: JobState = JobState.PUBLISHED,
    *,
    source: str = "drop",
    details: dict[str, object] | None = None,
) -> Job:
    job = await add_job(
        store,
        name,
        identity=f"file:{name}:10:1",
        mtime=WHEN,
        source=source,
        routing={"action": "update", "import_config": None},
    )
    return await store.transition(
        job.id, state, expect=JobState.DISCOVERED, details=details, revision_seq=4
    )


def batches(spool: Path) -> list[list[dict[str, str]]]:
    """The closed batches, oldest first, as rows."""
    found = []
    for path in sorted(spool.glob("jobs-*.csv"), key=lambda p: int(p.stem.rsplit("-", 1)[1])):
        with path.open(newline="", encoding="utf-8") as opened:
            reader = csv.DictReader(opened)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            found.append(list(reader))
    return found


async def test_only_finished_jobs_of_the_daemons_files_get_a_row(
    store: SqliteStateStore, tmp_path: Path, clock: FakeClock
) -> None:
    log = job_log(tmp_path / "spool", clock, rows=10)
    log.record(await ended(store, "a.csv", details={"rows_created": 2, "rows_updated": 1}))
    log.record(await ended(store, "b.csv", JobState.FAILED_RETRYABLE))
    log.record(await ended(store, "c.csv", JobState.HELD))
    log.record(await ended(store, "jobs-1.csv", source=JOB_LOG_SOURCE))
    log.record(await ended(store, "d.csv", JobState.QUARANTINED))
    await log.step(store, close=True)
    ((first, second),) = batches(tmp_path / "spool")
    assert first == {
        "time": first["time"],
        "job": "1",
        "source": "drop",
        "dataset": "abcd-1234",
        "file": "a.csv",
        "action": "update",
        "outcome": "published",
        "rows_created": "2",
        "rows_updated": "1",
        "rows_deleted": "",
        "error_rows": "0",
        "duration_s": first["duration_s"],
        "bytes": "10",
        "revision": "4",
    }
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert (second["file"], second["outcome"], second["rows_created"]) == (
        "d.csv",
        "quarantined",
        "",
    )


async def test_a_batch_closes_at_batch_rows(
    store: SqliteStateStore, tmp_path: Path, clock: FakeClock
) -> None:
    log = job_log(tmp_path / "spool", clock, rows=2)
    for name in ("a.csv", "b.csv", "c.csv"):
        log.record(await ended(store, name))
    await log.step(store)
    assert [[row["file"] for row in batch] for batch in batches(tmp_path / "spool")] == [
        ["a.csv", "b.csv"]
    ]
    assert (tmp_path / "spool" / OPEN_BATCH).exists()  # c.csv waits for company


async def test_a_batch_closes_batch_interval_after_its_first_row(
    store: SqliteStateStore, tmp_path: Path, clock: FakeClock
) -> None:
    log = job_log(tmp_path / "spool", clock, rows=100, interval=60.0)
    log.record(await ended(store, "a.csv"))
    await log.step(store)
    clock.advance(59.0)
    await log.step(store)
    assert batches(tmp_path / "spool") == []
    clock.advance(1.0)
    await log.step(store)
    assert [[row["file"] for row in batch] for batch in batches(tmp_path / "spool")] == [["a.csv"]]


async def test_a_batch_left_open_by_a_crash_is_closed_at_start(
    store: SqliteStateStore, tmp_path: Path, clock: FakeClock
) -> None:
    spool = tmp_path / "spool"
    crashed = job_log(spool, clock, rows=100)
    crashed.record(await ended(store, "a.csv"))
    await crashed.step(store)
    assert batches(spool) == []
    await job_log(spool, clock).open()
    assert [[row["file"] for row in batch] for batch in batches(spool)] == [["a.csv"]]
    assert not (spool / OPEN_BATCH).exists()


async def test_an_unwritable_spool_keeps_the_rows_for_the_next_try(
    store: SqliteStateStore, tmp_path: Path, clock: FakeClock
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool's parent should be")
    spool = blocker / "spool"
    log = job_log(spool, clock, rows=1)
    await log.open()  # logged, not raised: the daemon starts anyway
    log.record(await ended(store, "a.csv"))  # never raises: the job is not failed
    with pytest.raises(NotADirectoryError):
        await log.step(store)
    blocker.unlink()
    await log.step(store)
    assert [[row["file"] for row in batch] for batch in batches(spool)] == [["a.csv"]]
