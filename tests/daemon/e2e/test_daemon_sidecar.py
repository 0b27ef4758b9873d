"""Metadata sidecars end to end: ``NAME.meta.json`` / ``.meta.toml`` beside a dropped
file set the dataset's metadata, read back from ``/api/views/{id}`` over plain HTTP."""

from __future__ import annotations

import json

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.e2e.test_daemon_publish import PERMITS_HEADER, permits_dataset
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n"
SIDECAR = {
    "name": "Building permits",
    "description": "Permits issued, updated nightly",
    "category": "Housing",
    "tags": ["permits", "housing"],
    "license": "Public Domain",
    "attribution": "City Permits Office",
    "attribution_link": "https://example.gov/permits",
    "custom": {"Ownership": {"Steward": "Permits Office"}},
}


def archived_names(site: Site) -> list[str]:
    return sorted(path.name for path in site.archive.rglob("*") if path.is_file())


async def drop_pair(site: Site, client: DsmapiClient, sidecar: bytes) -> tuple[str, dict[str, Job]]:
    """A seeded dataset; ``permits.csv.meta.json`` then ``permits.csv`` dropped together
    (data first or sidecar first in the lane, as the scan finds them); the dataset and
    both jobs as they ended, by file."""
    ff = await publish_dataset(client, SEED, name="Old name")
    site.map(ff)
    site.limits["retry_delay"] = "100ms"  # a data job waiting for its sidecar
    async with running_daemon(site) as daemon:
        site.drop_file("permits.csv.meta.json", sidecar)
        site.drop_file("permits.csv", b"id,name,score\n3,cy,30\n")
        jobs = await daemon.finished_jobs(2)
    return ff, {job.relative_path: job for job in jobs}


async def test_sidecar_sets_metadata_with_its_data(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff, by_path = await drop_pair(site, client, json.dumps(SIDECAR).encode())
    assert by_path["permits.csv"].state is JobState.PUBLISHED, by_path["permits.csv"].error
    # The sidecar's own job defers to (or finds itself moved by) the data job.
    assert by_path["permits.csv.meta.json"].state is JobState.SKIPPED
    view = await http.get(f"/api/views/{ff}")
    assert view["name"] == "Building permits"
    assert view["description"] == "Permits issued, updated nightly"
    assert view["category"] == "Housing"
    assert view["tags"] == ["permits", "housing"]
    assert view["license"] == {"name": "Public Domain"}
    assert view["attribution"] == "City Permits Office"
    assert view["attributionLink"] == "https://example.gov/permits"
    assert view["metadata"]["custom_fields"] == {"Ownership": {"Steward": "Permits Office"}}
    assert await http.count(ff) == 3
    assert archived_names(site) == ["permits.csv", "permits.csv.meta.json"]
    assert list(site.drop.iterdir()) == []


async def test_sidecar_alone_updates_metadata_only(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED, name="Old name")
    site.map(ff, action="replace")  # a metadata-only revision never replaces the rows
    before = await http.rows(ff, **{"$order": "id"})
    async with running_daemon(site) as daemon:
        site.drop_file("permits.csv.meta.toml", b'name = "Renamed"\ntags = ["a", "b"]\n')
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    assert job.source_id is None  # nothing was uploaded
    view = await http.get(f"/api/views/{ff}")
    assert (view["name"], view["tags"]) == ("Renamed", ["a", "b"])
    assert await http.rows(ff, **{"$order": "id"}) == before
    assert archived_names(site) == ["permits.csv.meta.toml"]
    assert await http.open_revisions(ff) == []


async def test_bad_sidecar_quarantines_its_pair_with_a_report(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff, by_path = await drop_pair(site, client, b'{"name": "New", "tags": "permits"}')
    assert by_path["permits.csv"].state is JobState.QUARANTINED
    for name in ("permits.csv", "permits.csv.meta.json"):
        assert (site.quarantine / name).exists(), name
        report = json.loads((site.quarantine / f"{name}.report.json").read_text())
        assert report["reason"] == "bad_metadata"
        assert report["message"] == (
            "metadata sidecar permits.csv.meta.json: tags: expected a list of strings, like "
            '["permits", "housing"] (fix the sidecar and drop the pair again)'
        )
    view = await http.get(f"/api/views/{ff}")
    assert view["name"] == "Old name"
    assert await http.count(ff) == 2
    assert await http.open_revisions(ff) == []


async def test_bad_sidecar_alone_is_quarantined_with_a_report(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED, name="Old name")
    site.map(ff)
    async with running_daemon(site) as daemon:
        site.drop_file("permits.csv.meta.toml", b'name = "N"\nlicence = "CC0"\n')
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.QUARANTINED
    report = json.loads((site.quarantine / "permits.csv.meta.toml.report.json").read_text())
    assert report["reason"] == "bad_metadata"
    assert report["message"].startswith(
        "metadata sidecar permits.csv.meta.toml: licence: unknown key; known keys: name,"
    )
    assert (await http.get(f"/api/views/{ff}"))["name"] == "Old name"


async def test_sidecar_beside_a_kept_data_file_still_applies(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED, name="Old name")
    site.map(ff, on_success="keep")
    async with running_daemon(site) as daemon:
        site.drop_file("permits.csv", b"id,name,score\n3,cy,30\n")
        (data,) = await daemon.finished_jobs(1)
        site.drop_file("permits.csv.meta.json", b'{"name": "Renamed later"}')
        (sidecar,) = await daemon.finished_jobs(1)
    assert (data.state, sidecar.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    assert (await http.get(f"/api/views/{ff}"))["name"] == "Renamed later"
    assert await http.count(ff) == 3
    assert sorted(p.name for p in site.drop.iterdir()) == ["permits.csv", "permits.csv.meta.json"]


async def test_sidecar_of_an_import_config_file_goes_in_its_revision(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await permits_dataset(site, client, "with-sidecar")
    site.limits["retry_delay"] = "100ms"  # the data job may wait for its sidecar
    async with running_daemon(site) as daemon:
        site.drop_file("p.csv", PERMITS_HEADER + b"P1,12,Main St,10\n")
        site.drop_file("p.csv.meta.toml", b'description = "From a sidecar"\n')
        jobs = await daemon.finished_jobs(2)
    (data,) = [job for job in jobs if job.relative_path == "p.csv"]
    assert data.state is JobState.PUBLISHED, data.error
    view = await http.get(f"/api/views/{ff}")
    assert (view["name"], view["description"]) == ("Permits", "From a sidecar")
    assert await http.rows(ff) == [{"permit_id": "P1", "address": "12 Main St", "fee": "10"}]
    assert archived_names(site) == ["p.csv", "p.csv.meta.toml"]
