"""Every DuckDB statement of one small file's life on the server, with its CPU cost.

``bench/many_files.py`` measures the server's CPU per small file from outside; this
script says where it goes. It runs the server's own row store (``RowStore``, same
settings, a database file) in one process and, per file, the row-store calls the
server's jobs make for a small file of ``bench/many_files.py`` (70 rows, ``id,name``):
``ingest_upload`` with type guessing (which drops the table first), the
first output schema (``materialize``, one guessed transform per column), and an
``update`` apply without a row identifier into one of ``--datasets`` datasets, told the
output schema's error count as the apply job is. Every ``execute`` is timed (wall, and
CPU of this process) through a wrapped cursor; DuckDB's own threads count in the CPU.

The first ``--warm`` files fill the catalog and are not counted. Printed: per statement
(numbers folded into ``N``), how often it ran per file and its mean wall and CPU ms per
file; then the sums per phase, and the database file's size per file after a
``CHECKPOINT`` (what every file leaves on disk). ``--rows-error`` makes every file carry
one row with a cell too many (a row error), to see the row-error path.

    .venv/bin/python bench/small_file_statements.py [--files 300] [--warm 100]
        [--datasets 10] [--rows-error]

Before/after: run it from a copy of this ``bench/`` with ``PYTHONPATH`` pointing at a
``git archive`` of the older code (the server's modules then come from there).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from dsmsyncd.server.jobs.output_schema import guessed_expression
from dsmsyncd.server.storage.apply import AppliedColumn, ApplyTarget
from dsmsyncd.server.storage.ingest import ParseOptions
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, RowStore
from dsmsyncd.server.transforms import ColumnInput, compile_expression

sys.path.insert(0, str(Path(__file__).parent))
from ingest_statements import TimedCursor, TimedStore  # bench/ is not a package

Log = list[tuple[str, str, float, float]]


def small_csv(first: int, rows: int, *, row_error: bool) -> bytes:
    """A file as ``bench/many_files.py`` drops it; with ``row_error`` one bad row too."""
    lines = [b"id,name\n", *(b"%d,row-%d\n" % (i, i) for i in range(first, first + rows))]
    if row_error:
        lines.insert(len(lines) // 2, b"-1,bad,extra\n")
    return b"".join(lines)


def _shape(sql: str) -> str:
    """The statement with its numbers, literals and column lists folded."""
    sql = re.sub(r"\s+", " ", sql)
    sql = re.sub(r"read_csv\(.*", "read_csv(…)", sql)
    sql = re.sub(r"CASE WHEN c(\d+) < '!'.*?END AS c\1", "trim(c)", sql)
    sql = re.sub(r"'[^']*'", "'…'", sql)
    sql = re.sub(r"\d+", "N", sql)
    return sql[:110] + ("…" if len(sql) > 110 else "")


async def one_file(store: RowStore, root: Path, n: int, datasets: int, row_error: bool) -> None:
    path = root / f"f{n}.csv"
    path.write_bytes(small_csv(n * 100, 70, row_error=row_error))
    table = f"in_{n}"
    TimedCursor.phase = "parse"
    (parsed,) = await store.ingest_upload(
        path, table, ParseOptions.from_json({}), content_type="text/csv",
        filename=path.name, guess_types=True,
    )  # fmt: skip
    inputs = {
        c.field_name: ColumnInput(f"NULLIF({c.sql_name}, '')", c.soql_type) for c in parsed.columns
    }
    plans = [
        OutputColumnPlan(
            c.field_name,
            compile_expression(guessed_expression(c.field_name, str(c.guessed_type)), inputs),
        )
        for c in parsed.columns
    ]
    TimedCursor.phase = "output schema"
    stats = await store.materialize(table, f"out_{n}", plans)
    TimedCursor.phase = "apply"
    applied = [AppliedColumn(p.field_name, p.compiled.output_type, i) for i, p in enumerate(plans)]
    target = ApplyTarget(f"ds_{n % datasets}", f"out_{n}", n, n, error_rows=stats.error_rows)
    if "rows" in ApplyTarget.__dataclass_fields__:  # absent before issue 9's i9c: "before" runs
        target = replace(target, rows=stats.total_rows)
    await store.apply(target, applied, "update", None)
    path.unlink()


async def run(args: argparse.Namespace, root: Path) -> tuple[Log, float, float, float]:
    log: Log = []
    store = TimedStore(root / "rows.duckdb", log)
    try:
        for n in range(1, args.warm + 1):
            await one_file(store, root, n, args.datasets, args.rows_error)
        log.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(args.warm + 1, args.warm + args.files + 1):
            await one_file(store, root, n, args.datasets, args.rows_error)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counted = list(log)
        await store._run(lambda cur: cur.execute("CHECKPOINT"))  # its disk, then
    finally:
        store.close()
    disk = (root / "rows.duckdb").stat().st_size / (args.warm + args.files)
    return counted, wall, cpu, disk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--rows-error", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-small-") as tmp:
        log, wall, cpu, disk = asyncio.run(run(args, Path(tmp)))
    per: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    phases: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for phase, sql, w, c in log:
        for row in (per[(phase, _shape(sql))], phases[phase]):
            row[0] += 1
            row[1] += w
            row[2] += c
    files = args.files
    print(f"{files} files after {args.warm} warm-up files; per file: count, wall ms, CPU ms")
    for (phase, shape), (k, w, c) in per.items():
        print(
            f"  {phase:13} {k / files:4.1f} {w / files * 1e3:6.2f} {c / files * 1e3:6.2f}  {shape}"
        )
    for phase, (k, w, c) in phases.items():
        print(f"  total {phase:13} {k / files:5.1f} statements {w / files * 1e3:6.2f} ms wall, "
              f"{c / files * 1e3:6.2f} ms CPU")  # fmt: skip
    statements = sum(p[0] for p in phases.values()) / files
    print(
        f"  all: {statements:.1f} statements; the whole loop {wall / files * 1e3:.2f} ms wall, "
        f"{cpu / files * 1e3:.2f} ms CPU per file"
    )
    print(f"  row store after a CHECKPOINT: {disk / 1e3:.0f} kB per file (warm-up included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
