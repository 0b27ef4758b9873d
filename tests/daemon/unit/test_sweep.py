"""After a crash between "published" and moving the file, the next start moves it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.pipeline.sweep import finalize_leftovers
from dsmsyncd.sources.base import file_identity
from dsmsyncd.state import JobState, SqliteStateStore
from tests.daemon.support.jobs import add_job


async def test_sweep_archives_a_published_file_left_in_place_once(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    (root / "a.csv").write_text("id\n1\n", encoding="utf-8")
    st = (root / "a.csv").stat()
    mapping = MappingConfig(
        source="drop",
        match="*.csv",
        dataset="abcd-1234",
        action="update",
        on_success="archive",
        archive_dir=tmp_path / "archive",
        quarantine_dir=tmp_path / "quarantine",
    )
    async with SqliteStateStore(str(tmp_path / "state.db")) as store:
        job = await add_job(
            store,
            "a.csv",
            identity=file_identity("a.csv", st.st_size, st.st_mtime_ns),
            size=st.st_size,
            mtime=datetime(2026, 1, 1, tzinfo=UTC),
        )
        # The crash: the outcome was recorded, the file never moved.
        await store.transition(job.id, JobState.PUBLISHED, expect=JobState.DISCOVERED)

        def finalizer(_job: object) -> FolderFinalizer:
            return FolderFinalizer(root)

        swept = await finalize_leftovers(store, [mapping], finalizer, known_sources={"drop"})
        again = await finalize_leftovers(store, [mapping], finalizer, known_sources={"drop"})
        events = await store.events(job.id)

    assert (swept, again) == (1, 0)
    assert not (root / "a.csv").exists()
    archived = list((tmp_path / "archive").rglob("a.csv"))
    assert len(archived) == 1
    assert events[-1].details["after_restart"] is True
    assert events[-1].state is JobState.PUBLISHED
