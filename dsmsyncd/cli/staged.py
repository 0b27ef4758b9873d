"""``dsmsyncd apply`` and ``dsmsyncd discard``: publish, or throw away, a staged revision.

Both run in the operator's shell, whether or not the daemon runs, on the daemon's own
state store and through the pipeline's own code, and each moves the job itself with
one compare-and-set from STAGED (``pipeline/staging.py``), so that of every actor
exactly one moves a staged job:

* ``apply`` moves it to APPLYING and *holds* it there (``next_attempt_at``, renewed
  while it works), so that the daemon, to which an APPLYING head is runnable, leaves
  it alone; it then runs the job through ``Pipeline.run``, whose resume path re-reads
  the revision, runs the row-error threshold and the replace guards again, applies
  (never twice: an apply already taken is followed instead), waits and finalizes.
  If this process dies, the hold ends and the daemon finishes the apply as it would
  after a crash.
* ``discard`` moves it to QUARANTINED, discards the revision and quarantines the file
  with a report (reason ``discarded_by_operator``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from dsmsyncd.cli.daemon_commands import load_or_report
from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.config.schema import Config
from dsmsyncd.observe.logging import configure_logging
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.staging import apply_hint, retire, revision_url
from dsmsyncd.pipeline.sync_job import JobRun, Pipeline
from dsmsyncd.state import Job, JobState, StaleTransition, StateStore, open_state_store

Verb = Literal["apply", "discard"]
# How long ``apply`` holds the job from the daemon without renewing the hold.
APPLY_HOLD = timedelta(minutes=5)
_TARGET = re.compile(r"^([a-z0-9]{4}-[a-z0-9]{4})(?:/([0-9]+))?$")


class CommandError(Exception):
    """What the operator asked for cannot be done; the message says why and what to do."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StagedTarget:
    """``DATASET`` or ``DATASET/REVISION`` as the operator wrote it."""

    dataset: str
    revision: int | None

    @classmethod
    def parse(cls, text: str) -> StagedTarget:
        match = _TARGET.match(text.strip())
        if match is None:
            raise CommandError(
                f"expected DATASET or DATASET/REVISION, like abcd-1234 or abcd-1234/7; got {text!r}"
            )
        seq = match.group(2)
        return cls(match.group(1), None if seq is None else int(seq))


def staged_command(config_path: Path, verb: Verb, target: str) -> int:
    config = load_or_report(config_path)
    if config is None:
        return ExitCode.USAGE
    configure_logging(level="warning")  # what went wrong on the way; the outcome is printed
    try:
        return asyncio.run(_run(config, verb, StagedTarget.parse(target)))
    except CommandError as exc:
        print(f"dsmsyncd {verb}: {exc}", file=sys.stderr)
        return exc.code


async def _run(config: Config, verb: Verb, target: StagedTarget) -> int:
    from dsmsyncd.daemon.source_set import Sources
    from dsmsyncd.daemon.target import client_for

    sources = Sources.build(config)
    url, password = config.state.url, config.state.password_text
    async with open_state_store(url, password=password) as store, client_for(config) as client:
        job = await find_staged(store, target)
        await sources.start()
        try:
            ctx = PipelineContext(
                client=client,
                store=store,
                metrics=Metrics(),
                mappings=config.mapping,
                open_blob=sources.open_blob,
                finalizer_for=sources.finalizer,
                chunk_limit=asyncio.Semaphore(config.limits.max_concurrent_chunks),
                retry_base_s=config.limits.retry_delay,
                retry_max_s=config.limits.retry_max_delay,
            )
            if verb == "apply":
                return await apply_staged(ctx, job)
            return await discard_staged(ctx, job)
        finally:
            await sources.close()


async def find_staged(store: StateStore, target: StagedTarget) -> Job:
    """The staged job ``target`` names; CommandError saying what is staged otherwise."""
    staged = [
        job
        for job in await store.unfinished_jobs()
        if job.dataset == target.dataset and job.state is JobState.STAGED
    ]
    named = ", ".join(f"{job.dataset}/{job.revision_seq}" for job in staged)
    if not staged:
        raise CommandError(
            f"nothing is staged for dataset {target.dataset} (dsmsyncd status lists its jobs)"
        )
    if target.revision is not None:
        match = [job for job in staged if job.revision_seq == target.revision]
        if not match:
            raise CommandError(
                f"revision {target.revision} of dataset {target.dataset} is not staged; "
                f"staged: {named}"
            )
        return match[0]
    if len(staged) > 1:
        raise CommandError(f"several revisions of {target.dataset} are staged: {named}; name one")
    return staged[0]


