"""The daemon's commands as a user runs them: real processes against the local server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import run_files
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import CliResult, run_cli
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name,score\n1,ann,10\n2,bob,20\n"
CONFIG_COLUMNS = [
    {"field_name": "id", "display_name": "Id", "transform_expr": "`id`"},
    {"field_name": "score", "display_name": "Score", "transform_expr": "to_number(`score`)"},
]


@dataclass(frozen=True)
class Pushed:
    dataset: str
    result: CliResult
    rows_before: list[dict[str, Any]]


async def push(site: Site, client: DsmapiClient, http: Http, file: Path, *flags: str) -> Pushed:
    """``dsmsyncd push FILE --dataset FF --action update FLAGS``, where FF is a new dataset
    published with SEED."""
    ff = await publish_dataset(client, SEED)
    config = site.write_config()
    before = await http.rows(ff, **{"$order": "id"})
    result = await run_cli(
        "push", str(file), "--dataset", ff, "--action", "update", *flags, "-c", str(config)
    )
    return Pushed(ff, result, before)


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
    file = tmp_path / "push.csv"
    file.write_bytes(b"id,name,score\n3,cy,30\n4,di,40\n")
    pushed = await push(site, client, http, file)
    ff, result = pushed.dataset, pushed.result
    assert result.code == 0, result
    assert "published" in result.out
    assert [r["id"] for r in await http.rows(ff, **{"$order": "id"})] == ["1", "2", "3", "4"]
    assert await http.open_revisions(ff) == []
    assert file.exists()  # a pushed file stays where it is


DRY_RUNS = {
    "bad_file_exits_4": (
        b"id,name,score\n3,cy,thirty\n4,di,40\n5,ed,fifty\n",
        4,
        ["rows with errors: 2", "would_quarantine"],
    ),
    "rows_the_server_could_not_parse_are_reported": (
        b"id,name,score\n3,cy,30\n4,di\n5,ed,50,extra\n",
        4,
        [
            "rows with errors: 2",
            "of which rows the server could not parse: 2",
            "would_quarantine",
            '"too_short"',
            '"too_long"',
        ],
    ),
    "good_file_exits_0": (b"id,name,score\n3,cy,30\n", 0, ["rows with errors: 0", "would_apply"]),
}


@pytest.mark.parametrize("case", sorted(DRY_RUNS))
async def test_push_dry_run_changes_nothing(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path, case: str
) -> None:
    content, code, said = DRY_RUNS[case]
    (tmp_path / "file.csv").write_bytes(content)
    pushed = await push(site, client, http, tmp_path / "file.csv", "--dry-run")
    assert pushed.result.code == code, pushed.result
    assert [line for line in said if line not in pushed.result.out] == []
    assert await http.rows(pushed.dataset, **{"$order": "id"}) == pushed.rows_before
    assert await http.open_revisions(pushed.dataset) == []


async def test_status_lists_recent_jobs(site: Site, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    (job,) = await run_files(site, ("day1.csv", b"id,name,score\n3,cy,30\n"))
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
