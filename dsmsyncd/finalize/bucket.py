"""Finalizing jobs of bucket sources: archive and quarantine are copies under other prefixes.

Kept apart from ``folder.py`` so that finalizing a local file (and ``dsmsyncd push``)
never imports the S3 client.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dsmsyncd.blob import BlobChanged, BlobGone, BlobVanished
from dsmsyncd.config.paths import bucket_location
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.folder import split_name
from dsmsyncd.finalize.report import REPORT_SUFFIX, QuarantineReport
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.s3 import (
    S3Error,
    head_object,
    is_not_found,
    is_precondition_failed,
    parse_identity,
    request_errors,
)
from dsmsyncd.state import Job

if TYPE_CHECKING:  # the stubs are a development dependency only
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

logger = logging.getLogger("dsmsyncd.finalize.bucket")


# S3 refuses CopyObject above 5 GiB; bigger objects are copied part by part.
COPY_MAX_BYTES = 5 * 1024**3
COPY_PART_BYTES = 512 * 1024**2


class BucketFinalizer:
    """Finalizer for objects of a bucket source: copy, then delete; never overwrite.

    It borrows the source's client. A mapping's ``archive_dir`` / ``quarantine_dir`` is
    ``s3://bucket/prefix`` or a key prefix in the source's bucket. Each copy and delete
    names the ETag the job read (``CopySourceIfMatch`` / ``IfMatch``): a version written
    meanwhile is neither archived in place of the published one nor deleted, since it is
    a new identity that its own job finalizes. Targets that exist get ``name (1).csv``.
    Failures raise ``S3Error`` (an ``OSError``), which the pipeline records.
    """

    def __init__(
        self,
        source: BucketSource,
        *,
        clock: Callable[[], datetime] | None = None,
        copy_max_bytes: int = COPY_MAX_BYTES,
        copy_part_bytes: int = COPY_PART_BYTES,
    ) -> None:
        self.source = source
        self._clock = clock or (lambda: datetime.now(UTC))
        self._copy_max = copy_max_bytes
        self._part = copy_part_bytes

    def __repr__(self) -> str:
        return f"BucketFinalizer({self.source.config.url!r})"

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str:
        obj = _Object.of(job)
        if mapping.on_success == "keep":
            return f"kept in place: {obj.url}"
        if mapping.on_success == "delete":
            return await self._delete(obj)
        assert mapping.archive_dir is not None  # the config refuses archive without a dir
        bucket, prefix = bucket_location(mapping.archive_dir, self.source.bucket)
        day = self._clock().astimezone(UTC)
        key = await self._unused_key(bucket, f"{prefix}{day:%Y/%m/%d}/{obj.relative}")
        try:
            await self._copy(obj, bucket, key)
        except BlobGone as gone:
            logger.warning("not archived: %s", gone)
            return f"not archived: {gone}"
        return f"archived: s3://{bucket}/{key}; original {await self._delete(obj)}"

    async def quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        obj = _Object.of(job)
        bucket, prefix = bucket_location(mapping.quarantine_dir, self.source.bucket)
        key = await self._unused_key(bucket, prefix + obj.relative)
        try:
            await self._copy(obj, bucket, key)
        except BlobGone as gone:
            logger.warning("%s; writing its quarantine report only", gone)
            copied = False
        else:
            copied = True
        report_url = f"s3://{bucket}/{key}{REPORT_SUFFIX}"
        with request_errors(self.source.config, "PutObject", report_url):
            await self.source.client.put_object(
                Bucket=bucket,
                Key=key + REPORT_SUFFIX,
                Body=report.to_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        if not copied:
            return f"vanished or changed; report at {report_url}"
        return f"quarantined: s3://{bucket}/{key}; original {await self._delete(obj)}"

    async def _unused_key(self, bucket: str, key: str) -> str:
        """``key``, or ``name (1).ext``, ``name (2).ext`` … whichever is free (with its report)."""
        folder, _, name = key.rpartition("/")
        stem, suffix = split_name(name)
        candidate, n = key, 0
        config, client = self.source.config, self.source.client
        while (
            await head_object(client, config, bucket, candidate) is not None
            or await head_object(client, config, bucket, candidate + REPORT_SUFFIX) is not None
        ):
            n += 1
            candidate = f"{folder}/{stem} ({n}){suffix}" if folder else f"{stem} ({n}){suffix}"
        return candidate

    async def _copy(self, obj: _Object, bucket: str, key: str) -> None:
        """Copy exactly version ``obj.etag``; BlobChanged / BlobVanished if it is not there."""
        client = self.source.client
        source: CopySourceTypeDef = {"Bucket": obj.bucket, "Key": obj.key}
        try:
            with request_errors(self.source.config, "CopyObject", f"s3://{bucket}/{key}"):
                if obj.size <= self._copy_max:
                    await client.copy_object(
                        Bucket=bucket, Key=key, CopySource=source, CopySourceIfMatch=obj.quoted
                    )
                else:
                    await self._copy_in_parts(obj, bucket, key)
        except S3Error as exc:
            if is_precondition_failed(exc.__cause__ or exc):
                raise BlobChanged(obj.url, "overwritten since it was published") from exc
            if is_not_found(exc.__cause__ or exc):
                raise BlobVanished(obj.url, "deleted before it could be moved") from exc
            raise

    async def _copy_in_parts(self, obj: _Object, bucket: str, key: str) -> None:
        client = self.source.client
        upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = upload["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, start in enumerate(range(0, obj.size, self._part), start=1):
                end = min(start + self._part, obj.size) - 1
                part = await client.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": obj.bucket, "Key": obj.key},
                    CopySourceRange=f"bytes={start}-{end}",
                    CopySourceIfMatch=obj.quoted,
                )
                parts.append({"ETag": part["CopyPartResult"]["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def _delete(self, obj: _Object) -> str:
        """Delete version ``obj.etag`` only; what happened, as the job's record says it."""
        try:
            with request_errors(self.source.config, "DeleteObject", obj.url):
                await self.source.client.delete_object(
                    Bucket=obj.bucket, Key=obj.key, IfMatch=obj.quoted
                )
        except S3Error as exc:
            if is_precondition_failed(exc.__cause__ or exc):
                return f"left in place: {obj.url} was overwritten since (a job of its own)"
            if is_not_found(exc.__cause__ or exc):
                return f"already gone: {obj.url}"
            raise
        return f"deleted: {obj.url}"


@dataclass(frozen=True)
class _Object:
    bucket: str
    key: str
    etag: str
    size: int
    relative: str

    @classmethod
    def of(cls, job: Job) -> _Object:
        bucket, key, etag, size = parse_identity(job.identity)
        # Discovery refused relative paths that leave the prefix; normalising keeps the
        # copy's key under the archive or quarantine prefix.
        relative = posixpath.normpath(job.relative_path.lstrip("/"))
        return cls(bucket, key, etag, size, relative)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def quoted(self) -> str:
        return f'"{self.etag}"'
