"""Queued jobs, deterministically: files recorded as jobs by a daemon that runs none."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dsmsyncd.config import load_config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.sources.base import Candidate, file_identity
from tests.daemon.e2e.site import Site


async def queue_files(site: Site, files: Mapping[str, bytes]) -> list[Path]:
    """Drop ``files`` (in this order of arrival) and record them as jobs, running none.

    A daemon lifetime that starts, is handed each file as discovery hands it a stable
    file (``Daemon.accept``), and stops before its scheduler runs: the jobs are queued
    for the next start, deterministically, whatever the machine's speed.
    """
    daemon = Daemon(site.write_config(), load_config(site.config_path))
    await daemon.startup()
    paths = []
    try:
        for index, (name, content) in enumerate(files.items()):
            path = site.drop_file(name, content)
            mtime_ns = 1_700_000_000_000_000_000 + index * 1_000_000_000
            os.utime(path, ns=(mtime_ns, mtime_ns))
            size = path.stat().st_size
            identity = file_identity(name, size, mtime_ns)
            assert await daemon.accept(Candidate("drop", name, size, mtime_ns, identity))
            paths.append(path)
    finally:
        await daemon.shutdown()
    return paths
