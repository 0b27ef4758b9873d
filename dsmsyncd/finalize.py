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
import errno
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from dsmsyncd import __version__
from dsmsyncd.config import MappingConfig
from dsmsyncd.state import Job

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
    "file_unreadable",
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

    ``error_count`` is every row that would not be published; ``parse_error_count`` of
    them could not be parsed at all (listed in ``parse_errors``), the rest had data
    errors in a transform (listed in ``error_rows``).
    """

    reason: QuarantineReason
    message: str
    dataset: str
    file: ReportedFile
    revision_seq: int | None = None
    revision_id: int | None = None
    error_count: int = 0
    error_rows: list[Any] = field(default_factory=list)
    parse_error_count: int = 0
    parse_errors: list[Any] = field(default_factory=list)
    server_request_id: str | None = None
    discovered_at: datetime | None = None
    started_at: datetime | None = None
    quarantined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    dsmsyncd_version: str = __version__

    def to_json(self) -> str:
        data = asdict(self)
        data["error_rows"] = list(self.error_rows[:MAX_REPORTED_ERROR_ROWS])
        data["parse_errors"] = list(self.parse_errors[:MAX_REPORTED_ERROR_ROWS])
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
        try:
            moved = move_without_overwrite(path, folder)
        except OSError as exc:  # e.g. a directory in the file's place: it stays there
            logger.warning("could not move %s into quarantine (%s); report only", path, exc)
            target = unused_name(folder, path.name)
            write_atomically(target.with_name(target.name + REPORT_SUFFIX), report.to_json())
            return f"left in place ({exc.strerror or exc}); report at {target}{REPORT_SUFFIX}"
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
    stem, suffix = split_name(name)
    n = 0
    while candidate.exists() or (folder / (candidate.name + REPORT_SUFFIX)).exists():
        n += 1
        candidate = folder / f"{stem} ({n}){suffix}"
    return candidate


def split_name(name: str) -> tuple[str, str]:
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
