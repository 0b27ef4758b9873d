"""The job log dataset: one row per job that ends in an outcome, published by the
pipeline itself (README, "Job log dataset").

The daemon's job listener hands every finished run to ``JobLog.record``, which only
queues it in memory: logging never fails or delays the job it describes. The
``job-log`` task (under the Supervisor: a failure is logged, counted and retried, the
rows kept) turns queued jobs into CSV rows appended to the open batch,
``spool_dir/.batch.csv`` (hidden: no source takes it), and closes the batch by renaming
it to ``jobs-<time>-<n>.csv`` once it holds ``batch_rows`` rows, ``batch_interval``
after its first row, and when the daemon has drained. The internal ``_job_log`` source
then finds the closed batch and the pipeline appends it to the log dataset exactly as
it publishes any dropped file (``config/job_log.py``): at most once, resumed after a
crash, quarantined with a report if refused; the spool keeps the rows until then.

Which jobs have a row: those that reach a terminal state (published,
awaiting_approval, quarantined, skipped), once each. A failed_retryable attempt has no
row (the job's outcome will), nor has a held job (it ends nothing), nor has a job of
the log itself, which would log itself forever. A row a crash catches between its
job's end and its write to the batch is lost (the job's own record is not).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from dsmsyncd.config.schema import JOB_LOG_SOURCE, LogDatasetConfig
from dsmsyncd.observe.metrics import PREFIX, Metrics
from dsmsyncd.state import Job, StateStore

logger = logging.getLogger("dsmsyncd.daemon.job_log")

COLUMNS = (
    "time",
    "job",
    "source",
    "dataset",
    "file",
    "action",
    "outcome",
    "rows_created",
    "rows_updated",
    "rows_deleted",
    "error_rows",
    "duration_s",
    "bytes",
    "revision",
)
OPEN_BATCH = ".batch.csv"
# Rows waiting in memory while the spool cannot be written; past this, the oldest go.
MAX_QUEUED = 100_000


def log_row(job: Job, details: dict[str, Any]) -> dict[str, object]:
    """The log dataset's row for a finished ``job``; ``details`` are its events' details
    merged oldest first (the row counts the apply reported are among them)."""
    routing = job.routing or {}
    action = routing.get("action") or (
        f"config:{routing['import_config']}" if routing.get("import_config") else None
    )
    ended = job.finished_at or job.updated_at
    began = job.started_at or job.discovered_at
    return {
        "time": ended.astimezone(UTC).isoformat(timespec="milliseconds"),
        "job": job.id,
        "source": job.source,
        "dataset": job.dataset,
        "file": job.relative_path,
        "action": action,
        "outcome": job.state.value,
        "rows_created": details.get("rows_created"),
        "rows_updated": details.get("rows_updated"),
        "rows_deleted": details.get("rows_deleted"),
        "error_rows": job.error_count,
        "duration_s": round(max(0.0, (ended - began).total_seconds()), 3),
        "bytes": job.size,
        "revision": job.revision_seq,
    }


def csv_lines(rows: list[dict[str, object]], *, header: bool) -> str:
    """``rows`` as CSV text (None as an empty field), with the header line if asked."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class JobLog:
    """Finished jobs → rows in the spool's open batch → closed batches the pipeline sends."""

    def __init__(
        self,
        config: LogDatasetConfig,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self.spool = config.spool_dir
        self._queued: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._rows_in_batch = 0
        self._batch_began: float | None = None
        self._closed = 0
        self.rows = Counter(
            f"{PREFIX}_job_log_rows_total",
            "Job log rows: written to the spool, or dropped (the spool unwritable too long)",
            ["result"],
            registry=metrics.registry,
        )

    def record(self, job: Job) -> None:
        """The daemon's job listener: queue a finished job's row; never raises, never waits."""
        if job.source == JOB_LOG_SOURCE or not job.terminal:
            return
        self._queued.append(job)
        if len(self._queued) > MAX_QUEUED:
            dropped = self._queued.popleft()
            self.rows.labels("dropped").inc()
            logger.error("job log: row of job %s dropped (spool unwritable)", dropped.id)
        self._wake.set()

    async def open(self) -> None:
        """At startup: make the spool; close a batch a crash (or the last drain) left
        open. A spool that cannot be made is logged, not fatal: the task retries."""
        try:
            await asyncio.to_thread(self._open)
        except OSError as exc:
            logger.error("job log: cannot prepare the spool %s: %s", self.spool, exc)

    def _open(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        if (self.spool / OPEN_BATCH).exists():
            self._close_batch()

    async def run(self, store: StateStore, done: asyncio.Event) -> None:
        """Write queued rows and close due batches until ``done``; then the last batch."""
        while True:
            finished = done.is_set()
            await self.step(store, close=finished)
            if finished:
                return
            await self._sleep(done)

    async def step(self, store: StateStore, *, close: bool = False) -> None:
        """Write the queued rows; close the open batch if it is due (or ``close``)."""
        await self._write_queued(store)
        if close or self._due():
            await asyncio.to_thread(self._close_batch)

    def _due(self) -> bool:
        if self._batch_began is None:
            return False
        aged = self._clock() - self._batch_began >= self.config.batch_interval
        return aged or self._rows_in_batch >= self.config.batch_rows

    async def _sleep(self, done: asyncio.Event) -> None:
        """Until a row is queued, the open batch is due, or ``done``."""
        timeout = None
        if self._batch_began is not None:
            elapsed = self._clock() - self._batch_began
            timeout = max(0.0, self.config.batch_interval - elapsed)
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(done.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        self._wake.clear()

    async def _write_queued(self, store: StateStore) -> None:
        """Append the queued jobs' rows, a batch's worth at a time; a job leaves the
        queue only once its row is written (a failure keeps it for the next try)."""
        while self._queued:
            room = self.config.batch_rows - self._rows_in_batch
            jobs = list(self._queued)[: max(1, room)]
            rows = [log_row(job, await _details(store, job)) for job in jobs]
            await asyncio.to_thread(self._append, rows)
            for _ in jobs:
                self._queued.popleft()
            self.rows.labels("written").inc(len(rows))
            if self._due():
                await asyncio.to_thread(self._close_batch)

    def _append(self, rows: list[dict[str, object]]) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        path = self.spool / OPEN_BATCH
        fresh = not path.exists()
        with path.open("a", encoding="utf-8", newline="") as batch:
            batch.write(csv_lines(rows, header=fresh))
            batch.flush()
            os.fsync(batch.fileno())
        if fresh or self._batch_began is None:
            self._batch_began = self._clock()
        self._rows_in_batch += len(rows)

    def _close_batch(self) -> None:
        """Rename the open batch into a file the ``_job_log`` source takes."""
        path = self.spool / OPEN_BATCH
        if path.exists():
            self._closed += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            os.replace(path, _unused(self.spool / f"jobs-{stamp}-{self._closed}.csv"))
        self._rows_in_batch = 0
        self._batch_began = None


def _unused(path: Path) -> Path:
    count = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{count}{path.suffix}")
        count += 1
    return candidate


async def _details(store: StateStore, job: Job) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for event in await store.events(job.id):
        merged.update(event.details)
    return merged
