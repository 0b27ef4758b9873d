"""What happens to a file once its job is over: archive, delete, keep or quarantine.

``FolderFinalizer`` moves files of a drop folder; ``BucketFinalizer`` copies objects
of a bucket to an archive or quarantine prefix and then deletes the original.

A source file is never modified in place (invariant 2): it is moved whole, and a move
never overwrites (``name (1).csv``, ``name (2).csv`` …), so two files with the same
name — a daily ``export.csv`` — both survive. A quarantined file gets a
machine-readable report beside it, written atomically (temporary file + rename) so
that a reader never sees half a report. A file that vanished meanwhile (someone moved
it by hand) is reported in the returned location, not raised: the job's outcome on the
dataset is already decided and recorded.

Filesystem work blocks, so it runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import posixpath
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from dsmsyncd import __version__
from dsmsyncd.blob import BlobChanged, BlobGone, BlobVanished
from dsmsyncd.config import MappingConfig
from dsmsyncd.sources.bucket import BucketSource, bucket_location
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

logger = logging.getLogger("dsmsyncd.finalize")

QuarantineReason = Literal[
    "too_many_row_errors",
    "schema_drift",
    "empty_replace",
    "row_drop_guard",
    "rejected_by_server",
    "auth_refused",
    "unparsable_file",
    "transform_failed",
    "apply_failed",
    "unknown_dataset",
    "file_vanished",
]
MAX_REPORTED_ERROR_ROWS = 100
REPORT_SUFFIX = ".report.json"


@dataclass(frozen=True)
class ReportedFile:
    path: str
    size: int
    sha256: str | None
    source: str = ""


@dataclass(frozen=True)
class QuarantineReport:
    """Why a file was not published, in a form an operator and a script can both read.

    ``reason`` is a machine key (see ``QuarantineReason``); ``message`` says what went
    wrong, where, and how to fix it. No credential ever goes in here (invariant 5):
    only ids, counts, the server's message and request id, and the error rows.
    """

    reason: QuarantineReason
    message: str
    dataset: str
    file: ReportedFile
    revision_seq: int | None = None
    revision_id: int | None = None
    error_count: int = 0
    error_rows: list[Any] = field(default_factory=list)
    server_request_id: str | None = None
    discovered_at: datetime | None = None
    started_at: datetime | None = None
    quarantined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    dsmsyncd_version: str = __version__

    def to_json(self) -> str:
        data = asdict(self)
        data["error_rows"] = list(self.error_rows[:MAX_REPORTED_ERROR_ROWS])
        for key in ("discovered_at", "started_at", "quarantined_at"):
            value = data[key]
            data[key] = value.isoformat() if isinstance(value, datetime) else None
        return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


class Finalizer(Protocol):
    """Puts a finished job's file where its mapping says; returns where it went."""

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str: ...

    async def quarantine(
        self, job: Job, mapping: MappingConfig, report: QuarantineReport
    ) -> str: ...


class FolderFinalizer:
    """Finalizer for files of a folder source rooted at ``root``.

    ``job.relative_path`` is relative to ``root``; a relative ``archive_dir`` or
    ``quarantine_dir`` is taken relative to ``root`` as well.
    """

    def __init__(self, root: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.root = root
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"FolderFinalizer({str(self.root)!r})"

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str:
        return await asyncio.to_thread(self._succeeded, job, mapping, self._clock())

    async def quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        return await asyncio.to_thread(self._quarantine, job, mapping, report)

    def _path(self, job: Job) -> Path:
        return self.root / job.relative_path

    def _dir(self, configured: Path) -> Path:
        return configured if configured.is_absolute() else self.root / configured

    def _succeeded(self, job: Job, mapping: MappingConfig, now: datetime) -> str:
        path = self._path(job)
        if mapping.on_success == "keep":
            return f"kept in place: {path}"
        if not path.exists():
            logger.warning("file vanished before it could be finalized: %s", path)
            return f"vanished before finalizing: {path}"
        if mapping.on_success == "delete":
            try:
                path.unlink()
            except FileNotFoundError:
                return f"vanished before finalizing: {path}"
            return f"deleted: {path}"
        assert mapping.archive_dir is not None  # the config refuses archive without a dir
        day = now.astimezone(UTC)
        folder = self._dir(mapping.archive_dir) / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        moved = move_without_overwrite(path, folder)
        return f"archived: {moved}" if moved else f"vanished before finalizing: {path}"

    def _quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        path = self._path(job)
        folder = self._dir(mapping.quarantine_dir)
        moved = move_without_overwrite(path, folder)
        if moved is None:
            logger.warning("file vanished before quarantine; writing its report only: %s", path)
            target = unused_name(folder, path.name)
        else:
            target = moved
        write_atomically(target.with_name(target.name + REPORT_SUFFIX), report.to_json())
        return f"quarantined: {target}" if moved else f"vanished; report at {target}{REPORT_SUFFIX}"


def unused_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name (1).ext``, ``name (2).ext`` … whichever is free."""
    candidate = folder / name
    stem, suffix = _split(name)
    n = 0
    while candidate.exists() or (folder / (candidate.name + REPORT_SUFFIX)).exists():
        n += 1
        candidate = folder / f"{stem} ({n}){suffix}"
    return candidate


def _split(name: str) -> tuple[str, str]:
    dot = name.find(".", 1)  # "data.csv.gz" keeps ".csv.gz"; ".hidden" has no suffix
    return (name[:dot], name[dot:]) if dot > 0 else (name, "")


def move_without_overwrite(path: Path, folder: Path) -> Path | None:
    """Move ``path`` into ``folder`` under an unused name; None if ``path`` is gone.

    A hard link is the no-overwrite rename of POSIX (``link`` fails if the target
    exists), so a name taken meanwhile by another process is never clobbered. Across
    filesystems the file is copied to a temporary name first, then linked into place.
    """
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        target = unused_name(folder, path.name)
        try:
            os.link(path, target)
        except FileNotFoundError:
            return None
        except FileExistsError:
            continue  # taken between the check and the link: pick the next name
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP):
                raise
            try:
                if not _copy_into_place(path, target):
                    continue
            except FileNotFoundError:
                return None
        path.unlink(missing_ok=True)
        return target


def _copy_into_place(path: Path, target: Path) -> bool:
    temporary = target.with_name(f".{target.name}.dsmsyncd-tmp")
    try:
        shutil.copy2(path, temporary)
        os.link(temporary, target)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.dsmsyncd-tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# -- buckets -------------------------------------------------------------------------------

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
        stem, suffix = _split(name)
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
