"""BucketFinalizer against moto: archive, delete, keep, quarantine; never overwrite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.bucket import BucketFinalizer
from dsmsyncd.finalize.report import QuarantineReport, ReportedFile
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.state import Job
from tests.daemon.support.jobs import finished_job
from tests.daemon.support.moto_server import new_bucket_name

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

DAY = datetime(2025, 3, 4, 12, tzinfo=UTC)


def _mapping(**kw: Any) -> MappingConfig:
    kw.setdefault("archive_dir", "done")
    kw.setdefault("quarantine_dir", "bad")
    return MappingConfig(source="bucket", match="*", dataset="abcd-1234", action="update", **kw)


async def _job(source: BucketSource, s3: S3Client, key: str, body: bytes = b"a\n1\n") -> Job:
    """A job for ``key`` as discovery would make it (put, then scanned)."""
    await s3.put_object(Bucket=source.bucket, Key=key, Body=body)
    found = [c for c in await source.scan() if c.relative_path == key.removeprefix("in/")]
    (candidate,) = found
    return finished_job(
        "bucket", candidate.relative_path, candidate.identity, candidate.size, datetime.now(UTC)
    )


async def _keys(s3: S3Client, bucket: str) -> list[str]:
    listed = await s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


async def _body(s3: S3Client, bucket: str, key: str) -> bytes:
    response = await s3.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return bytes(await body.read())


def _report(job: Job) -> QuarantineReport:
    return QuarantineReport(
        reason="too_many_row_errors",
        message="2 rows have errors",
        dataset=job.dataset,
        file=ReportedFile(job.relative_path, job.size, None, job.source),
        error_count=2,
    )


async def test_bucket_archive_copies_under_dated_prefix_then_deletes(
    source: BucketSource, s3: S3Client
) -> None:
    job = await _job(source, s3, "in/sub/export.csv")
    where = await BucketFinalizer(source, clock=lambda: DAY).succeeded(job, _mapping())
    archived = "done/2025/03/04/sub/export.csv"
    assert where.startswith(f"archived: s3://{source.bucket}/{archived}")
    assert await _keys(s3, source.bucket) == [archived]
    assert await _body(s3, source.bucket, archived) == b"a\n1\n"


async def test_bucket_archive_never_overwrites(source: BucketSource, s3: S3Client) -> None:
    finalizer = BucketFinalizer(source, clock=lambda: DAY)
    first = await _job(source, s3, "in/export.csv", b"a\n1\n")
    await finalizer.succeeded(first, _mapping())
    second = await _job(source, s3, "in/export.csv", b"a\n2\n")
    await finalizer.succeeded(second, _mapping())
    prefix = "done/2025/03/04/"
    assert await _keys(s3, source.bucket) == [f"{prefix}export (1).csv", f"{prefix}export.csv"]
    assert await _body(s3, source.bucket, f"{prefix}export (1).csv") == b"a\n2\n"


async def test_bucket_archive_to_another_bucket(source: BucketSource, s3: S3Client) -> None:
    other = new_bucket_name()
    await s3.create_bucket(Bucket=other)
    job = await _job(source, s3, "in/a.csv")
    mapping = _mapping(archive_dir=f"s3://{other}/kept/")
    where = await BucketFinalizer(source, clock=lambda: DAY).succeeded(job, mapping)
    assert where.startswith(f"archived: s3://{other}/kept/2025/03/04/a.csv")
    assert await _keys(s3, source.bucket) == []
    assert await _keys(s3, other) == ["kept/2025/03/04/a.csv"]


async def test_bucket_archive_leaves_an_object_overwritten_since(
    source: BucketSource, s3: S3Client
) -> None:
    job = await _job(source, s3, "in/a.csv", b"a\n1\n")
    await s3.put_object(Bucket=source.bucket, Key="in/a.csv", Body=b"a\n2\n")
    where = await BucketFinalizer(source, clock=lambda: DAY).succeeded(job, _mapping())
    # moto ignores CopySourceIfMatch, so the copy happens; the conditional delete holds.
    assert "left in place" in where or where.startswith("not archived")
    assert await _body(s3, source.bucket, "in/a.csv") == b"a\n2\n"


async def test_bucket_delete_and_keep(source: BucketSource, s3: S3Client) -> None:
    finalizer = BucketFinalizer(source)
    kept = await _job(source, s3, "in/k.csv")
    assert (await finalizer.succeeded(kept, _mapping(on_success="keep"))).startswith("kept")
    deleted = await _job(source, s3, "in/d.csv")
    where = await finalizer.succeeded(deleted, _mapping(on_success="delete"))
    assert where == f"deleted: s3://{source.bucket}/in/d.csv"
    assert await _keys(s3, source.bucket) == ["in/k.csv"]
    again = await finalizer.succeeded(deleted, _mapping(on_success="delete"))
    assert again.startswith("already gone")


async def test_bucket_quarantine_puts_report_beside_and_never_overwrites(
    source: BucketSource, s3: S3Client
) -> None:
    finalizer = BucketFinalizer(source)
    first = await _job(source, s3, "in/bad.csv", b"a\nx\n")
    where = await finalizer.quarantine(first, _mapping(), _report(first))
    assert where.startswith(f"quarantined: s3://{source.bucket}/bad/bad.csv")
    second = await _job(source, s3, "in/bad.csv", b"a\ny\n")
    await finalizer.quarantine(second, _mapping(), _report(second))
    assert await _keys(s3, source.bucket) == [
        "bad/bad (1).csv",
        "bad/bad (1).csv.report.json",
        "bad/bad.csv",
        "bad/bad.csv.report.json",
    ]
    report = json.loads(await _body(s3, source.bucket, "bad/bad.csv.report.json"))
    assert report["reason"] == "too_many_row_errors"
    assert report["file"]["path"] == "bad.csv"
    assert await _body(s3, source.bucket, "bad/bad (1).csv") == b"a\ny\n"


async def test_bucket_quarantine_of_vanished_object_writes_report_only(
    source: BucketSource, s3: S3Client
) -> None:
    job = await _job(source, s3, "in/gone.csv")
    await s3.delete_object(Bucket=source.bucket, Key="in/gone.csv")
    where = await BucketFinalizer(source).quarantine(job, _mapping(), _report(job))
    assert where.startswith("vanished or changed; report at")
    assert await _keys(s3, source.bucket) == ["bad/gone.csv.report.json"]


async def test_bucket_archive_copies_big_objects_in_parts(
    source: BucketSource, s3: S3Client
) -> None:
    data = bytes(range(256)) * 100  # 25 600 bytes, copied in 3 parts of 10 000
    job = await _job(source, s3, "in/big.bin", data)
    finalizer = BucketFinalizer(
        source, clock=lambda: DAY, copy_max_bytes=10_000, copy_part_bytes=10_000
    )
    await finalizer.succeeded(job, _mapping())
    assert await _keys(s3, source.bucket) == ["done/2025/03/04/big.bin"]
    assert await _body(s3, source.bucket, "done/2025/03/04/big.bin") == data
