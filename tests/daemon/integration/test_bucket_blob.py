"""S3ObjectBlob and LocalFileBlob: ranged reads of one version, and what a change raises."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dsmsyncd.blob import BlobChanged, BlobVanished, LocalFileBlob
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.s3 import S3ObjectBlob

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

DATA = bytes(range(256)) * 40  # 10 240 bytes


async def _blob(source: BucketSource, s3: S3Client, data: bytes = DATA) -> S3ObjectBlob:
    await s3.put_object(Bucket=source.bucket, Key="in/data.bin", Body=data)
    (found,) = await source.scan()
    return source.open_blob(found.relative_path, found.identity)


async def test_bucket_blob_reads_ranges(source: BucketSource, s3: S3Client) -> None:
    blob = await _blob(source, s3)
    assert (blob.size, blob.name) == (len(DATA), "data.bin")
    assert await blob.read_range(0, 100) == DATA[:100]
    assert await blob.read_range(5000, 1000) == DATA[5000:6000]
    assert await blob.read_range(len(DATA) - 7, 7) == DATA[-7:]
    assert await blob.read_range(10, 0) == b""


async def test_bucket_blob_overwrite_between_reads_raises_changed(
    source: BucketSource, s3: S3Client
) -> None:
    blob = await _blob(source, s3)
    assert await blob.read_range(0, 10) == DATA[:10]
    await s3.put_object(Bucket=source.bucket, Key="in/data.bin", Body=DATA[::-1])
    with pytest.raises(BlobChanged) as caught:
        await blob.read_range(10, 10)
    assert caught.value.where == f"s3://{source.bucket}/in/data.bin"
    assert "overwritten" in caught.value.reason


async def test_bucket_blob_deleted_object_raises_vanished(
    source: BucketSource, s3: S3Client
) -> None:
    blob = await _blob(source, s3)
    await s3.delete_object(Bucket=source.bucket, Key="in/data.bin")
    with pytest.raises(BlobVanished, match="deleted"):
        await blob.read_range(0, 10)


async def test_bucket_blob_size_mismatch_raises_changed(source: BucketSource, s3: S3Client) -> None:
    blob = await _blob(source, s3)
    wrong = S3ObjectBlob(blob.client, blob.config, blob.bucket, blob.key, blob.etag, 99)
    with pytest.raises(BlobChanged, match="size is now 10240"):
        await wrong.read_range(0, 10)


def test_local_blob_rewritten_file_raises_changed(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"a,b\n1,2\n")
    blob = LocalFileBlob.open(path)
    assert blob._pread(0, 3) == b"a,b"
    path.write_bytes(b"a,b\n1,2\n3,4\n")
    with pytest.raises(BlobChanged, match="rewritten"):
        blob._pread(0, 3)


async def test_local_blob_same_size_new_mtime_raises_changed(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"a,b\n1,2\n")
    blob = LocalFileBlob.open(path)
    path.write_bytes(b"a,b\n3,4\n")
    os.utime(path, ns=(blob.mtime_ns + 10**9, blob.mtime_ns + 10**9))
    with pytest.raises(BlobChanged):
        await blob.read_range(0, 3)


async def test_local_blob_vanished_file_stays_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"a,b\n")
    blob = LocalFileBlob.open(path)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        await blob.read_range(0, 3)
