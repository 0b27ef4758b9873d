"""CPU of one look at a drop folder while files wait: what each watch event batch costs.

A tree of ``--files`` files (``--per-dir`` per directory, like ``bench/many_files.py``'s
``dNNN/`` folders) is taken once by a full scan, as the daemon's queue holds them. Then,
in process, the CPU (``time.process_time``, this thread only) of:

- a full scan, what every event batch cost before looks at named paths;
- a light scan (the ``poll_interval`` tick while the watch is armed);
- a look at the paths one archived file's events name (its path in the drop folder,
  now gone, and its new path in an archive folder inside the root).

    .venv/bin/python bench/folder_looks.py [--files 10000] [--per-dir 100] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources import FolderSource


def cpu_ms(look: Callable[[], object], repeat: int, before: Callable[[int], None]) -> float:
    """Median CPU milliseconds of ``look``, ``before(i)`` run (untimed) ahead of each."""
    times = []
    for i in range(repeat):
        before(i)
        started = time.process_time()
        look()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--per-dir", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-looks-") as tmp:
        root = Path(tmp) / "drop"
        archive = root / "archive"
        archive.mkdir(parents=True)
        for n in range(args.files):
            folder = root / f"d{n // args.per_dir:03}"
            folder.mkdir(exist_ok=True)
            (folder / f"f{n:05}.csv").write_bytes(b"id,name\n1,x\n" * 70)
        config = SourceConfig(name="drop", url=f"file://{root}", min_age=0.0, ignore=["*.part"])
        source = FolderSource(config, exclude_dirs=(archive,))
        taken = len(source.scan())
        print(f"files waiting (taken by the first scan): {taken}")

        def no_op(_: int) -> None:
            pass

        def archive_one(i: int) -> None:
            name = f"f{i:05}.csv"
            (root / f"d{i // args.per_dir:03}" / name).rename(archive / name)

        full = cpu_ms(source.scan, args.repeat, no_op)
        light = cpu_ms(lambda: source.scan(light=True), args.repeat, no_op)
        names: list[str] = []

        def archive_and_name(i: int) -> None:
            archive_one(i)
            name = f"f{i:05}.csv"
            names[:] = [f"d{i // args.per_dir:03}/{name}", f"archive/{name}"]

        print(f"full scan: {full:.2f} ms CPU (median of {args.repeat})")
        print(f"light scan: {light:.2f} ms CPU")
        if hasattr(source, "look_at"):  # not in code before looks at named paths
            event = cpu_ms(lambda: source.look_at(names), args.repeat, archive_and_name)
            print(f"look at one archived file's event paths: {event:.3f} ms CPU")
        print(f"files remembered after: {source.pending_count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
