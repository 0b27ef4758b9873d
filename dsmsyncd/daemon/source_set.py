"""The daemon's sources, built from the config: one per ``[[source]]``, by URL scheme,
each paired with the finalizer that moves its files (a folder's, a bucket's).

The pairing happens here, where the URL scheme picks the source's class: ``finalize/``
sits above ``sources/`` (a bucket finalizer borrows its source's S3 client), and a
source never moves a file, so a source does not make its finalizer; the daemon asks
``Sources`` for a job's blob and finalizer and talks to each through its protocol.

A ``Sources`` is one generation of them, as a read-only mapping by name. A reload
(SIGHUP) makes the next generation with ``reloaded``: a source whose ``[[source]]``
table and excluded folders did not change is carried over as it is, still running
(its discovery, its stability gate, its S3 client); a changed or removed one is
*retired*. Retiring closes it only once the last job that started with it is done:
a bucket job reads its object by ranged GETs through its source's client until the
upload's last chunk, and closing that client under it made the upload fail half-way.
Jobs take their source's lease with ``use`` for the length of their run.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dsmsyncd.blob import Blob, BlobUnreadable, LocalFileBlob
from dsmsyncd.config.schema import Config, SourceConfig
from dsmsyncd.daemon.lease import Lease
from dsmsyncd.finalize.base import Finalizer, SourceGoneFinalizer
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.sources.base import Source, SourceError, SourceVanished, file_identity
from dsmsyncd.sources.folder import FolderSource
from dsmsyncd.state import Job


@dataclass(frozen=True)
class SourceSpec:
    """Everything a source is built from: equal specs make interchangeable sources."""

    config: SourceConfig
    exclude_dirs: tuple[Path, ...]


def source_specs(config: Config) -> dict[str, SourceSpec]:
    """Specs by name; archive and quarantine folders inside a root are never scanned."""
    return {
        source.name: SourceSpec(
            source,
            tuple(
                path
                for m in config.mapping
                if m.source == source.name
                for path in (m.archive_dir, m.quarantine_dir)
                if path is not None
            ),
        )
        for source in config.source
    }


@dataclass(frozen=True)
class _Built:
    """A source as a generation holds it: leased by the jobs reading from it, and the
    finalizer that moves its files."""

    lease: Lease[Source]
    finalizer: Finalizer


def build_source(spec: SourceSpec) -> tuple[Source, Finalizer]:
    """The source ``spec`` names, by URL scheme, and its finalizer."""
    if spec.config.url.startswith("s3://"):
        # Imported here: aiobotocore and botocore take a daemon without buckets longer
        # to start than the rest of it together.
        from dsmsyncd.finalize.bucket import BucketFinalizer
        from dsmsyncd.sources.bucket import BucketSource

        bucket = BucketSource(spec.config, exclude_dirs=spec.exclude_dirs)
        return bucket, BucketFinalizer(bucket)
    folder = FolderSource(spec.config, exclude_dirs=spec.exclude_dirs)
    return folder, FolderFinalizer(folder.root)


def _built(spec: SourceSpec) -> _Built:
    source, finalizer = build_source(spec)
    return _Built(Lease(source, source.aclose), finalizer)


class Sources(Mapping[str, Source]):
    """One generation of the daemon's sources, each leased by the jobs reading from it."""

    def __init__(self, specs: Mapping[str, SourceSpec], built: Mapping[str, _Built]):
        self._specs = dict(specs)
        self._built = dict(built)

    @classmethod
    def build(cls, config: Config) -> Sources:
        specs = source_specs(config)
        return cls(specs, {name: _built(spec) for name, spec in specs.items()})

    def __getitem__(self, name: str) -> Source:
        return self._built[name].lease.resource

    def __iter__(self) -> Iterator[str]:
        return iter(self._built)

    def __len__(self) -> int:
        return len(self._built)

    def reloaded(self, config: Config) -> tuple[Sources, dict[str, Lease[Source]]]:
        """(the next generation, the leases of this one to retire, by name).

        A source is carried over (same object, same lease) when its spec is equal;
        every other one of the next generation is new and not started yet.
        """
        specs = source_specs(config)
        built: dict[str, _Built] = {}
        for name, spec in specs.items():
            kept = self._built.get(name) if self._specs.get(name) == spec else None
            built[name] = kept if kept is not None else _built(spec)
        retired = {
            name: old.lease
            for name, old in self._built.items()
            if name not in built or built[name] is not old
        }
        return Sources(specs, built), retired

    def kept_from(self, previous: Sources, name: str) -> bool:
        """Whether source ``name`` of this generation is the very one of ``previous``."""
        return name in previous._built and previous._built[name] is self._built.get(name)

    def use(self, name: str) -> contextlib.AbstractAsyncContextManager[object]:
        """Hold source ``name`` open for a job's run (nothing to hold if there is none)."""
        built = self._built.get(name)
        return built.lease.use() if built is not None else contextlib.nullcontext()

    def open_blob(self, job: Job) -> Blob:
        """The job's bytes. A refusal is an OSError the pipeline handles, never a lane
        crash: a file that is gone is FileNotFoundError (quarantined as
        ``file_vanished``), one that is there but cannot be read BlobUnreadable (retried
        ``max_read_attempts`` times, then quarantined as ``file_unreadable``), and one
        that is not the version the job was discovered as BlobChanged (skipped: the new
        version is a job of its own, and the finalizer checks the same identity before
        it moves anything)."""
        try:
            return self[job.source].open_blob(job.relative_path, job.identity)
        except SourceVanished as exc:
            raise FileNotFoundError(errno.ENOENT, exc.what, job.relative_path) from exc
        except SourceError as exc:
            raise BlobUnreadable(errno.EIO, str(exc), job.relative_path) from exc

    def open_beside(self, job: Job, relative_path: str) -> tuple[Blob, str]:
        """A file beside the job's (its metadata sidecar, or a sidecar's data file) and
        the identity discovery records it under. FileNotFoundError when there is none,
        when it cannot be opened, or (in a bucket) when this run has not found it yet."""
        built = self._built.get(job.source)
        try:
            if built is None:
                raise SourceVanished("source gone", where=job.source, fix="")
            blob = built.lease.resource.open_blob(relative_path)
        except SourceError as exc:
            raise FileNotFoundError(errno.ENOENT, exc.what, relative_path) from exc
        if isinstance(blob, LocalFileBlob):
            return blob, file_identity(relative_path, blob.size, blob.mtime_ns)
        return blob, blob.identity

    def finalizer(self, job: Job) -> Finalizer:
        """Who moves the job's file: the finalizer paired with its source, or, for a job
        whose source a reload removed while it ran, one that leaves the file in place."""
        built = self._built.get(job.source)
        return built.finalizer if built is not None else SourceGoneFinalizer(job.source)

    async def start(self) -> None:
        """Start every source (idempotent; a bucket opens its client, nothing is sent)."""
        for built in self._built.values():
            await built.lease.resource.start()

    async def close(self) -> None:
        """At shutdown: close every source of this generation now."""
        for built in self._built.values():
            await built.lease.resource.aclose()
