"""The light rescan of a drop folder: while events arrive, most periodic rescans stat only
what is new, settling or replaced (a directory listing gives names and inodes for free);
a file taken already and still the same inode costs no ``stat``.

Driven like ``test_folder_source.py``: a fake clock and explicit ``scan`` calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources import FolderSource
from dsmsyncd.sources.stability import StabilityGate
from tests.daemon.support.fake_clock import FakeClock


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> FolderSource:
    root = tmp_path / "drop"
    root.mkdir()
    config = SourceConfig(name="drop", url=f"file://{root}", min_age=2.0)
    return FolderSource(config, clock=clock)


def _taken(source: FolderSource, clock: FakeClock) -> list[str]:
    source.scan()
    clock.advance(2.0)
    return [c.relative_path for c in source.scan()]


def _write(path: Path, data: bytes, mtime_s: int) -> None:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))


def _take_a(source: FolderSource, clock: FakeClock) -> Path:
    """``a.csv`` written, settled and taken; its path."""
    path = source.root / "a.csv"
    _write(path, b"a\n1\n", 100)
    assert _taken(source, clock) == ["a.csv"]
    return path


def test_light_scan_keeps_taken_files_and_finds_new_ones(
    source: FolderSource, clock: FakeClock
) -> None:
    _take_a(source, clock)
    _write(source.root / "b.csv", b"b\n2\n", 200)
    assert source.scan(light=True) == []  # b is settling; a is still taken
    clock.advance(2.0)
    assert [c.relative_path for c in source.scan(light=True)] == ["b.csv"]
    assert "a.csv" in source._gate  # kept by the light scans' sweep, not forgotten
    (source.root / "a.csv").unlink()
    assert source.scan(light=True) == []
    assert "a.csv" not in source._gate  # gone from the listing: swept


def test_light_scan_looks_again_at_a_file_replaced_by_a_rename(
    source: FolderSource, clock: FakeClock
) -> None:
    _take_a(source, clock)
    _write(source.root / "a.csv.part", b"a\n1\n2\n", 300)
    os.replace(source.root / "a.csv.part", source.root / "a.csv")  # a new inode
    assert source.scan(light=True) == []
    clock.advance(2.0)
    [again] = source.scan(light=True)
    assert (again.relative_path, again.size) == ("a.csv", len(b"a\n1\n2\n"))


def test_a_rewrite_in_place_is_left_to_events_and_the_full_scan(
    source: FolderSource, clock: FakeClock
) -> None:
    path = _take_a(source, clock)
    inode = path.stat().st_ino
    _write(path, b"a\n1\n2\n", 300)
    assert path.stat().st_ino == inode
    assert source.scan(light=True) == []  # same inode: not stat-ed
    assert _taken(source, clock) == ["a.csv"]  # a full scan (as an event brings) sees it


def test_gate_still_taken_only_for_a_taken_file_with_the_same_inode(clock: FakeClock) -> None:
    gate = StabilityGate(2.0, clock)
    assert not gate.still_taken("a.csv", 7)  # never seen
    gate.observe("a.csv", 10, 1, inode=7)
    assert not gate.still_taken("a.csv", 7)  # settling: a light scan stats it
    clock.advance(2.0)
    assert gate.observe("a.csv", 10, 1, inode=7)
    assert gate.still_taken("a.csv", 7)
    assert not gate.still_taken("a.csv", 8)  # replaced
    gate.observe("a.csv", 10, 1)  # seen without its inode (a recheck): stat it again
    assert not gate.still_taken("a.csv", 7)
