"""The daemon's commands as a user runs them: real processes against the local server."""

from __future__ import annotations

import json
from pathlib import Path

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.datasets import publish_dataset
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import run_cli
from tests.daemon.e2e.site import Site

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n"
CONFIG_COLUMNS = [
    {"field_name": "id", "display_name": "Id", "transform_expr": "`id`"},
    {"field_name": "score", "display_name": "Score", "transform_expr": "to_number(`score`)"},
]


async def test_check_config_offline_bad_config_names_key_paths(site: Site) -> None:
    site.map("NOT-A-4X4")
    path = site.write_config()
    text = path.read_text().replace("max_concurrent_jobs = 2", "max_concurrent_jobs = 0")
    path.write_text(text + "[admin2]\nlisten = 1\n")
    result = await run_cli("check-config", "-c", str(path), "--offline")
    assert result.code == 2, result
    assert str(path) in result.err
    assert "mapping[0].dataset" in result.err
    assert "limits.max_concurrent_jobs" in result.err
    assert "admin2" in result.err
    assert "robot-pw" not in result.err + result.out


async def test_check_config_online_finds_dataset_and_import_config(
    site: Site, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    await client.create_config(
        {"name": "scores", "data_action": "update", "columns": CONFIG_COLUMNS}
    )
    site.map(ff, import_config="scores")
    result = await run_cli("check-config", "-c", str(site.write_config()))
    assert result.code == 0, result
    assert f"ok   mapping[0].dataset: {ff} exists" in result.out
    assert "ok   mapping[0].import_config: import config 'scores' exists" in result.out
    assert "ok   target:" in result.out
    assert "valid" in result.out.splitlines()[-1]


async def test_check_config_online_missing_dataset_fails(site: Site, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    site.map("zzzz-9999", match="other/*.csv")
    result = await run_cli("check-config", "-c", str(site.write_config()))
    assert result.code == 2, result
    assert f"ok   mapping[0].dataset: {ff} exists" in result.out
    assert "FAIL mapping[1].dataset: zzzz-9999 not found" in result.out
    assert "1 problem(s)" in result.out


async def test_push_publishes_file_and_exits_zero(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path
) -> None:
    ff = await publish_dataset(client, SEED)
    config = site.write_config()
    file = tmp_path / "push.csv"
    file.write_bytes(b"id,name,score\n3,cy,30\n4,di,40\n")
    result = await run_cli(
        "push", str(file), "--dataset", ff, "--action", "update", "-c", str(config)
    )
    assert result.code == 0, result
    assert "published" in result.out
    assert [r["id"] for r in await http.rows(ff, **{"$order": "id"})] == ["1", "2", "3", "4"]
    assert await http.open_revisions(ff) == []
    assert file.exists()  # a pushed file stays where it is


async def test_push_dry_run_bad_file_exits_4_and_changes_nothing(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path
) -> None:
    ff = await publish_dataset(client, SEED)
    config = site.write_config()
    file = tmp_path / "bad.csv"
    file.write_bytes(b"id,name,score\n3,cy,thirty\n4,di,40\n5,ed,fifty\n")
    before = await http.rows(ff, **{"$order": "id"})
    result = await run_cli(
        "push", str(file), "--dataset", ff, "--action", "update", "--dry-run", "-c", str(config)
    )
    assert result.code == 4, result
    assert "rows with errors: 2" in result.out
    assert "would_quarantine" in result.out
    assert await http.rows(ff, **{"$order": "id"}) == before
    assert await http.open_revisions(ff) == []


async def test_push_dry_run_reports_rows_the_server_could_not_parse(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path
) -> None:
    ff = await publish_dataset(client, SEED)
    config = site.write_config()
    file = tmp_path / "ragged.csv"
    file.write_bytes(b"id,name,score\n3,cy,30\n4,di\n5,ed,50,extra\n")
    result = await run_cli(
        "push", str(file), "--dataset", ff, "--action", "update", "--dry-run", "-c", str(config)
    )
    assert result.code == 4, result
    assert "rows with errors: 2" in result.out
    assert "of which rows the server could not parse: 2" in result.out
    assert "would_quarantine" in result.out
    assert '"too_short"' in result.out
    assert '"too_long"' in result.out
    assert await http.count(ff) == 2
    assert await http.open_revisions(ff) == []


async def test_status_lists_recent_jobs(site: Site, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    async with running_daemon(site) as daemon:
        site.drop_file("day1.csv", b"id,name,score\n3,cy,30\n")
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    result = await run_cli("status", "-c", str(site.config_path))
    assert result.code == 0, result
    assert f"{ff}:" in result.out
    assert "published" in result.out
    assert "drop:day1.csv" in result.out
    as_json = await run_cli("status", "-c", str(site.config_path), "--json")
    assert as_json.code == 0, as_json
    (row,) = json.loads(as_json.out)
    assert (row["dataset"], row["state"], row["file"]) == (ff, "published", "drop:day1.csv")


async def test_push_dry_run_good_file_exits_0_and_changes_nothing(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path
) -> None:
    ff = await publish_dataset(client, SEED)
    config = site.write_config()
    file = tmp_path / "good.csv"
    file.write_bytes(b"id,name,score\n3,cy,30\n")
    result = await run_cli(
        "push", str(file), "--dataset", ff, "--action", "update", "--dry-run", "-c", str(config)
    )
    assert result.code == 0, result
    assert "rows with errors: 0" in result.out
    assert "would_apply" in result.out
    assert await http.count(ff) == 2
    assert await http.open_revisions(ff) == []
