"""Where files go: archive layout, never overwrite, quarantine with an atomic report."""

from __future__ import annotations

import errno
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.daemon.source_set import Sources
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.finalize.report import QuarantineReport, ReportedFile
from dsmsyncd.sources.base import file_identity
from dsmsyncd.state import Job
from tests.daemon.support.jobs import finished_job

NOW = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)


def make_job(name: str, file: Path | None = None) -> Job:
    """A finished job for ``name``; with ``file``, its identity is that file's as it is now."""
    st = file.stat() if file is not None else None
    identity = file_identity(name, st.st_size, st.st_mtime_ns) if st else f"file:{name}:0:0"
    return finished_job("drop", name, identity, 3, NOW)


def make_mapping(tmp_path: Path, **kw: Any) -> MappingConfig:
    return MappingConfig(
        source="drop",
        match="*.csv",
        dataset="abcd-1234",
        action="update",
        archive_dir=kw.pop("archive_dir", tmp_path / "archive"),
        quarantine_dir=tmp_path / "quarantine",
        **kw,
    )


def drop(tmp_path: Path, name: str, data: bytes = b"a\n1") -> Path:
    path = tmp_path / "drop" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def finalizer(tmp_path: Path) -> FolderFinalizer:
    return FolderFinalizer(tmp_path / "drop", clock=lambda: NOW)


