"""What happens to a file of a drop folder once its job is over: archive, delete, keep
or quarantine (``bucket.py`` does the same for objects of a bucket).

A source file is never modified in place (invariant 2): it is moved whole, and a move
never overwrites (``name (1).csv``, ``name (2).csv`` …), so two files with the same
name — a daily ``export.csv`` — both survive. A quarantined file gets a
machine-readable report beside it (``report.py``), written atomically (temporary file
+ rename) so that a reader never sees half a report. A file that vanished meanwhile (someone moved
it by hand) is reported in the returned location, not raised: the job's outcome on the
dataset is already decided and recorded.

Filesystem work blocks, so it runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from dsmsyncd.config.paths import finalize_folder
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.report import REPORT_SUFFIX, QuarantineReport
from dsmsyncd.sources.base import parse_file_identity
from dsmsyncd.state import Job

logger = logging.getLogger("dsmsyncd.finalize.folder")


class FolderFinalizer:
    """Finalizer for files of a folder source rooted at ``root``.

    ``job.relative_path`` is relative to ``root``; a relative ``archive_dir`` or
    ``quarantine_dir`` is taken relative to ``root`` as well.

    Only the version the job read is moved or deleted (issue 11: a file replaced
    after its upload was archived in place of the published one). The file is first
    *claimed*: renamed, atomically, to a private name beside it
    (``.NAME.dsmsyncd-JOBID``, a dotfile discovery ignores), and what was renamed is
    compared with the job's identity — size and mtime in nanoseconds, the same
    identity discovery keys a file on, so a version that differs is one discovery
    turns into a job of its own. A version that is not the job's is put back under
    its name, untouched, and nothing is archived, deleted or quarantined in its place.
    The rename is what makes the check safe: once it is done a writer replacing NAME
    cannot change what the finalizer holds, and the finalizer never moves or deletes
    a file it has not checked. A crash after the claim leaves the private name, which
    the next attempt (the startup sweep) picks up.
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
        return finalize_folder(self.root, configured)

    def _succeeded(self, job: Job, mapping: MappingConfig, now: datetime) -> str:
        path = self._path(job)
        if mapping.on_success == "keep":
            return f"kept in place: {path}"
        claimed = self._claim(job)
        if isinstance(claimed, str):
            return claimed
        try:
            if mapping.on_success == "delete":
                claimed.unlink(missing_ok=True)
                return f"deleted: {path}"
            assert mapping.archive_dir is not None  # the config refuses archive without a dir
            day = now.astimezone(UTC)
            folder = self._dir(mapping.archive_dir) / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            moved = move_without_overwrite(claimed, folder, name=path.name)
        except OSError:
            # The archive is unwritable, full, ...: the file goes back to its own name (a
            # claimed file under its private name would be hidden from everyone).
            _put_back(claimed, path)
            raise
        return f"archived: {moved}" if moved else f"vanished before finalizing: {path}"

    def _quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        path = self._path(job)
        folder = self._dir(mapping.quarantine_dir)
        claimed = self._claim(job)
        moved: Path | None = None
        if not isinstance(claimed, str):
            try:
                moved = move_without_overwrite(claimed, folder, name=path.name)
            except OSError as exc:  # e.g. a directory in the file's place: it stays there
                logger.warning("could not move %s into quarantine (%s); report only", path, exc)
                claimed = f"left in place ({exc.strerror or exc}{_put_back(claimed, path)})"
        target = moved or unused_name(folder, path.name)
        try:
            write_atomically(target.with_name(target.name + REPORT_SUFFIX), report.to_json())
        except OSError as exc:  # a full or unwritable quarantine: say where the file is
            at = f"moved to {target}" if moved else claimed or "vanished"
            raise OSError(exc.errno, f"{at}, but its report could not be written: {exc}") from exc
        if moved is not None:
            return f"quarantined: {target}"
        return f"{claimed or 'vanished'}; report at {target}{REPORT_SUFFIX}"

    def _claim(self, job: Job) -> Path | str:
        """The job's own version of its file, under a private name; else what became of it."""
        path = self._path(job)
        private = path.with_name(f".{path.name}.dsmsyncd-{job.id}")
        if not os.path.lexists(private):  # else an interrupted earlier attempt claimed it
            try:
                os.rename(path, private)
            except FileNotFoundError:
                logger.warning("file vanished before it could be finalized: %s", path)
                return f"vanished before finalizing: {path}"
        try:
            st = os.stat(private)
            found: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:  # a symlink whose target is gone
            found = None
        if found is not None and found == parse_file_identity(job.identity)[1:]:
            return private
        where = _put_back(private, path)
        logger.warning(
            "%s is not the version job %s read (replaced since, or not a regular file); "
            "left in place%s",
            path,
            job.id,
            where,
        )
        return (
            f"left in place: {path} is not the version this job read (size or mtime differ: "
            f"it was replaced since, and the new version is a job of its own){where}"
        )


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


def _put_back(private: Path, path: Path) -> str:
    """Give a claimed file that is not the job's its name back, never over a newer file;
    "" or where it went instead."""
    try:
        os.link(private, path, follow_symlinks=False)
    except FileExistsError:  # yet another version took the name meanwhile: keep both
        moved = move_without_overwrite(private, path.parent, name=path.name)
        return f" (put back as {moved}, a newer file has its name)" if moved else ""
    except OSError:
        if private.is_dir():  # not linkable: rename, which never replaces a file with a dir
            os.rename(private, path)
            return ""
        # A filesystem without hard links (SMB, vfat, some FUSE): rename would replace a
        # newer file, so copy under a name created exclusively instead.
        where = _copy_exclusively(private, path.parent, path.name)
        return "" if where == path else f" (put back as {where}, a newer file has its name)"
    private.unlink()
    return ""


def _copy_exclusively(path: Path, folder: Path, name: str) -> Path:
    """Copy ``path`` (then remove it) to ``folder/name`` or the next unused name, each
    created with O_EXCL, so no file that appears meanwhile is ever replaced."""
    while True:
        target = unused_name(folder, name)
        try:
            with path.open("rb") as source, target.open("xb") as copy:
                shutil.copyfileobj(source, copy)
        except FileExistsError:
            continue
        shutil.copystat(path, target)
        path.unlink()
        return target


def move_without_overwrite(path: Path, folder: Path, *, name: str | None = None) -> Path | None:
    """Move ``path`` into ``folder`` under an unused name (``name``, or its own, first);
    None if ``path`` is gone.

    A hard link is the no-overwrite rename of POSIX (``link`` fails if the target
    exists), so a name taken meanwhile by another process is never clobbered. Across
    filesystems the file is copied to a temporary name first, then linked into place.
    """
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        target = unused_name(folder, name or path.name)
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
