"""A reload that reorders the mappings does not reroute queued jobs (issue 11 #3).

The pipeline gets the reloaded mapping list, as the daemon's SIGHUP handler gives it,
and runs jobs queued under the old one against the real server.
"""

from __future__ import annotations

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.integration.harness import Harness
from tests.daemon.support.datasets import all_rows, count_rows, publish_dataset


async def test_queued_jobs_keep_dataset_and_action_when_mappings_are_reordered(
    harness: Harness, client: DsmapiClient
) -> None:
    appended = await publish_dataset(client, b"id,name\n1,a\n2,a\n3,a\n")
    replaced = await publish_dataset(client, b"id,name\n1,b\n2,b\n")
    to_append = harness.mapping(appended, action="update")
    to_replace = harness.mapping(replaced, action="replace")
    append_job = await harness.add_job(to_append, "a.csv", b"id,name\n4,a\n")
    replace_job = await harness.add_job(to_replace, "b.csv", b"id,name\n5,b\n6,b\n")

    harness.mappings.reverse()  # the reloaded config lists the tables the other way round
    done = [await harness.pipeline().run(job) for job in (append_job, replace_job)]

    assert [job.state for job in done] == [JobState.PUBLISHED, JobState.PUBLISHED]
    assert await count_rows(client, appended) == 4
    assert [row["id"] for row in await all_rows(client, replaced)] == ["5", "6"]


async def test_job_whose_mapping_is_gone_is_held_and_its_draft_discarded(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, b"id,name\n1,a\n")
    m = harness.mapping(ff)
    job = await harness.add_job(m, "a.csv", b"id,name\n2,a\n")
    harness.mappings.clear()
    held = await harness.pipeline().run(job)
    assert held.state is JobState.HELD
    assert held.error is not None
    assert held.error.startswith("held (mapping_removed): no [[mapping]] from source 'drop'")
    assert (harness.drop / "a.csv").exists()
    assert await count_rows(client, ff) == 1
    assert (await harness.details(held))["reason"] == "mapping_removed"
