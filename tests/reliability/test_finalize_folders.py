"""Archive and quarantine folders that are missing, unusable or full.

Published rows are never taken back, and a file left in the drop folder because its
archive failed must never be published a second time, not even by the next daemon.
"Unusable" is a regular file where the folder should be (``mkdir`` and ``rename``
fail for root too, which a ``chmod`` would not make them); "full" is a 64 KiB tmpfs
mounted for the test (on another file system, so the move is a copy that runs out
of room: ENOSPC). Mounting needs root (CAP_SYS_ADMIN): elsewhere those two cases
are skipped, and say so in the test summary.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.reliability.appended import append_dataset, assert_rows_once, csv


@contextlib.contextmanager
def full_filesystem(path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``path``, filled to the last byte."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), (path / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def unusable(path: Path) -> Path:
    """A regular file where the folder ``path`` should be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a folder\n")
    return path


async def publish_twice_over(site: Site, name: str, content: bytes) -> list[JobState]:
    """Drop ``name``, let it run; then start a second daemon on the same state and drop a
    plain file, which runs after anything the second daemon would have taken up again."""
    async with running_daemon(site) as daemon:
        site.drop_file(name, content)
        (job,) = await daemon.finished_jobs(1)
    async with running_daemon(site) as again:
        site.drop_file("zz-next.csv", csv(900, 2))
        (after,) = await again.finished_jobs(1)
    assert (after.relative_path, after.state) == ("zz-next.csv", JobState.PUBLISHED), after
    return [job.state]


async def test_missing_archive_folder_is_created(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await append_dataset(client)
    site.map(ff, skip_duplicates=False)
    site.archive = site.root / "not" / "there" / "yet"
    assert await publish_twice_over(site, "day.csv", csv(1, 5)) == [JobState.PUBLISHED]
    assert len([p for p in site.archive.rglob("day.csv")]) == 1
    await assert_rows_once(http, ff, [1, 2, 3, 4, 5, 900, 901])


@pytest.mark.parametrize("how", ["unusable", "full"])
async def test_archive_that_fails_leaves_the_file_in_place_published_once(
    site: Site,
    client: DsmapiClient,
    http: Http,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    ff = await append_dataset(client)
    site.map(ff, skip_duplicates=False)  # only the daemon's record stops a second publication
    with contextlib.ExitStack() as stack:
        if how == "unusable":
            site.archive = unusable(tmp_path / "archive-file")
        else:
            site.archive = stack.enter_context(full_filesystem(tmp_path / "full"))
        with caplog.at_level(logging.ERROR):
            states = await publish_twice_over(site, "day.csv", csv(1, 200))
        assert states == [JobState.PUBLISHED]
        assert (site.drop / "day.csv").read_bytes() == csv(1, 200)
        assert [r for r in caplog.messages if r.startswith("could not finalize the file: ")]
        assert [row["relative_path"] for row in site.jobs()] == ["day.csv", "zz-next.csv"]
    await assert_rows_once(http, ff, [*range(1, 201), 900, 901])


@pytest.mark.parametrize("how", ["unusable", "full"])
async def test_quarantine_that_fails_leaves_the_file_in_place_and_says_why(
    site: Site,
    client: DsmapiClient,
    http: Http,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    ff = await append_dataset(client)
    site.map(ff)
    with contextlib.ExitStack() as stack:
        if how == "unusable":
            site.quarantine = unusable(tmp_path / "quarantine-file")
        else:
            site.quarantine = stack.enter_context(full_filesystem(tmp_path / "full"))
        with caplog.at_level(logging.ERROR):
            states = await publish_twice_over(site, "empty.csv", b"")
        assert states == [JobState.QUARANTINED]
        (logged,) = [m for m in caplog.messages if m.startswith("could not quarantine the file: ")]
        if how == "unusable":  # the move failed: the file stays where it was
            assert (site.drop / "empty.csv").read_bytes() == b""
            assert "left in place (" in logged
        else:  # moved (0 bytes need no room), but the report would not fit
            assert (site.quarantine / "empty.csv").read_bytes() == b""
            assert f"moved to {site.quarantine / 'empty.csv'}" in logged
        assert "but its report could not be written: " in logged
        assert [row["relative_path"] for row in site.jobs()] == ["empty.csv", "zz-next.csv"]
        (row,) = [row for row in site.jobs() if row["relative_path"] == "empty.csv"]
        assert row["error"].startswith("empty_file: empty.csv is empty (0 bytes)")
    await assert_rows_once(http, ff, [900, 901])
