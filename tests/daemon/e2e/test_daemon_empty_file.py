"""A 0-byte file is refused before any revision is opened, with a report saying how to fix it.

An empty file has no header row, so it is not a CSV any dataset can take; it is what
a failed export leaves. The daemon finds it (still empty ``min_age`` after it
appeared), quarantines it with reason ``empty_file``, opens no revision, and the file
behind it on the same dataset publishes. ``allow_empty_replace`` does not change this:
it lets a replace empty a dataset with a file that has a header row and no data rows
(that case goes through the guards as before).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset
from tests.support.local_server import API

SEED = b"id,name\n1,ann\n2,bob\n"


async def all_revisions(http: Http, fourfour: str) -> int:
    return len(await http.get(f"{API}/revision/{fourfour}"))


@pytest.mark.parametrize(
    "options",
    [{"action": "update"}, {"action": "replace", "allow_empty_replace": True}],
    ids=["update", "replace allowing empty"],
)
async def test_empty_file_is_quarantined_before_a_revision_and_the_lane_goes_on(
    site: Site, client: DsmapiClient, http: Http, options: dict[str, Any]
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff, **options)
    revisions = await all_revisions(http, ff)
    async with running_daemon(site) as daemon:
        site.drop_file("export.csv", b"")
        (empty,) = await daemon.finished_jobs(1)
        site.drop_file("next.csv", b"id,name\n3,cy\n4,di\n5,ed\n")
        (after,) = await daemon.finished_jobs(1)

    assert empty.state is JobState.QUARANTINED
    assert empty.error is not None
    assert empty.error.startswith("empty_file: ")
    assert empty.revision_seq is None
    report = json.loads((site.quarantine / "export.csv.report.json").read_text())
    assert report["reason"] == "empty_file"
    assert report["revision_seq"] is None
    assert report["file"]["size"] == 0
    assert report["message"] == (
        f"export.csv is empty (0 bytes): with no header row it is not a CSV that dataset "
        f"{ff} can take (often what a failed export leaves). Fix the export and drop the "
        "file again; to empty a dataset on purpose, drop a file with only its header row "
        "to a mapping with action = 'replace' and allow_empty_replace = true"
    )
    assert (site.quarantine / "export.csv").read_bytes() == b""
    assert (after.relative_path, after.state) == ("next.csv", JobState.PUBLISHED)
    # An update adds next.csv's 3 rows to the seed's 2; a replace keeps only its 3.
    assert await http.count(ff) == (2 + 3 if options["action"] == "update" else 3)
    assert await all_revisions(http, ff) == revisions + 1  # next.csv's only
    assert await http.open_revisions(ff) == []
