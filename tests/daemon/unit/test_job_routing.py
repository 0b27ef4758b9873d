"""Routing snapshots: a state database from before them migrates, and its jobs still route."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.pipeline.job_routing import job_mapping, release_held, routing_snapshot
from dsmsyncd.state import SCHEMA_VERSION, JobState, SqliteStateStore
from dsmsyncd.state.migrations import MIGRATIONS
from tests.daemon.support.jobs import add_job


def _mapping(dataset: str, match: str, action: str = "update") -> MappingConfig:
    return MappingConfig(
        source="drop",
        match=match,
        dataset=dataset,
        action=action,  # type: ignore[arg-type]
        on_success="keep",
        quarantine_dir=Path("/q"),
    )


def _schema_1_database(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_us INTEGER)"
        )
        for statement in MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1, 0)")
        raw.execute(
            "INSERT INTO jobs (source, relative_path, identity, size, mtime_us, dataset,"
            " mapping_index, state, discovered_at_us, updated_at_us)"
            " VALUES ('drop', 'a/x.csv', 'file:a/x.csv:1:1', 1, 1, 'aaaa-0001', 0,"
            " 'discovered', 1, 1)"
        )


async def test_schema_1_database_migrates_and_old_jobs_route_by_todays_mappings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    _schema_1_database(path)
    async with SqliteStateStore(path) as store:
        [job] = await store.unfinished_jobs()
        assert job.routing is None
        other = _mapping("bbbb-0002", "**/*.csv")
        mine = _mapping("aaaa-0001", "a/*.csv")
        # Today's first match goes to another dataset: the job is not rerouted, it is held.
        assert job_mapping(job, [other, mine]) == (
            None,
            "no [[mapping]] routes drop:a/x.csv to dataset aaaa-0001 any more (the job "
            "predates routing snapshots)",
        )
        assert job_mapping(job, [mine, other]) == (mine, None)
    with sqlite3.connect(path) as raw:
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


async def test_snapshot_wins_over_todays_mapping_and_release_needs_the_dataset(
    tmp_path: Path,
) -> None:
    discovered_with = _mapping("aaaa-0001", "*.csv", "update")
    async with SqliteStateStore(tmp_path / "state.db") as store:
        job = await add_job(
            store,
            "x.csv",
            identity="file:x.csv:1:1",
            size=1,
            mtime=datetime.now(UTC),
            dataset="aaaa-0001",
            routing=routing_snapshot(discovered_with),
        )
        edited = _mapping("aaaa-0001", "*.csv", "replace")
        assert job_mapping(job, [edited]) == (discovered_with, None)
        reason = job_mapping(job, [_mapping("bbbb-0002", "*.csv")])[1]
        assert (
            reason
            == "no [[mapping]] from source 'drop' to dataset aaaa-0001 is configured any more"
        )
        held = await store.transition(job.id, JobState.HELD, expect=JobState.DISCOVERED)
        assert await release_held(store, [_mapping("bbbb-0002", "*.csv")]) == 0
        assert await release_held(store, [edited]) == 1
        released = await store.get_job(held.id)
        assert released.state is JobState.DISCOVERED
        assert released.routing == routing_snapshot(discovered_with)
