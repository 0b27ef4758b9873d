"""Every line logged while a job runs carries the job: ``job=<id>``, its file and dataset,
and its revision once opened, whichever module writes the line (the pipeline, the
client's retries, the upload's chunk workers), so that one grep tells a file's story.

Lines are read as a log shipper reads them: JSON from the process's one handler. The
server runs in this process too; its lines (``dsmsyncd.server.*``, ``aiohttp.*``) are
not the daemon's and are left out.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from dsmsyncd.dsmapi import Credentials, DsmapiClient, RetryPolicy
from dsmsyncd.observe.logging import configure_logging
from dsmsyncd.state import Job, JobState
from tests.daemon.integration.harness import Harness
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n"


class Log:
    """The process's log lines since ``mark``, parsed."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream
        self._start = 0

    def mark(self) -> None:
        self._start = len(self._stream.getvalue())

    def daemon_lines(self) -> list[dict[str, Any]]:
        text = self._stream.getvalue()[self._start :]
        lines = [json.loads(line) for line in text.splitlines()]
        return [
            line
            for line in lines
            if line["logger"].startswith("dsmsyncd.")
            and not line["logger"].startswith("dsmsyncd.server")
        ]


@pytest.fixture
def log() -> Iterator[Log]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(level="debug", json=True, stream=stream)
    try:
        yield Log(stream)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def _assert_all_carry(job: Job, lines: list[dict[str, Any]]) -> None:
    assert lines, "the job logged nothing: nothing was proven"
    for line in lines:
        assert line.get("job") == job.id, line
        assert (line.get("file"), line.get("dataset")) == (job.relative_path, job.dataset), line


async def test_every_line_of_a_job_carries_its_id_file_dataset_and_revision(
    harness: Harness, client: DsmapiClient, log: Log
) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)

    log.mark()
    job = await harness.run(m, "more.csv", b"id,name,score\n3,cy,30\n")
    lines = log.daemon_lines()

    assert job.state is JobState.PUBLISHED, job.error
    _assert_all_carry(job, lines)
    assert lines[-1]["event"].startswith("published")
    assert lines[-1]["revision"] == job.revision_seq


async def test_a_quarantined_and_a_retried_job_each_carry_their_own_id(
    harness: Harness, client: DsmapiClient, log: Log
) -> None:
    ff = await publish_dataset(client, SEED)
    refused = harness.mapping(ff, max_error_rows=0)
    log.mark()
    bad = await harness.run(refused, "bad.csv", b"id,name,score\n4,di,forty\n")
    assert bad.state is JobState.QUARANTINED
    _assert_all_carry(bad, log.daemon_lines())

    fast = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02)
    dead = DsmapiClient("http://127.0.0.1:1", Credentials(token="unused"), retry=fast)
    waiting = await harness.add_job(harness.mapping("abcd-1234"), "later.csv", SEED)
    # A revision recorded by an earlier attempt: resuming reads it (a request the
    # client retries) before anything else.
    waiting = await harness.store.transition(
        waiting.id, JobState.UPLOADING, expect=JobState.DISCOVERED, revision_seq=7
    )
    log.mark()
    async with dead:
        failed = await harness.pipeline(client=dead).run(waiting)
    lines = log.daemon_lines()

    assert failed.state is JobState.FAILED_RETRYABLE
    _assert_all_carry(failed, lines)
    assert {line["logger"] for line in lines} >= {
        "dsmsyncd.dsmapi.retry",  # the client's own retry, inside the job's task
        "dsmsyncd.pipeline.sync_job",
    }
    assert {line["revision"] for line in lines} == {7}
