"""Looks after watch events: only the paths the events name are examined (a new
directory: its subtree), with every rule of a full scan; a flood of events, like the
poll tick, falls back to a full scan.

The synchronous tests drive ``look_at`` with a fake clock; the async ones run the real
watcher on real files and wait on the next candidate (bounded), never on a sleep. A file
rewritten through a hard link outside the root changes with no event in the root:
only a full scan sees it, which tells a look at named paths from a full scan.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources import Candidate, FolderSource
from dsmsyncd.sources import watch as watch_module
from tests.daemon.support.fake_clock import FakeClock


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def _source(root: Path, clock: FakeClock, *, min_age: float = 2.0) -> FolderSource:
    config = SourceConfig(
        name="drop",
        url=f"file://{root}",
        min_age=min_age,
        poll_interval=3600,
        ignore=["*.part", ".*"],
    )
    return FolderSource(config, exclude_dirs=(Path("archive"),), clock=clock)


def _drop(path: Path, data: bytes = b"a,b\n1,2\n") -> Path:
    """Written under an ignored name and renamed into place, as a careful writer does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.rename(path)
    return path


def _paths(found: list[Candidate]) -> list[str]:
    return [c.relative_path for c in found]


def _settled_look(source: FolderSource, clock: FakeClock, paths: list[str]) -> list[str]:
    source.look_at(paths)
    clock.advance(source.config.min_age)
    return _paths(source.recheck_pending())


# -- look_at: the rules of a scan, for the named paths only ------------------------------


def test_look_at_walks_a_new_directory_and_only_what_is_named(root: Path, clock: FakeClock) -> None:
    _drop(root / "new" / "deeper" / "a.csv")
    _drop(root / "new" / "b.csv")
    _drop(root / "not-named.csv")
    source = _source(root, clock)
    assert sorted(_settled_look(source, clock, ["new"])) == ["new/b.csv", "new/deeper/a.csv"]
    assert "not-named.csv" not in source._gate


def test_look_at_keeps_the_rules_of_a_scan(
    root: Path, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    _drop(root / ".staging" / "hidden.csv")  # under an ignored directory
    _drop(root / "archive" / "done.csv")  # under an excluded directory
    _drop(root / "real" / "data.csv")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    secret = _drop(tmp_path / "outside" / "secret.csv")
    (root / "leak.csv").symlink_to(secret)
    os.mkfifo(root / "pipe.csv")
    source = _source(root, clock)
    named = [".staging/hidden.csv", "archive/done.csv", "alias/data.csv", "leak.csv", "pipe.csv"]
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.sources.folder"):
        assert _settled_look(source, clock, [*named, "real/data.csv", "a.csv.part"]) == [
            "real/data.csv"
        ]
    warned = sorted(r.getMessage() for r in caplog.records)
    assert len(warned) == 2
    assert "leak.csv: symlink to" in warned[0]
    assert "outside the source root" in warned[0]
    assert "pipe.csv: not a regular file (a FIFO)" in warned[1]


def test_look_at_metadata_change_of_a_taken_file_does_not_retake_it(
    root: Path, clock: FakeClock
) -> None:
    path = _drop(root / "a.csv")
    source = _source(root, clock)
    assert _settled_look(source, clock, ["a.csv"]) == ["a.csv"]
    path.chmod(0o600)
    clock.advance(60)
    assert source.look_at(["a.csv"]) == []
    assert source.recheck_pending() == []


def test_look_at_rewrite_by_rename_is_seen_again(root: Path, clock: FakeClock) -> None:
    _drop(root / "a.csv", b"v1\n")
    source = _source(root, clock)
    assert _settled_look(source, clock, ["a.csv"]) == ["a.csv"]
    _drop(root / "a.csv", b"version 2\n")  # NAME.part -> NAME: a new inode
    source.look_at(["a.csv.part", "a.csv"])
    clock.advance(2.0)
    [again] = source.recheck_pending()
    assert (again.relative_path, again.size) == ("a.csv", 10)


def test_look_at_forgets_deleted_files_and_removed_directories(
    root: Path, clock: FakeClock
) -> None:
    a = _drop(root / "a.csv")
    _drop(root / "sub" / "x" / "b.csv")
    _drop(root / "subway.csv")
    source = _source(root, clock)
    source.look_at(["a.csv", "sub", "subway.csv"])
    assert source.pending_count == 3
    a.unlink()
    (root / "sub").rename(root.parent / "moved-away")
    source.look_at(["a.csv", "sub"])
    assert sorted(source._gate.pending()) == ["subway.csv"]


# -- the candidates loop with the real watcher ---------------------------------------------


async def _next(candidates: AsyncIterator[Candidate]) -> Candidate:
    async with asyncio.timeout(10):
        return await anext(candidates)


def _rewrite_unseen(root: Path, tmp_path: Path) -> Path:
    """``a.csv`` in the root, and a hard link to it outside: writing through the link
    changes the file with no event in the root. Returns the link."""
    link = tmp_path / "elsewhere" / "a-link.csv"
    link.parent.mkdir()
    os.link(_drop(root / "a.csv"), link)
    return link


async def test_event_look_finds_a_file_in_a_new_sub_folder_without_a_full_scan(
    root: Path, tmp_path: Path, clock: FakeClock
) -> None:
    link = _rewrite_unseen(root, tmp_path)
    source = _source(root, clock, min_age=0.0)
    candidates = source.candidates(asyncio.Event())
    try:
        assert (await _next(candidates)).relative_path == "a.csv"  # the initial scan
        link.write_bytes(b"a,b\n1,2\n3,4\n")  # a full scan would take it again
        _drop(root / "new" / "deeper" / "b.csv")
        assert (await _next(candidates)).relative_path == "new/deeper/b.csv"
        _drop(root / "c.csv")
        assert (await _next(candidates)).relative_path == "c.csv"
    finally:
        await candidates.aclose()


async def test_event_look_change_to_a_taken_file_or_its_deletion_does_not_retake_it(
    root: Path, clock: FakeClock
) -> None:
    _drop(root / "a.csv")
    _drop(root / "gone.csv")
    source = _source(root, clock, min_age=0.0)
    candidates = source.candidates(asyncio.Event())
    try:
        assert {(await _next(candidates)).relative_path for _ in range(2)} == {
            "a.csv",
            "gone.csv",
        }
        (root / "a.csv").chmod(0o600)  # an event for a file taken, same identity
        (root / "gone.csv").unlink()
        _drop(root / "b.csv")
        assert (await _next(candidates)).relative_path == "b.csv"
        assert "gone.csv" not in source._gate  # forgotten
        assert source.pending_count == 2  # a.csv and b.csv
    finally:
        await candidates.aclose()


async def test_event_flood_falls_back_to_a_full_scan(
    root: Path, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_module, "FLOOD_CHANGES", 0)  # every batch is a flood
    link = _rewrite_unseen(root, tmp_path)
    source = _source(root, clock, min_age=0.0)
    candidates = source.candidates(asyncio.Event())
    try:
        assert (await _next(candidates)).relative_path == "a.csv"
        link.write_bytes(b"a,b\n1,2\n3,4\n")
        _drop(root / "b.csv")
        again = await _next(candidates)  # the full scan sees the rewrite, older than b
        assert (again.relative_path, again.size) == ("a.csv", 12)
        assert (await _next(candidates)).relative_path == "b.csv"
    finally:
        await candidates.aclose()
