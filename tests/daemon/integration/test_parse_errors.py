"""Rows the server cannot parse count as row errors: never silently dropped (issue 11 #2).

The server drops a row with too many or too few cells, or one an unterminated quote
runs into, from the input table and reports it on the input schema (``num_row_errors``
and the ``row_errors`` page), not in the output schema's ``error_count``. Each test
publishes to an append dataset without a row identifier, so a lost row shows as a
count that is one short.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.integration.harness import Harness
from tests.daemon.support.datasets import count_rows, open_revisions, publish_dataset

SEED = b"id,name\n1,ann\n2,bob\n"
SEED_ROWS = 2

# name → (content, good rows, [(offset, error type)] the server reports)
BAD_FILES: dict[str, tuple[bytes, int, list[tuple[int, str]]]] = {
    "too_long": (b"id,name\n3,cy\n4,di,extra\n5,ed\n", 2, [(1, "too_long")]),
    "too_short": (b"id,name\n3,cy\n4\n5,ed\n", 2, [(1, "too_short")]),
    "unterminated_quote": (b'id,name\n3,cy\n4,"di\n', 1, [(1, "unquoted_value")]),
    # The quote opened on the second row runs to the end of the file.
    "quote_swallows_the_rest": (
        b'id,name\n3,cy\n4,"di\n5,ed\n6,fi\n7,gus\n',
        1,
        [(1, "unquoted_value")],
    ),
}


def _report(harness: Harness, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (harness.quarantine / f"{name}.report.json").read_text(encoding="utf-8")
    )
    return loaded


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
async def test_parse_errors_quarantine_the_file_with_the_rows_listed(
    harness: Harness, client: DsmapiClient, kind: str
) -> None:
    content, _good, expected = BAD_FILES[kind]
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)  # max_error_rows = 0, the default
    name = f"{kind}.csv"
    job = await harness.run(m, name, content)

    assert job.state is JobState.QUARANTINED, job.error
    assert await count_rows(client, ff) == SEED_ROWS
    assert not await open_revisions(client, ff)
    assert (harness.quarantine / name).read_bytes() == content
    report = _report(harness, name)
    assert report["reason"] == "too_many_row_errors"
    assert report["parse_error_count"] == len(expected)
    assert report["error_count"] == len(expected)
    assert [(e["offset"], e["error"]["type"]) for e in report["parse_errors"]] == expected
    assert "could not parse" in report["message"]
    assert "max_error_rows of 0" in report["message"]
    assert job.error_count == len(expected)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
async def test_parse_errors_within_max_error_rows_publish_exactly_the_good_rows(
    harness: Harness, client: DsmapiClient, kind: str
) -> None:
    content, good, expected = BAD_FILES[kind]
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff, max_error_rows=len(expected))
    job = await harness.run(m, f"{kind}.csv", content)

    assert job.state is JobState.PUBLISHED, job.error
    assert job.error_count == len(expected)
    assert await count_rows(client, ff) == SEED_ROWS + good
    details = await harness.details(job)
    assert details["parse_error_count"] == len(expected)


async def test_parse_errors_and_transform_errors_add_up_against_the_threshold(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, b"id,score\n1,10\n")
    m = harness.mapping(ff, max_error_rows=1)
    # One row the parser refuses (too long) and one a number transform refuses: two
    # errors, over a threshold of one, though each kind alone would be within it.
    content = b"id,score\n2,20\n3,30,extra\n4,forty\n"
    job = await harness.run(m, "mixed.csv", content)
    assert job.state is JobState.QUARANTINED, job.error
    assert await count_rows(client, ff) == 1
    report = _report(harness, "mixed.csv")
    assert (report["error_count"], report["parse_error_count"]) == (2, 1)
    assert len(report["error_rows"]) == 1
    assert [e["error"]["type"] for e in report["parse_errors"]] == ["too_long"]


async def test_parse_errors_in_a_dry_run_are_reported(
    harness: Harness, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    m = harness.mapping(ff)
    content = BAD_FILES["too_short"][0]
    job = await harness.run(m, "try.csv", content, dry_run=True)
    assert job.state is JobState.DISCARDED
    details = (await harness.store.events(job.id))[-1].details
    assert details["outcome"] == "would_quarantine"
    assert details["parse_error_count"] == 1
    assert [e["error"]["type"] for e in details["parse_errors"]] == ["too_short"]
    assert await count_rows(client, ff) == SEED_ROWS
    assert (harness.drop / "try.csv").read_bytes() == content
