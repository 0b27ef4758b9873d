"""The daemon, in-process, publishing dropped files to the real local server over HTTP.

Each test drops real files into a real folder and reads the result back over SODA
(``GET /resource/{fourfour}.json``) and the publishing API, with a plain HTTP client.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import run_files, running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n3,cy,30\n"
ADDRESS_COLUMNS = [
    ("permit_id", "`permit_id`", True),
    ("address", "`street_number` || ' ' || `street_name`", False),
    ("fee", "to_number(`fee`)", False),
]
PERMITS_HEADER = b"permit_id,street_number,street_name,fee\n"


async def permits_dataset(site: Site, client: DsmapiClient, config: str, **options: Any) -> str:
    """A new dataset with no data, mapped through a new import config ``config`` (the
    ADDRESS_COLUMNS of permit files); its fourfour."""
    ff = await publish_dataset(client, None, name="Permits")
    await client.create_config(
        {
            "name": config,
            "data_action": "update",
            "parse_options": {"header_count": 1, "column_header": 1},
            "columns": [
                {
                    "field_name": field,
                    "display_name": field.title(),
                    "transform_expr": expr,
                    "is_primary_key": key,
                }
                for field, expr, key in ADDRESS_COLUMNS
            ],
        }
    )
    site.map(ff, import_config=config, **options)
    return ff


# test name → (row id of the seed, action, file, every row after: (id, name, score), or
# (id,) where the file holds only that column)
ACTIONS: dict[str, tuple[str | None, str, bytes, list[tuple[str, ...]]]] = {
    "update_without_row_id_appends": (
        None,
        "update",
        b"id,name,score\n1,ann,10\n4,di,40\n",
        [
            ("1", "ann", "10"),
            ("1", "ann", "10"),
            ("2", "bob", "20"),
            ("3", "cy", "30"),
            ("4", "di", "40"),
        ],
    ),
    "update_with_row_id_upserts": (
        "id",
        "update",
        b"id,name,score\n2,bobby,21\n4,di,40\n",
        [("1", "ann", "10"), ("2", "bobby", "21"), ("3", "cy", "30"), ("4", "di", "40")],
    ),
    "replace_replaces_all_rows": (
        None,
        "replace",
        b"id,name,score\n7,gus,70\n8,hal,80\n",
        [("7", "gus", "70"), ("8", "hal", "80")],
    ),
    "delete_removes_listed_rows": ("id", "delete", b"id\n1\n3\n", [("2",)]),
}


@pytest.mark.parametrize("case", sorted(ACTIONS))
async def test_daemon_action(site: Site, client: DsmapiClient, http: Http, case: str) -> None:
    row_id, action, content, expected = ACTIONS[case]
    ff = await publish_dataset(client, SEED, row_id=row_id)
    site.map(ff, action=action)
    (job,) = await run_files(site, (f"{case}.csv", content))
    assert job.state is JobState.PUBLISHED, job.error
    fields = ("id", "name", "score")[: len(expected[0])]
    rows = await http.rows(ff, **{"$order": "id"})
    assert [tuple(r[field] for field in fields) for r in rows] == expected
    assert await http.open_revisions(ff) == []


# test name → two files of permits, published one after the other; every row after
TWO_PERMIT_FILES: dict[str, tuple[bytes, bytes, list[tuple[str, str, str]]]] = {
    "primary_key_upserts": (
        b"P1,12,Main St,10\nP2,7,Elm Rd,20\n",
        b"P2,9,Oak Ave,25\nP3,1,Pine Ct,30\n",
        [("P1", "12 Main St", "10"), ("P2", "9 Oak Ave", "25"), ("P3", "1 Pine Ct", "30")],
    ),
    "transform_runs_on_every_file": (
        b"A1,12,Main Street,1\n",
        b"B1,7,Harbor Road,2\nB2,9,Oak Ave,3\n",
        [("A1", "12 Main Street", "1"), ("B1", "7 Harbor Road", "2"), ("B2", "9 Oak Ave", "3")],
    ),
}


@pytest.mark.parametrize("case", sorted(TWO_PERMIT_FILES))
async def test_daemon_import_config(
    site: Site, client: DsmapiClient, http: Http, case: str
) -> None:
    first_file, second_file, expected = TWO_PERMIT_FILES[case]
    ff = await permits_dataset(site, client, case.replace("_", "-"))
    jobs = await run_files(
        site, ("day1.csv", PERMITS_HEADER + first_file), ("day2.csv", PERMITS_HEADER + second_file)
    )
    assert [job.state for job in jobs] == [JobState.PUBLISHED] * 2, [job.error for job in jobs]
    rows = await http.rows(ff, **{"$order": "permit_id"})
    assert [(r["permit_id"], r["address"], r["fee"]) for r in rows] == expected


async def test_daemon_too_many_row_errors_quarantines_file(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await permits_dataset(site, client, "strict", max_error_rows=0)
    good = PERMITS_HEADER + b"G1,1,First St,5\n"
    bad = PERMITS_HEADER + b"X1,2,Second St,lots\nX2,3,Third St,7\n"
    async with running_daemon(site) as daemon:
        site.drop_file("good.csv", good)
        (published,) = await daemon.finished_jobs(1)
        before = await http.rows(ff, **{"$order": "permit_id"})
        site.drop_file("bad.csv", bad)
        (job,) = await daemon.finished_jobs(1)
    assert published.state is JobState.PUBLISHED, published.error
    assert job.state is JobState.QUARANTINED
    assert not (site.drop / "bad.csv").exists()
    assert (site.quarantine / "bad.csv").read_bytes() == bad
    report = json.loads((site.quarantine / "bad.csv.report.json").read_text())
    assert report["reason"] == "too_many_row_errors"
    assert report["error_count"] == 1
    assert report["dataset"] == ff
    assert report["revision_seq"] == job.revision_seq
    assert len(report["error_rows"]) == 1
    error_row = report["error_rows"][0]["row"]
    assert error_row["permit_id"] == {"ok": "X1"}
    assert "error" in error_row["fee"]
    assert ROBOT_PASSWORD not in json.dumps(report)
    assert await http.rows(ff, **{"$order": "permit_id"}) == before
    assert await http.open_revisions(ff) == []


ROBOT_PASSWORD = "robot-pw"


async def test_daemon_archives_by_day_and_publishes_in_arrival_order(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, b"id,name,score\n0,seed,0\n")
    site.map(ff, action="update")
    site.min_age = "0s"  # all three are present at start: one scan, one sorted batch
    base = time.time() - 3600
    # Arrival order is mtime, then name: b and c tie on mtime, a is the newest.
    site.drop_file("a.csv", b"id,name,score\n3,third,3\n", mtime=base + 10)
    site.drop_file("c.csv", b"id,name,score\n2,second,2\n", mtime=base)
    site.drop_file("b.csv", b"id,name,score\n1,first,1\n", mtime=base)
    async with running_daemon(site) as daemon:
        jobs = await daemon.finished_jobs(3)
    assert [j.state for j in jobs] == [JobState.PUBLISHED] * 3, [j.error for j in jobs]
    assert [j.relative_path for j in jobs] == ["b.csv", "c.csv", "a.csv"]
    assert site.published_order() == ["b.csv", "c.csv", "a.csv"]
    rows = await http.rows(ff, **{"$order": "id"})
    assert [r["name"] for r in rows] == ["seed", "first", "second", "third"]
    day = datetime.now(UTC)
    archived = site.archive / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    assert sorted(p.name for p in archived.iterdir()) == ["a.csv", "b.csv", "c.csv"]
    assert (archived / "b.csv").read_bytes() == b"id,name,score\n1,first,1\n"
    assert sorted(p.name for p in site.drop.iterdir()) == []
