"""``dsmsyncd push FILE --dataset ID``: one file, now, through the daemon's own pipeline.

The same SyncJob state machine runs, with a progress bar on a terminal and a summary
at the end. Its job lives in a state store of its own, in memory: the daemon's store
holds the daemon's queue, and a pushed job (or a dry run's discarded one) must never
be picked up by a running daemon with another mapping. The file itself is never
moved: a person who pushes a file by hand keeps it where it is, and a rejection
prints its report. (A push killed mid-way can leave an open revision behind: it is
never applied, and ``dsmsyncd status`` of the daemon does not know it.)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.cli.daemon_commands import load_or_report
from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.config.schema import Action, Config, MappingConfig
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.job_routing import routing_snapshot
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.state import Job, JobState, StateStore, open_state_store

PUSH_SOURCE = "push"


@dataclass(frozen=True)
class PushRequest:
    file: Path
    dataset: str
    import_config: str | None = None
    action: Action | None = None
    max_error_rows: int = 0
    dry_run: bool = False
    progress: bool = True


@dataclass
class PushFinalizer:
    """Leaves the pushed file where it is; keeps the quarantine report for the summary."""

    report: QuarantineReport | None = None

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str:
        return "left in place"

    async def quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        self.report = report
        return "left in place (pushed by hand)"


@dataclass
class ProgressBar:
    """A one-line byte counter on a terminal; silent elsewhere (logs are not terminals)."""

    total: int
    out: TextIO = sys.stderr
    enabled: bool = True
    sent: int = 0
    _started: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0

    def __call__(self, count: int) -> None:
        self.sent += count
        now = time.monotonic()
        if self.enabled and (now - self._drawn > 0.1 or self.sent >= self.total):
            self._drawn = now
            self.draw(now)

    def draw(self, now: float) -> None:
        fraction = self.sent / self.total if self.total else 1.0
        width = 30
        filled = int(width * fraction)
        rate = self.sent / max(now - self._started, 1e-6) / 1e6
        bar = "#" * filled + "-" * (width - filled)
        self.out.write(f"\r[{bar}] {fraction:6.1%} {self.sent / 1e6:9.1f} MB {rate:7.1f} MB/s")
        if self.sent >= self.total:
            self.out.write("\n")
        self.out.flush()


def mapping_for(request: PushRequest) -> MappingConfig:
    return MappingConfig(
        source=PUSH_SOURCE,
        match="*",
        dataset=request.dataset,
        import_config=request.import_config,
        action=None if request.import_config else (request.action or "update"),
        max_error_rows=request.max_error_rows,
        skip_duplicates=False,
        on_success="keep",
        quarantine_dir=Path("."),
    )


def push_command(config_path: Path, request: PushRequest) -> int:
    config = load_or_report(config_path)
    if config is None:
        return ExitCode.USAGE
    if not request.file.is_file():
        print(f"dsmsyncd push: {request.file} is not a readable file", file=sys.stderr)
        return ExitCode.USAGE
    try:
        mapping = mapping_for(request)
    except ValueError as exc:
        print(f"dsmsyncd push: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return asyncio.run(push(config, mapping, request))


async def push(config: Config, mapping: MappingConfig, request: PushRequest) -> int:
    from dsmsyncd.daemon.target import client_for

    blob = LocalFileBlob.open(request.file.resolve())
    finalizer = PushFinalizer()
    progress = ProgressBar(blob.size, enabled=request.progress and sys.stderr.isatty())
    async with open_state_store("sqlite:///:memory:") as store, client_for(config) as client:
        job = await store.add_job(
            source=PUSH_SOURCE,
            relative_path=str(blob.path),
            identity=f"push:{blob.path}:{blob.size}:{blob.mtime_ns}:{time.time_ns()}",
            size=blob.size,
            mtime=_mtime(blob),
            dataset=mapping.dataset,
            mapping_index=0,
            routing=routing_snapshot(mapping),
        )
        assert job is not None  # a fresh identity is never known
        context = PipelineContext(
            client=client,
            store=store,
            metrics=Metrics(),
            mappings=[mapping],
            open_blob=lambda _job: blob,
            finalizer_for=lambda _job: finalizer,
            chunk_limit=asyncio.Semaphore(config.limits.max_concurrent_chunks),
        )
        started = time.monotonic()
        job = await Pipeline(context).run(job, dry_run=request.dry_run, on_progress=progress)
        elapsed = time.monotonic() - started
        return await _summarise(store, job, finalizer, request, elapsed)


def _mtime(blob: LocalFileBlob) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(blob.mtime_ns / 1e9, UTC)


async def _summarise(
    store: StateStore, job: Job, finalizer: PushFinalizer, request: PushRequest, elapsed: float
) -> int:
    rate = job.size / max(elapsed, 1e-6) / 1e6
    head = f"{request.file.name} -> {job.dataset}"
    if job.revision_seq is not None:
        head += f" (revision {job.revision_seq})"
    print(
        f"{head}: {job.state.value} in {elapsed:.1f}s, {job.size / 1e6:.1f} MB at {rate:.1f} MB/s"
    )
    dry_run = job.state is JobState.DISCARDED and request.dry_run
    details: dict[str, Any] = {}
    if dry_run:
        # The discard cleared the job's ids and error count; its last event keeps them.
        events = await store.events(job.id)
        details = (events[-1].details if events else {}) or {}
    error_count = details.get("error_count", job.error_count)
    if error_count is not None:
        print(f"rows with errors: {error_count}")
    if dry_run:
        parse_errors = details.get("parse_error_count") or 0
        print(f"of which rows the server could not parse: {parse_errors}")
        print("dry run: nothing was applied; the revision was discarded")
        outcome = details.get("outcome", "unknown")
        print(f"dry run outcome: {outcome}; {details.get('message') or ''}".rstrip("; "))
        for row in [*details.get("parse_errors", []), *details.get("error_rows", [])][:10]:
            print("  " + json.dumps(row, default=str))
        return ExitCode.REJECTED if outcome == "would_quarantine" else ExitCode.OK
    if job.state in (JobState.PUBLISHED, JobState.AWAITING_APPROVAL, JobState.SKIPPED):
        if job.state is JobState.AWAITING_APPROVAL:
            print("applied and submitted for approval: it is published once someone approves it")
        return ExitCode.OK
    if job.state is JobState.QUARANTINED:
        print(f"rejected: {job.error}", file=sys.stderr)
        if finalizer.report is not None:
            print(finalizer.report.to_json(), file=sys.stderr)
        return ExitCode.REJECTED
    print(f"failed, try again later: {job.error}", file=sys.stderr)
    return ExitCode.RETRYABLE
