"""FolderSource on real temporary folders: stability, ignores, symlinks, exclusions, order.

Time is driven by a fake clock and explicit ``scan()`` calls; the async tests wait on
the next candidate (bounded by ``asyncio.timeout``), never on a sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dsmsyncd.blob import BlobChanged
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources import Candidate, FolderSource, SourceError
from tests.daemon.support.fake_clock import FakeClock


def _source(
    root: Path,
    clock: FakeClock | None = None,
    *,
    min_age: float = 2.0,
    poll_interval: float = 30.0,
    ignore: list[str] | None = None,
    exclude_dirs: tuple[Path, ...] = (),
) -> FolderSource:
    config = SourceConfig(
        name="drop",
        url=f"file://{root}",
        min_age=min_age,
        poll_interval=poll_interval,
        ignore=["*.part", "*.tmp", ".*"] if ignore is None else ignore,
    )
    if clock is None:
        return FolderSource(config, exclude_dirs=exclude_dirs)
    return FolderSource(config, exclude_dirs=exclude_dirs, clock=clock)


def _write(path: Path, data: bytes = b"a,b\n1,2\n", mtime_s: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_s is not None:
        os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))
    return path


def _settled(source: FolderSource, clock: FakeClock) -> list[str]:
    """Scan, let min_age pass, scan again: the paths that became candidates."""
    source.scan()
    clock.advance(source.config.min_age)
    return [c.relative_path for c in source.scan()]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def test_folder_scan_files_present_at_start_wait_for_min_age(root: Path, clock: FakeClock) -> None:
    _write(root / "a.csv", mtime_s=100)
    _write(root / "permits" / "2026" / "b.csv", mtime_s=200)
    source = _source(root, clock)
    assert source.scan() == []
    clock.advance(1.9)
    assert source.scan() == []
    clock.advance(0.1)
    found = source.scan()
    assert [c.relative_path for c in found] == ["a.csv", "permits/2026/b.csv"]
    b = found[1]
    assert (b.source, b.size, b.mtime_ns) == ("drop", len(b"a,b\n1,2\n"), 200 * 10**9)
    assert b.identity == f"file:permits/2026/b.csv:{b.size}:{200 * 10**9}"
    assert b.mtime == datetime(1970, 1, 1, 0, 3, 20, tzinfo=UTC)


def test_folder_scan_growing_file_is_not_taken_early(root: Path, clock: FakeClock) -> None:
    path = _write(root / "big.csv", b"a,b\n", mtime_s=100)
    source = _source(root, clock)
    assert source.scan() == []
    clock.advance(1.5)
    with path.open("ab") as f:
        f.write(b"1,2\n")
    os.utime(path, ns=(101 * 10**9, 101 * 10**9))
    assert source.scan() == []
    clock.advance(1.5)  # 3 s since the first look, 1.5 s since it last changed
    assert source.scan() == []
    clock.advance(0.5)
    [candidate] = source.scan()
    assert (candidate.relative_path, candidate.size) == ("big.csv", 8)


def test_folder_scan_skips_ignore_patterns(root: Path, clock: FakeClock) -> None:
    for name in ("upload.csv.part", ".hidden.csv", "scratch.tmp", ".staging/inner.csv", "ok.csv"):
        _write(root / name)
    _write(root / "sub" / "x.tmp")
    assert _settled(_source(root, clock), clock) == ["ok.csv"]


def test_folder_scan_ignore_pattern_on_relative_path(root: Path, clock: FakeClock) -> None:
    _write(root / "tmp" / "a.csv")
    _write(root / "keep" / "a.csv")
    source = _source(root, clock, ignore=["tmp/*"])
    assert _settled(source, clock) == ["keep/a.csv"]


def test_folder_scan_refuses_symlink_outside_root(
    root: Path, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = _write(tmp_path / "outside" / "secret.csv")
    (root / "leak.csv").symlink_to(secret)
    (root / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    _write(root / "ok.csv")
    source = _source(root, clock)
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.sources.folder"):
        assert _settled(source, clock) == ["ok.csv"]
        clock.advance(10)
        assert source.scan() == []
    refusals = [
        r.getMessage() for r in caplog.records if "outside the source root" in r.getMessage()
    ]
    assert len(refusals) == 2  # once per link, not once per scan
    assert any("leak.csv" in line for line in refusals)
    assert any("leakdir" in line for line in refusals)


def test_folder_scan_accepts_symlink_inside_root(root: Path, clock: FakeClock) -> None:
    target = _write(root / "real" / "data.csv", mtime_s=100)
    (root / "latest.csv").symlink_to(target)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)  # not walked twice
    source = _source(root, clock)
    assert sorted(_settled(source, clock)) == ["latest.csv", "real/data.csv"]
    assert source.open_blob("latest.csv").size == target.stat().st_size


def test_folder_scan_skips_excluded_dirs(root: Path, clock: FakeClock) -> None:
    _write(root / "archive" / "done.csv")
    _write(root / "quarantine" / "bad.csv")
    _write(root / "new.csv")
    source = _source(root, clock, exclude_dirs=(root / "archive", Path("quarantine")))
    assert _settled(source, clock) == ["new.csv"]


def test_folder_scan_skips_symlink_into_excluded_dir(root: Path, clock: FakeClock) -> None:
    done = _write(root / "archive" / "done.csv")
    (root / "again.csv").symlink_to(done)
    source = _source(root, clock, exclude_dirs=(root / "archive",))
    assert _settled(source, clock) == []


def test_folder_scan_skips_non_regular_files(root: Path, clock: FakeClock) -> None:
    os.mkfifo(root / "pipe.csv")
    (root / "dangling.csv").symlink_to(root / "nowhere.csv")
    _write(root / "ok.csv")
    assert _settled(_source(root, clock), clock) == ["ok.csv"]


def test_folder_scan_orders_by_mtime_then_name(root: Path, clock: FakeClock) -> None:
    _write(root / "a.csv", mtime_s=300)
    _write(root / "c.csv", mtime_s=100)
    _write(root / "b.csv", mtime_s=100)
    _write(root / "sub" / "0.csv", mtime_s=200)
    assert _settled(_source(root, clock), clock) == ["b.csv", "c.csv", "sub/0.csv", "a.csv"]


def test_folder_scan_same_identity_is_not_yielded_twice(root: Path, clock: FakeClock) -> None:
    _write(root / "a.csv")
    source = _source(root, clock)
    assert _settled(source, clock) == ["a.csv"]
    for _ in range(3):
        clock.advance(60)
        assert source.scan() == []
        assert source.recheck_pending() == []


def test_folder_scan_rewritten_file_is_yielded_again(root: Path, clock: FakeClock) -> None:
    path = _write(root / "a.csv", b"v1\n", mtime_s=100)
    source = _source(root, clock)
    source.scan()
    clock.advance(2)
    [first] = source.scan()
    _write(path, b"version 2\n", mtime_s=200)
    assert source.scan() == []
    clock.advance(2)
    [second] = source.scan()
    assert second.relative_path == first.relative_path
    assert second.identity != first.identity
    assert (second.size, second.mtime_ns) == (10, 200 * 10**9)


def test_folder_scan_forgets_vanished_files(root: Path, clock: FakeClock) -> None:
    path = _write(root / "a.csv")
    _write(root / "b.csv")
    source = _source(root, clock)
    source.scan()
    assert source.pending_count == 2
    path.unlink()
    source.scan()
    assert source.pending_count == 1


def test_folder_recheck_pending_takes_settled_files_without_full_scan(
    root: Path, clock: FakeClock
) -> None:
    _write(root / "a.csv")
    source = _source(root, clock)
    source.scan()
    _write(root / "later.csv")  # not seen by any full scan yet: recheck leaves it alone
    clock.advance(2)
    assert [c.relative_path for c in source.recheck_pending()] == ["a.csv"]


def test_folder_scan_missing_root_logs_once_and_recovers(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "not-yet"
    source = _source(root, clock)
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.sources.folder"):
        assert source.scan() == []
        assert source.scan() == []
    assert sum("missing" in r.getMessage() for r in caplog.records) == 1
    _write(root / "a.csv")
    assert _settled(source, clock) == ["a.csv"]


def test_folder_open_blob_reads_ranges(root: Path, clock: FakeClock) -> None:
    _write(root / "dir" / "a.csv", b"0123456789")
    blob = _source(root, clock).open_blob("dir/a.csv")
    assert (blob.size, blob.name) == (10, "a.csv")
    assert asyncio.run(blob.read_range(2, 3)) == b"234"


@pytest.mark.parametrize("relative_path", ["../outside.csv", "dir/../../outside.csv", "/etc/hosts"])
def test_folder_open_blob_refuses_paths_leaving_the_root(
    root: Path, tmp_path: Path, relative_path: str
) -> None:
    _write(tmp_path / "outside.csv")
    with pytest.raises(SourceError, match="outside the source root"):
        _source(root).open_blob(relative_path)


def test_folder_open_blob_refuses_symlink_outside_root(root: Path, tmp_path: Path) -> None:
    (root / "leak.csv").symlink_to(_write(tmp_path / "secret.csv"))
    with pytest.raises(SourceError, match="outside the source root"):
        _source(root).open_blob("leak.csv")


def test_folder_file_created_empty_and_filled_before_min_age_is_one_candidate(
    root: Path, clock: FakeClock
) -> None:
    source = _source(root, clock, min_age=2.0)
    _write(root / "late.csv", b"")
    assert source.scan() == []
    clock.advance(1.5)
    _write(root / "late.csv", b"a,b\n1,2\n")  # filled before min_age: the wait starts over
    assert source.scan() == []
    clock.advance(1.5)
    assert source.recheck_pending() == []
    clock.advance(0.5)
    (found,) = source.scan()
    assert (found.relative_path, found.size) == ("late.csv", 8)
    clock.advance(60)
    assert source.scan() == []


def test_folder_open_blob_gives_a_job_only_the_version_it_was_found_as(
    root: Path, clock: FakeClock
) -> None:
    source = _source(root, clock, min_age=2.0)
    _write(root / "late.csv", b"")
    source.scan()
    clock.advance(2.0)
    (empty,) = source.scan()  # empty for min_age: a candidate (the pipeline judges it)
    assert empty.size == 0
    _write(root / "late.csv", b"a,b\n1,2\n")
    with pytest.raises(BlobChanged, match=r"changed since it was found \(size 0 -> 8"):
        source.open_blob("late.csv", empty.identity)
    source.scan()
    clock.advance(2.0)
    (filled,) = source.scan()  # the filled version is a candidate of its own
    blob = source.open_blob("late.csv", filled.identity)
    assert asyncio.run(blob.read_range(0, blob.size)) == b"a,b\n1,2\n"


def test_folder_open_blob_vanished_file_says_so(root: Path) -> None:
    with pytest.raises(SourceError, match="vanished") as excinfo:
        _source(root).open_blob("gone.csv")
    assert "source drop: 'gone.csv'" in str(excinfo.value)


async def test_folder_check_reports_missing_root(tmp_path: Path) -> None:
    problems = await _source(tmp_path / "absent").check()
    assert len(problems) == 1
    assert "does not exist" in problems[0]


async def test_folder_check_healthy_root_has_no_problems(root: Path) -> None:
    assert await _source(root).check() == []


# -- the async loop: real watchfiles events ------------------------------------------------


async def _next(candidates: AsyncIterator[Candidate]) -> Candidate:
    async with asyncio.timeout(10):
        return await anext(candidates)


async def test_folder_candidates_picks_up_file_created_after_start(
    root: Path, clock: FakeClock
) -> None:
    _write(root / "early.csv")
    source = _source(root, clock, min_age=0.0, poll_interval=3600)
    stop = asyncio.Event()
    candidates = source.candidates(stop)
    try:
        assert (await _next(candidates)).relative_path == "early.csv"
        # Written under an ignored name and renamed, as a well-behaved writer does.
        _write(root / "incoming" / "late.csv.part").rename(root / "incoming" / "late.csv")
        assert (await _next(candidates)).relative_path == "incoming/late.csv"
    finally:
        await candidates.aclose()


async def test_folder_candidates_settling_file_is_taken_without_new_events(root: Path) -> None:
    _write(root / "a.csv")
    source = _source(root, min_age=0.3, poll_interval=3600)  # real monotonic clock
    started = time.monotonic()
    candidates = source.candidates(asyncio.Event())
    try:
        assert (await _next(candidates)).relative_path == "a.csv"
        assert time.monotonic() - started >= 0.3
    finally:
        await candidates.aclose()


class _Seen(logging.Handler):
    """Sets a (thread-safe) event when a log line containing ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_folder_candidates_waits_for_a_missing_root(tmp_path: Path, clock: FakeClock) -> None:
    root = tmp_path / "mounted-later"
    source = _source(root, clock, min_age=0.0, poll_interval=0.1)
    seen = _Seen("is missing")
    logging.getLogger("dsmsyncd.sources.folder").addHandler(seen)
    candidates = source.candidates(asyncio.Event())
    try:
        first = asyncio.ensure_future(_next(candidates))
        assert await asyncio.to_thread(seen.event.wait, 10)  # the loop has found no root
        _write(root / "a.csv")
        assert (await first).relative_path == "a.csv"
    finally:
        logging.getLogger("dsmsyncd.sources.folder").removeHandler(seen)
        await candidates.aclose()


async def test_folder_candidates_stops_when_stop_is_set(root: Path, clock: FakeClock) -> None:
    _write(root / "a.csv")
    source = _source(root, clock, min_age=0.0, poll_interval=3600)
    stop = asyncio.Event()
    candidates = source.candidates(stop)
    assert (await _next(candidates)).relative_path == "a.csv"
    stop.set()
    with pytest.raises(StopAsyncIteration):
        await _next(candidates)
