"""The pipeline against the real local server: each mapping kind, and each refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.integration.harness import Harness
from tests.daemon.support.datasets import all_rows, count_rows, open_revisions, publish_dataset

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n3,cy,30\n"


async def test_pipeline_update_appends_rows(harness: Harness, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)
    job = await harness.run(m, "more.csv", b"id,name,score\n4,di,40\n5,ed,50\n")
    assert job.state is JobState.PUBLISHED, job.error
    assert await count_rows(client, ff) == 5
    assert None not in (job.revision_seq, job.source_id, job.output_schema_id, job.task_set_id)
    assert not await open_revisions(client, ff)
    day = datetime.now(UTC)
    assert (harness.archive / f"{day:%Y/%m/%d}" / "more.csv").exists()
    assert not (harness.drop / "more.csv").exists()
    states = [e.state for e in await harness.store.events(job.id)]
    assert states.index(JobState.OPENING) < states.index(JobState.UPLOADING)
    assert states.index(JobState.PROCESSING) < states.index(JobState.APPLYING)


async def test_pipeline_update_upserts_by_row_identifier(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED, row_id="id")
    m = harness.mapping(ff)
    job = await harness.run(m, "upsert.csv", b"id,name,score\n2,bobby,21\n4,di,40\n")
    assert job.state is JobState.PUBLISHED, job.error
    rows = await all_rows(client, ff)
    assert [(r["id"], r["name"]) for r in rows] == [
        ("1", "ann"),
        ("2", "bobby"),
        ("3", "cy"),
        ("4", "di"),
    ]


async def test_pipeline_replace_replaces_rows(harness: Harness, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff, action="replace")
    job = await harness.run(m, "all.csv", b"id,name,score\n7,gus,70\n8,hal,80\n")
    assert job.state is JobState.PUBLISHED, job.error
    assert [r["id"] for r in await all_rows(client, ff)] == ["7", "8"]


async def test_pipeline_delete_removes_listed_rows(harness: Harness, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED, row_id="id")
    m = harness.mapping(ff, action="delete")
    job = await harness.run(m, "gone.csv", b"id\n1\n3\n")
    assert job.state is JobState.PUBLISHED, job.error
    assert [r["id"] for r in await all_rows(client, ff)] == ["2"]


async def test_pipeline_import_config_transforms_two_files_in_a_row(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, None, name="Addresses")
    await client.create_config(
        {
            "name": "addresses",
            "data_action": "update",
            "columns": [
                {
                    "field_name": "address",
                    "display_name": "Address",
                    "transform_expr": "street_number || ' ' || street_name",
                },
                {"field_name": "city", "display_name": "City", "transform_expr": "`city`"},
            ],
        }
    )
    m = harness.mapping(ff, import_config="addresses")
    header = b"Street Number,Street Name,City\n"
    first = await harness.run(m, "a.csv", header + b"12,Main St,Springfield\n")
    second = await harness.run(m, "b.csv", header + b"7,Elm Rd,Shelbyville\n9,Oak Ave,Ogdenville\n")
    assert (first.state, second.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    rows = await all_rows(client, ff, order="address")
    assert rows == [
        {"address": "12 Main St", "city": "Springfield"},
        {"address": "7 Elm Rd", "city": "Shelbyville"},
        {"address": "9 Oak Ave", "city": "Ogdenville"},
    ]


async def test_pipeline_too_many_row_errors_quarantines_with_report(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff, max_error_rows=1)
    bad = b"id,name,score\n4,di,forty\n5,ed,fifty\n6,fi,60\n"
    job = await harness.run(m, "bad.csv", bad)
    assert job.state is JobState.QUARANTINED
    assert job.error_count == 2
    assert await count_rows(client, ff) == 3
    assert not await open_revisions(client, ff)
    assert (harness.quarantine / "bad.csv").read_bytes() == bad
    report = json.loads((harness.quarantine / "bad.csv.report.json").read_text())
    assert report["reason"] == "too_many_row_errors"
    assert report["error_count"] == 2
    assert len(report["error_rows"]) == 2
    assert "error" in report["error_rows"][0]["row"]["score"]
    assert report["revision_seq"] == job.revision_seq
    assert report["file"]["sha256"]
    assert report["file"]["size"] == len(bad)
    assert "robot-pw" not in json.dumps(report)


async def test_pipeline_schema_drift_refused_before_any_revision_opens(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, None)
    await client.create_config(
        {
            "name": "drift",
            "data_action": "update",
            "columns": [
                {
                    "field_name": "address",
                    "display_name": "Address",
                    "transform_expr": "`street_number` || ' ' || street_name",
                }
            ],
        }
    )
    before = len(await client.list_revisions(ff))
    m = harness.mapping(ff, import_config="drift")
    job = await harness.run(m, "drift.csv", b"Street Number,Road,City\n12,Main St,x\n")
    assert job.state is JobState.QUARANTINED
    assert job.error is not None
    assert "schema_drift" in job.error
    assert "street_name" in job.error
    assert len(await client.list_revisions(ff)) == before
    assert job.revision_seq is None


async def test_pipeline_empty_replace_refused(harness: Harness, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff, action="replace")
    job = await harness.run(m, "empty.csv", b"id,name,score\n")
    assert job.state is JobState.QUARANTINED
    assert job.error is not None
    assert job.error.startswith("empty_replace")
    assert await count_rows(client, ff) == 3
    assert not await open_revisions(client, ff)


async def test_pipeline_empty_replace_allowed_when_configured(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff, action="replace", allow_empty_replace=True)
    job = await harness.run(m, "empty.csv", b"id,name,score\n")
    assert job.state is JobState.PUBLISHED, job.error
    assert await count_rows(client, ff) == 0


async def test_pipeline_row_drop_guard_refuses_big_shrink(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED + b"4,di,40\n")
    m = harness.mapping(ff, action="replace", max_row_drop=0.5)
    job = await harness.run(m, "one.csv", b"id,name,score\n9,zed,90\n")
    assert job.state is JobState.QUARANTINED
    assert job.error is not None
    assert job.error.startswith("row_drop_guard")
    assert "75%" in job.error
    assert await count_rows(client, ff) == 4
    assert not await open_revisions(client, ff)


async def test_pipeline_duplicate_content_skipped(harness: Harness, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)
    content = b"id,name,score\n4,di,40\n"
    first = await harness.run(m, "day1.csv", content)
    again = await harness.run(m, "day2.csv", content)
    assert (first.state, again.state) == (JobState.PUBLISHED, JobState.SKIPPED)
    assert again.content_sha256 == first.content_sha256
    assert await count_rows(client, ff) == 4
    assert not (harness.drop / "day2.csv").exists()


async def test_pipeline_unknown_dataset_quarantined_with_clear_message(
    harness: Harness, client: DsmapiClient
) -> None:
    m = harness.mapping("zzzz-9999")
    job = await harness.run(m, "lost.csv", SEED)
    assert job.state is JobState.QUARANTINED
    assert job.error is not None
    assert job.error.startswith("unknown_dataset")
    assert "zzzz-9999" in job.error
    report = json.loads((harness.quarantine / "lost.csv.report.json").read_text())
    assert report["reason"] == "unknown_dataset"
    assert report["server_request_id"]


async def test_pipeline_unknown_import_config_names_the_config(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, None)
    m = harness.mapping(ff, import_config="no-such-config")
    job = await harness.run(m, "x.csv", SEED)
    assert job.state is JobState.QUARANTINED
    assert job.error is not None
    assert "import config 'no-such-config' does not exist" in job.error


async def test_pipeline_dry_run_applies_nothing_and_moves_nothing(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)
    job = await harness.run(m, "try.csv", b"id,name,score\n4,di,forty\n", dry_run=True)
    assert job.state is JobState.DISCARDED
    details = (await harness.store.events(job.id))[-1].details
    assert details["dry_run"] is True
    assert details["outcome"] == "would_quarantine"
    assert details["error_count"] == 1
    assert details["error_rows"]
    assert await count_rows(client, ff) == 3
    assert not await open_revisions(client, ff)
    assert (harness.drop / "try.csv").exists()
