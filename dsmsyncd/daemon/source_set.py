"""The daemon's sources, built from the config: one per ``[[source]]``, by URL scheme.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from dsmsyncd.config.schema import Config, SourceConfig
from dsmsyncd.daemon.lease import Lease
from dsmsyncd.sources.base import Source
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.folder import FolderSource


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


def build_source(spec: SourceSpec) -> Source:
    if spec.config.url.startswith("s3://"):
        return BucketSource(spec.config, exclude_dirs=spec.exclude_dirs)
    return FolderSource(spec.config, exclude_dirs=spec.exclude_dirs)


async def _close(source: Source) -> None:
    if isinstance(source, BucketSource):
        await source.aclose()


def _lease(source: Source) -> Lease[Source]:
    return Lease(source, lambda: _close(source))


class Sources(Mapping[str, Source]):
    """One generation of the daemon's sources, each leased by the jobs reading from it."""

    def __init__(self, specs: Mapping[str, SourceSpec], leases: Mapping[str, Lease[Source]]):
        self._specs = dict(specs)
        self._leases = dict(leases)

    @classmethod
    def build(cls, config: Config) -> Sources:
        specs = source_specs(config)
        return cls(specs, {name: _lease(build_source(spec)) for name, spec in specs.items()})

    def __getitem__(self, name: str) -> Source:
        return self._leases[name].resource

    def __iter__(self) -> Iterator[str]:
        return iter(self._leases)

    def __len__(self) -> int:
        return len(self._leases)

    def reloaded(self, config: Config) -> tuple[Sources, dict[str, Lease[Source]]]:
        """(the next generation, the leases of this one to retire, by name).

        A source is carried over (same object, same lease) when its spec is equal;
        every other one of the next generation is new and not started yet.
        """
        specs = source_specs(config)
        leases: dict[str, Lease[Source]] = {}
        for name, spec in specs.items():
            kept = self._leases.get(name) if self._specs.get(name) == spec else None
            leases[name] = kept if kept is not None else _lease(build_source(spec))
        retired = {
            name: lease for name, lease in self._leases.items() if leases.get(name) is not lease
        }
        return Sources(specs, leases), retired

    def kept_from(self, previous: Sources, name: str) -> bool:
        """Whether source ``name`` of this generation is the very one of ``previous``."""
        return name in previous._leases and previous._leases[name] is self._leases.get(name)

    def use(self, name: str) -> contextlib.AbstractAsyncContextManager[object]:
        """Hold source ``name`` open for a job's run (nothing to hold if there is none)."""
        lease = self._leases.get(name)
        return lease.use() if lease is not None else contextlib.nullcontext()

    async def start(self) -> None:
        """Open the bucket clients (idempotent; nothing is sent yet)."""
        for lease in self._leases.values():
            if isinstance(lease.resource, BucketSource):
                await lease.resource.start()

    async def close(self) -> None:
        """At shutdown: close every source of this generation now."""
        for lease in self._leases.values():
            await _close(lease.resource)
