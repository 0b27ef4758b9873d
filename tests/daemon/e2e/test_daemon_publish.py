"""The daemon, in-process, publishing dropped files to the real local server over HTTP.

Each test drops real files into a real folder and reads the result back over SODA
(``GET /resource/{fourfour}.json``) and the publishing API, with a plain HTTP client.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.datasets import publish_dataset
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n3,cy,30\n"
ADDRESS_COLUMNS = [
    ("permit_id", "`permit_id`", True),
    ("address", "`street_number` || ' ' || `street_name`", False),
    ("fee", "to_number(`fee`)", False),
]
PERMITS_HEADER = b"permit_id,street_number,street_name,fee\n"


async def create_address_config(client: DsmapiClient, name: str) -> None:
    await client.create_config(
        {
            "name": name,
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


async def test_daemon_update_without_row_id_appends(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff, action="update")
    async with running_daemon(site) as daemon:
        site.drop_file("more.csv", b"id,name,score\n1,ann,10\n4,di,40\n")
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    rows = await http.rows(ff, **{"$order": "id"})
    assert [(r["id"], r["name"]) for r in rows] == [
        ("1", "ann"),
        ("1", "ann"),
        ("2", "bob"),
        ("3", "cy"),
        ("4", "di"),
    ]
    assert await http.open_revisions(ff) == []


async def test_daemon_update_with_row_id_upserts(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED, row_id="id")
    site.map(ff, action="update")
    async with running_daemon(site) as daemon:
        site.drop_file("upsert.csv", b"id,name,score\n2,bobby,21\n4,di,40\n")
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    rows = await http.rows(ff, **{"$order": "id"})
    assert [(r["id"], r["name"], r["score"]) for r in rows] == [
        ("1", "ann", "10"),
        ("2", "bobby", "21"),
        ("3", "cy", "30"),
        ("4", "di", "40"),
    ]


async def test_daemon_import_config_primary_key_upserts(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, None, name="Permits")
    await create_address_config(client, "permits-upsert")
    site.map(ff, import_config="permits-upsert")
    async with running_daemon(site) as daemon:
        site.drop_file("day1.csv", PERMITS_HEADER + b"P1,12,Main St,10\nP2,7,Elm Rd,20\n")
        (first,) = await daemon.finished_jobs(1)
        site.drop_file("day2.csv", PERMITS_HEADER + b"P2,9,Oak Ave,25\nP3,1,Pine Ct,30\n")
        (second,) = await daemon.finished_jobs(1)
    assert (first.state, second.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    rows = await http.rows(ff, **{"$order": "permit_id"})
    assert [(r["permit_id"], r["address"]) for r in rows] == [
        ("P1", "12 Main St"),
        ("P2", "9 Oak Ave"),
        ("P3", "1 Pine Ct"),
    ]


async def test_daemon_replace_replaces_all_rows(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff, action="replace")
    async with running_daemon(site) as daemon:
        site.drop_file("all.csv", b"id,name,score\n7,gus,70\n8,hal,80\n")
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    rows = await http.rows(ff, **{"$order": "id"})
    assert [r["id"] for r in rows] == ["7", "8"]


async def test_daemon_delete_removes_listed_rows(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED, row_id="id")
    site.map(ff, action="delete")
    async with running_daemon(site) as daemon:
        site.drop_file("gone.csv", b"id\n1\n3\n")
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    assert [r["id"] for r in await http.rows(ff)] == ["2"]


async def test_daemon_import_config_transform_runs_on_every_file(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, None, name="Addresses")
    await create_address_config(client, "addresses")
    site.map(ff, import_config="addresses")
    async with running_daemon(site) as daemon:
        site.drop_file("a.csv", PERMITS_HEADER + b"A1,12,Main Street,1\n")
        (first,) = await daemon.finished_jobs(1)
        site.drop_file("b.csv", PERMITS_HEADER + b"B1,7,Harbor Road,2\nB2,9,Oak Ave,3\n")
        (second,) = await daemon.finished_jobs(1)
    assert (first.state, second.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    rows = await http.rows(ff, **{"$order": "permit_id"})
    assert [r["address"] for r in rows] == ["12 Main Street", "7 Harbor Road", "9 Oak Ave"]
    assert [r["fee"] for r in rows] == ["1", "2", "3"]


async def test_daemon_too_many_row_errors_quarantines_file(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, None, name="Permits")
    await create_address_config(client, "strict")
    site.map(ff, import_config="strict", max_error_rows=0)
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