async def apply_staged(ctx: PipelineContext, job: Job) -> int:
    who = f"dsmsyncd apply (pid {os.getpid()})"
    try:
        job = await ctx.store.transition(
            job.id,
            JobState.APPLYING,
            expect=JobState.STAGED,
            details={"by": who},
            next_attempt_at=ctx.clock() + APPLY_HOLD,
        )
    except StaleTransition as moved:
        raise CommandError(f"job {job.id} was moved meanwhile, now {moved.actual}") from None
    async with _holding(ctx, job.id):
        finished = await Pipeline(ctx).run(job)
    return await _report_apply(ctx, job, finished)


@contextlib.asynccontextmanager
async def _holding(ctx: PipelineContext, job_id: int) -> AsyncIterator[None]:
    """Renew the hold on an APPLYING job while the block runs (a long apply)."""

    async def renew() -> None:
        every = APPLY_HOLD.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            until = ctx.clock() + APPLY_HOLD
            try:
                await ctx.store.transition(
                    job_id, JobState.APPLYING, expect=JobState.APPLYING, next_attempt_at=until
                )
            except StaleTransition:
                return

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _report_apply(ctx: PipelineContext, staged: Job, job: Job) -> int:
    what = f"revision {staged.revision_seq} of {job.dataset} ({job.relative_path})"
    if job.state in (JobState.PUBLISHED, JobState.AWAITING_APPROVAL):
        events = await ctx.store.events(job.id)
        where = next((e.details["file"] for e in reversed(events) if "file" in e.details), "?")
        outcome = "published" if job.state is JobState.PUBLISHED else "submitted for approval"
        print(f"applied {what}: {outcome}; file: {where}")
        return ExitCode.OK
    if job.state is JobState.QUARANTINED:
        raise CommandError(f"{what} was not applied: {job.error}", ExitCode.REJECTED)
    if job.state is JobState.STAGED:  # its revision was gone: uploaded again, staged anew
        url = revision_url(ctx.client.base_url, job.dataset, job.revision_seq)
        hint = apply_hint(job.dataset, job.revision_seq)
        raise CommandError(
            f"{what} was no longer open; the file was staged again as revision "
            f"{job.revision_seq} ({url}): read it, then {hint}",
            ExitCode.RETRYABLE,
        )
    if job.state is JobState.FAILED_RETRYABLE and job.task_set_id is None:
        with contextlib.suppress(StaleTransition):  # the daemon took it up: it re-stages it
            await ctx.store.transition(
                job.id,
                JobState.STAGED,
                expect=JobState.FAILED_RETRYABLE,
                details={"restaged": "the apply failed before the target took it"},
                next_attempt_at=None,
            )
        raise CommandError(
            f"{what} could not be applied now ({job.error}); it is staged again: try later",
            ExitCode.RETRYABLE,
        )
    raise CommandError(
        f"{what} is {job.state.value}: {job.error}; the daemon finishes it", ExitCode.RETRYABLE
    )


async def discard_staged(ctx: PipelineContext, job: Job) -> int:
    message = (
        f"discarded by an operator (dsmsyncd discard): revision {job.revision_seq} of "
        f"{job.dataset} was thrown away without being published"
    )
    run = JobRun(Pipeline(ctx), job, dry_run=False, on_progress=None)
    done = await retire(run, "discarded_by_operator", message)
    if done is None:
        moved = await ctx.store.get_job(job.id)
        raise CommandError(f"job {job.id} was moved meanwhile, now {moved.state.value}")
    details = (await ctx.store.events(job.id))[-1].details
    print(f"discarded revision {job.revision_seq} of {job.dataset}; file: {details.get('file')}")
    if "revision_not_discarded" in details:
        raise CommandError(
            f"revision {job.revision_seq} could not be discarded on the target "
            f"({details['revision_not_discarded']}): it is never applied; discard it on the site",
            ExitCode.RETRYABLE,
        )
    return ExitCode.OK
