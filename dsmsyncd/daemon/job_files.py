"""A job's file, seen from the daemon: its bytes to upload, and who moves it afterwards.

Both are decided by the job's source (a drop folder or a bucket); the pipeline gets
them as two callables and knows nothing of either.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping

from dsmsyncd.blob import Blob, BlobUnreadable
from dsmsyncd.finalize.base import Finalizer
from dsmsyncd.finalize.bucket import BucketFinalizer
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.sources.base import Source, SourceError
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.folder import FolderSource
from dsmsyncd.state import Job


def open_job_blob(sources: Mapping[str, Source], job: Job) -> Blob:
    """The job's bytes. A refusal is an OSError the pipeline handles, never a lane crash:
    a file that is gone is FileNotFoundError (quarantined as ``file_vanished``), one
    that is there but cannot be read BlobUnreadable (retried ``max_read_attempts``
    times, then quarantined as ``file_unreadable``), and one that is not the version
    the job was discovered as BlobChanged (skipped: the new version is a job of its
    own, and the finalizer checks the same identity before it moves anything)."""
    source = sources[job.source]
    try:
        return source.open_blob(job.relative_path, job.identity)
    except SourceError as exc:
        if isinstance(source, FolderSource) and not os.path.lexists(
            source.root / job.relative_path
        ):
            raise FileNotFoundError(errno.ENOENT, exc.what, job.relative_path) from exc
        raise BlobUnreadable(errno.EIO, str(exc), job.relative_path) from exc


def finalizer_for(sources: Mapping[str, Source], job: Job) -> Finalizer:
    source = sources[job.source]
    if isinstance(source, BucketSource):
        return BucketFinalizer(source)
    assert isinstance(source, FolderSource)
    return FolderFinalizer(source.root)