async def test_archive_goes_under_utc_date_and_never_overwrites(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    mapping = make_mapping(tmp_path)
    day = tmp_path / "archive" / "2026" / "03" / "07"
    for n, content in enumerate([b"one", b"two", b"three"]):
        where = await finalizer.succeeded(
            make_job("data.csv", drop(tmp_path, "data.csv", content)), mapping
        )
        expected = day / ("data.csv" if n == 0 else f"data ({n}).csv")
        assert where == f"archived: {expected}"
    assert (day / "data.csv").read_bytes() == b"one"
    assert (day / "data (1).csv").read_bytes() == b"two"
    assert (day / "data (2).csv").read_bytes() == b"three"
    assert not (tmp_path / "drop" / "data.csv").exists()


async def test_relative_archive_dir_is_under_the_source_root(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    mapping = make_mapping(tmp_path, archive_dir=Path("done"))
    await finalizer.succeeded(make_job("sub/x.csv", drop(tmp_path, "sub/x.csv")), mapping)
    assert (tmp_path / "drop" / "done" / "2026" / "03" / "07" / "x.csv").exists()


async def test_delete_and_keep(tmp_path: Path, finalizer: FolderFinalizer) -> None:
    path = drop(tmp_path, "d.csv")
    where = await finalizer.succeeded(
        make_job("d.csv", path), make_mapping(tmp_path, on_success="delete")
    )
    assert where.startswith("deleted")
    assert not path.exists()
    path = drop(tmp_path, "k.csv")
    where = await finalizer.succeeded(make_job("k.csv"), make_mapping(tmp_path, on_success="keep"))
    assert where.startswith("kept")
    assert path.exists()


async def test_vanished_file_is_reported_not_raised(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    where = await finalizer.succeeded(make_job("gone.csv"), make_mapping(tmp_path))
    assert where.startswith("vanished")


def report(name: str) -> QuarantineReport:
    return QuarantineReport(
        reason="too_many_row_errors",
        message="2 rows have errors; fix them",
        dataset="abcd-1234",
        file=ReportedFile(name, 3, "ab" * 32, "drop"),
        revision_seq=4,
        revision_id=44,
        error_count=2,
        error_rows=[{"offset": n, "row": {"x": {"error": "bad"}}} for n in range(150)],
        server_request_id="req-1",
        discovered_at=NOW,
        started_at=NOW,
        quarantined_at=NOW,
    )


async def test_quarantine_moves_file_and_writes_report_beside_it(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    mapping = make_mapping(tmp_path)
    quarantine = tmp_path / "quarantine"
    for _ in range(2):
        job = make_job("bad.csv", drop(tmp_path, "bad.csv"))
        await finalizer.quarantine(job, mapping, report("bad.csv"))
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "bad (1).csv",
        "bad (1).csv.report.json",
        "bad.csv",
        "bad.csv.report.json",
    ]
    data = json.loads((quarantine / "bad.csv.report.json").read_text())
    assert set(data) == {
        "reason",
        "message",
        "dataset",
        "revision_seq",
        "revision_id",
        "error_count",
        "error_rows",
        "parse_error_count",
        "parse_errors",
        "server_request_id",
        "file",
        "discovered_at",
        "started_at",
        "quarantined_at",
        "dsmsyncd_version",
    }
    assert data["file"] == {"path": "bad.csv", "size": 3, "sha256": "ab" * 32, "source": "drop"}
    assert len(data["error_rows"]) == 100
    assert data["quarantined_at"] == NOW.isoformat()


async def test_quarantine_of_vanished_file_still_writes_report(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    where = await finalizer.quarantine(make_job("gone.csv"), make_mapping(tmp_path), report("x"))
    assert where.startswith("vanished")
    assert (tmp_path / "quarantine" / "gone.csv.report.json").exists()


def replace(path: Path, data: bytes) -> None:
    """What a careful writer does: write a temporary file, rename it over the old one."""
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    later = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(partial, ns=(later, later))
    os.replace(partial, path)


@pytest.mark.parametrize("on_success", ["archive", "delete"])
async def test_replaced_file_is_left_in_place_for_its_own_job(
    tmp_path: Path, finalizer: FolderFinalizer, on_success: str
) -> None:
    path = drop(tmp_path, "day.csv", b"v1")
    job = make_job("day.csv", path)  # the version the job published
    replace(path, b"v2-new")
    where = await finalizer.succeeded(job, make_mapping(tmp_path, on_success=on_success))
    assert where.startswith(f"left in place: {path} is not the version this job read")
    assert path.read_bytes() == b"v2-new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["day.csv"]  # no private name left
    assert not (tmp_path / "archive").exists()


async def test_quarantine_of_replaced_file_writes_the_report_only(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    path = drop(tmp_path, "bad.csv", b"v1")
    job = make_job("bad.csv", path)
    replace(path, b"v2-fixed")
    where = await finalizer.quarantine(job, make_mapping(tmp_path), report("bad.csv"))
    assert where.startswith("left in place: ")
    assert path.read_bytes() == b"v2-fixed"
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == ["bad.csv.report.json"]


async def test_claim_interrupted_by_a_crash_is_finished_next_time(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    path = drop(tmp_path, "day.csv", b"v1")
    job = make_job("day.csv", path)
    os.rename(path, path.with_name(".day.csv.dsmsyncd-1"))  # claimed, then the crash
    where = await finalizer.succeeded(job, make_mapping(tmp_path))
    assert where.startswith("archived: ")
    assert list((tmp_path / "drop").iterdir()) == []
    [archived] = (tmp_path / "archive").rglob("day.csv")
    assert archived.read_bytes() == b"v1"


async def test_put_back_never_overwrites_a_newer_file_that_took_the_name(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    path = drop(tmp_path, "day.csv", b"v1")
    job = make_job("day.csv", path)
    replace(path, b"v2")
    os.rename(path, path.with_name(".day.csv.dsmsyncd-1"))  # claimed v2, then the crash
    drop(tmp_path, "day.csv", b"v3")  # and yet another version arrived
    where = await finalizer.succeeded(job, make_mapping(tmp_path))
    assert "put back as" in where
    contents = sorted(p.read_bytes() for p in (tmp_path / "drop").iterdir())
    assert contents == [b"v2", b"v3"]
    assert not (tmp_path / "archive").exists()


async def test_put_back_on_a_filesystem_without_hard_links_never_overwrites_either(
    tmp_path: Path, finalizer: FolderFinalizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMB, vfat and some FUSE drop folders refuse link(2) with EPERM; the fallback must
    not be a rename, which would replace the newer file that took the name."""
    path = drop(tmp_path, "day.csv", b"v1")
    job = make_job("day.csv", path)
    replace(path, b"v2")
    os.rename(path, path.with_name(".day.csv.dsmsyncd-1"))  # claimed v2, then the crash
    drop(tmp_path, "day.csv", b"v3")

    def no_hard_links(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    where = await finalizer.succeeded(job, make_mapping(tmp_path))
    assert "put back as" in where
    assert (tmp_path / "drop" / "day.csv").read_bytes() == b"v3"
    contents = sorted(p.read_bytes() for p in (tmp_path / "drop").iterdir())
    assert contents == [b"v2", b"v3"]


async def test_an_archive_that_cannot_be_written_leaves_the_file_under_its_own_name(
    tmp_path: Path, finalizer: FolderFinalizer
) -> None:
    path = drop(tmp_path, "day.csv", b"v1")
    job = make_job("day.csv", path)
    blocked = tmp_path / "archive"
    blocked.write_bytes(b"a file where the archive folder should be")
    with pytest.raises(OSError, match="archive"):
        await finalizer.succeeded(job, make_mapping(tmp_path))
    assert [p.name for p in (tmp_path / "drop").iterdir()] == ["day.csv"]
    assert path.read_bytes() == b"v1"


async def test_a_job_whose_source_a_reload_removed_leaves_its_file_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A job being applied is followed to its end even if a reload removed its source;
    then nothing knows where its file goes: it stays, and the job still ends (no crash)."""
    config_path = tmp_path / "dsmsyncd.toml"
    config_path.write_text(
        f'[target]\nurl = "http://127.0.0.1:9"\n[state]\nurl = "sqlite:///{tmp_path}/s.db"\n'
        f'[[source]]\nname = "drop"\nurl = "file://{tmp_path}/drop"\n'
        '[[mapping]]\nsource = "drop"\nmatch = "*.csv"\ndataset = "abcd-1234"\n'
        f'action = "update"\non_success = "keep"\nquarantine_dir = "{tmp_path}/quarantine"\n',
        encoding="utf-8",
    )
    sources = Sources.build(load_config(config_path))
    file = drop(tmp_path / "old-root", "day.csv")
    job = finished_job("old", "day.csv", "file:day.csv:3:0", 3, NOW)
    mapping = make_mapping(tmp_path)
    finalizer = sources.finalizer(job)

    moved = await finalizer.succeeded(job, mapping)
    report = QuarantineReport.of_job(job, "file_unreadable", "why", sha256=None)
    quarantined = await finalizer.quarantine(job, mapping, report)

    assert moved == quarantined
    assert moved.startswith("left in place: day.csv (source 'old' is no longer configured")
    assert file.exists()
    assert not (tmp_path / "quarantine").exists()
    assert "its report:" in caplog.text
