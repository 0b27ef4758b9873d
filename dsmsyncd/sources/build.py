"""The daemon's sources, built from the config: one per ``[[source]]``, by URL scheme."""

from __future__ import annotations

from dsmsyncd.config import Config
from dsmsyncd.sources.base import Source
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.folder import FolderSource


def build_sources(config: Config) -> dict[str, Source]:
    """Sources by name; archive and quarantine folders inside a root are never scanned."""
    sources: dict[str, Source] = {}
    for source_config in config.source:
        excluded = [
            path
            for m in config.mapping
            if m.source == source_config.name
            for path in (m.archive_dir, m.quarantine_dir)
            if path is not None
        ]
        if source_config.url.startswith("s3://"):
            sources[source_config.name] = BucketSource(source_config, exclude_dirs=excluded)
        else:
            sources[source_config.name] = FolderSource(source_config, exclude_dirs=excluded)
    return sources


async def start_sources(sources: dict[str, Source]) -> None:
    for source in sources.values():
        if isinstance(source, BucketSource):
            await source.start()


async def close_sources(sources: dict[str, Source]) -> None:
    for source in sources.values():
        if isinstance(source, BucketSource):
            await source.aclose()
