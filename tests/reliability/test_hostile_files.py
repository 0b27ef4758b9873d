"""Hostile files in the drop folder: odd bytes, odd names, things that are not files.

Every case runs the real daemon (in this event loop) against the real local server,
and ends the same way: the file is published with every row exactly once on an
append dataset, or refused with a clear log line or a quarantine report, and a plain
file dropped after it still publishes (the daemon neither crashed nor stalled).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import RunningDaemon, running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.reliability.appended import append_dataset, assert_rows_once, csv

AFTER = csv(900, 3)  # the plain file dropped behind each hostile one
AFTER_IDS = [900, 901, 902]


async def then_a_plain_file_publishes(site: Site, daemon: RunningDaemon) -> None:
    site.drop_file("zz-after.csv", AFTER)
    (after,) = await daemon.finished_jobs(1)
    assert (after.relative_path, after.state) == ("zz-after.csv", JobState.PUBLISHED), after


def archived(site: Site) -> list[Path]:
    return [path for path in site.archive.rglob("*") if path.is_file()]


# (file name, bytes, ids it carries, (column, value) every row read back must show)
AWKWARD: dict[str, tuple[str, bytes, list[int], tuple[str, str] | None]] = {
    "header only": ("header.csv", b"id,name\n", [], None),
    "BOM": ("bom.csv", b"\xef\xbb\xbfid,name\n10,bom\n11,bom\n", [10, 11], ("name", "bom")),
    "CRLF": ("crlf.csv", b"id,name\r\n20,crlf\r\n21,crlf\r\n", [20, 21], ("name", "crlf")),
    "non-UTF-8": ("latin1.csv", b"id,name\n30,caf\xe9\n31,caf\xe9\n", [30, 31], ("name", "café")),
    "space in name": ("a b.csv", csv(40, 2), [40, 41], None),
    "newline in name": ("new\nline.csv", csv(42, 2), [42, 43], None),
    "unicode name": ("ünïcödé 😀.csv", csv(44, 2), [44, 45], None),
    "dots in name": ("a..b.csv", csv(46, 2), [46, 47], None),
}


@pytest.mark.parametrize("case", list(AWKWARD), ids=list(AWKWARD))
async def test_awkward_file_publishes_every_row_once_and_is_archived_by_its_name(
    site: Site, client: DsmapiClient, http: Http, case: str
) -> None:
    name, content, ids, shown = AWKWARD[case]
    ff = await append_dataset(client)
    site.map(ff)
    async with running_daemon(site) as daemon:
        site.drop_file(name, content)
        (job,) = await daemon.finished_jobs(1)
        assert (job.relative_path, job.state) == (name, JobState.PUBLISHED), job
        await then_a_plain_file_publishes(site, daemon)
    await assert_rows_once(http, ff, ids + AFTER_IDS)
    if shown is not None:
        column, value = shown
        values = await http.rows(ff, **{"$where": f"id >= {min(ids)} AND id <= {max(ids)}"})
        assert {row[column] for row in values} == {value}  # no BOM, no \r, decoded
    assert sorted(path.name for path in archived(site)) == sorted([name, "zz-after.csv"])
    assert archived(site)[0].parent == archived(site)[1].parent


async def test_name_that_is_all_dots_is_a_hidden_file_left_alone(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await append_dataset(client)
    site.map(ff)
    async with running_daemon(site) as daemon:
        site.drop_file("..csv", csv(50, 2))  # a dotfile: the default ignore list skips it
        await then_a_plain_file_publishes(site, daemon)
    assert [row["relative_path"] for row in site.jobs()] == ["zz-after.csv"]
    assert (site.drop / "..csv").read_bytes() == csv(50, 2)
    await assert_rows_once(http, ff, AFTER_IDS)


async def test_symlink_out_of_the_root_is_refused_with_a_warning(
    site: Site, client: DsmapiClient, http: Http, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ff = await append_dataset(client)
    site.map(ff)
    secret = tmp_path / "outside.csv"
    secret.write_bytes(csv(60, 2))
    site.drop.mkdir(parents=True)
    os.symlink(secret, site.drop / "link.csv")
    with caplog.at_level(logging.WARNING, "dsmsyncd.sources.folder"):
        async with running_daemon(site) as daemon:
            await then_a_plain_file_publishes(site, daemon)
    assert [row["relative_path"] for row in site.jobs()] == ["zz-after.csv"]
    assert f"source drop: link.csv: symlink to {secret}, outside the source root: refused" in (
        caplog.messages
    )
    assert secret.read_bytes() == csv(60, 2)
    await assert_rows_once(http, ff, AFTER_IDS)


async def test_fifo_named_like_a_data_file_is_never_opened_and_is_reported(
    site: Site, client: DsmapiClient, http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    ff = await append_dataset(client)
    site.map(ff)
    site.drop.mkdir(parents=True)
    os.mkfifo(site.drop / "pipe.csv")  # opening it for reading would block forever
    with caplog.at_level(logging.WARNING, "dsmsyncd.sources.folder"):
        async with running_daemon(site) as daemon:
            await then_a_plain_file_publishes(site, daemon)
    assert [row["relative_path"] for row in site.jobs()] == ["zz-after.csv"]
    assert "source drop: pipe.csv: not a regular file (a FIFO): not published" in caplog.messages
    await assert_rows_once(http, ff, AFTER_IDS)


async def test_directory_named_like_a_data_file_is_walked_not_published(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await append_dataset(client)
    site.map(ff, match="**/*.csv")
    (site.drop / "dir.csv").mkdir(parents=True)
    async with running_daemon(site) as daemon:
        site.drop_file("dir.csv/inner.csv", csv(70, 2))  # a file inside it is a file
        (inner,) = await daemon.finished_jobs(1)
        await then_a_plain_file_publishes(site, daemon)
    assert (inner.relative_path, inner.state) == ("dir.csv/inner.csv", JobState.PUBLISHED)
    assert (site.drop / "dir.csv").is_dir()
    await assert_rows_once(http, ff, [70, 71, *AFTER_IDS])


async def test_empty_file_is_quarantined_with_a_report(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await append_dataset(client)
    site.map(ff)
    async with running_daemon(site) as daemon:
        site.drop_file("empty.csv", b"")
        (empty,) = await daemon.finished_jobs(1)
        await then_a_plain_file_publishes(site, daemon)
    assert empty.state is JobState.QUARANTINED
    report = json.loads((site.quarantine / "empty.csv.report.json").read_text())
    assert report["reason"] == "empty_file"
    assert report["message"].startswith("empty.csv is empty (0 bytes): with no header row")
    await assert_rows_once(http, ff, AFTER_IDS)


async def quarantined_with_the_rest_going_on(
    site: Site, client: DsmapiClient, http: Http, name: str, write: Callable[[Path], None]
) -> dict[str, Any]:
    """Drop the file ``write`` makes; it must be quarantined; its report."""
    ff = await append_dataset(client)
    site.map(ff)
    site.drop.mkdir(parents=True)
    async with running_daemon(site) as daemon:
        partial = site.drop / f"{name}.part"
        write(partial)
        partial.rename(site.drop / name)
        (job,) = await daemon.finished_jobs(1, within=60)
        await then_a_plain_file_publishes(site, daemon)
    assert job.state is JobState.QUARANTINED, job
    assert job.revision_seq is not None
    await assert_rows_once(http, ff, AFTER_IDS)
    report: dict[str, Any] = json.loads((site.quarantine / f"{name}.report.json").read_text())
    return report


async def test_single_line_of_100_mb_is_quarantined_with_its_row_error(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    def write(path: Path) -> None:
        with path.open("wb") as out:
            out.write(b"id,name\n1,")
            for _ in range(100):
                out.write(b"x" * 1_000_000)
            out.write(b"\n")

    report = await quarantined_with_the_rest_going_on(site, client, http, "long.csv", write)
    assert report["reason"] == "too_many_row_errors"
    assert report["message"].startswith("1 row(s) cannot be published (1 the server could not")
    assert report["file"]["size"] == 100_000_011


async def test_header_of_100000_columns_is_quarantined_with_the_servers_reason(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    def write(path: Path) -> None:
        width = 100_000
        path.write_text(",".join(f"c{i}" for i in range(width)) + "\n" + "1," * (width - 1) + "1\n")

    report = await quarantined_with_the_rest_going_on(site, client, http, "wide.csv", write)
    assert report["message"] == (
        "the server could not parse the file: The file has 100,000 columns; the local server "
        "takes at most 1,000: split it into datasets of fewer columns, or check "
        "column_separator if the header is not meant to have that many; fix the file and "
        "drop it again"
    )
