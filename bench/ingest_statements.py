"""Where the server's ingest time goes: every DuckDB statement of parse, transforms and
apply, timed in one process on the ``1m`` (or ``--file flights``) file of
``server_ingest.py``.

The row store is the server's own (``RowStore``, same settings and database file), its
cursors wrapped so each ``execute`` is timed with its wall time and this process's CPU
time. The flow is the server's for that file: ingest with an import config (no type
guess), materialise the three-transform output schema (``flights``: guess the types
and materialise one guessed transform per column, as without a config), then a
``replace`` apply into a new dataset and a second ``replace`` over the rows of the
first (what the benchmark's later runs do), told the output schema's error count as
the server's apply job is (``--test-errors``: not told, so every row is tested for
errors). Statements over ``--min-ms`` are printed in order, then a sum per phase.

    .venv/bin/python bench/ingest_statements.py [--rows 1000000] [--repeat 2] [--min-ms 5]
        [--file 1m|flights] [--test-errors]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb

from dsmsyncd.server.jobs.output_schema import guessed_expression
from dsmsyncd.server.storage.apply import AppliedColumn, ApplyTarget
from dsmsyncd.server.storage.ingest import ParseOptions
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, RowStore
from dsmsyncd.server.transforms import ColumnInput, compile_expression

sys.path.insert(0, str(Path(__file__).parent))
from server_ingest import CONFIG_COLUMNS, generate, generate_flights  # bench/ is not a package


class TimedCursor:
    """A cursor whose ``execute`` calls are recorded as (phase, sql, wall s, CPU s).

    ``phase`` is a class attribute: the row store opens a cursor per call, in a worker
    thread, and the calls run one at a time here.
    """

    phase = ""

    def __init__(self, cur: duckdb.DuckDBPyConnection, log: list[tuple[str, str, float, float]]):
        self._cur = cur
        self._log = log

    def execute(self, sql: str, *args: Any) -> TimedCursor:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            self._cur.execute(sql, *args)
        finally:  # a statement that fails (an expected look-up miss) counts too
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            self._log.append((TimedCursor.phase, sql, wall, cpu))
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class TimedStore(RowStore):
    def __init__(self, path: Path, log: list[tuple[str, str, float, float]]) -> None:
        super().__init__(path)
        self._log = log

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return TimedCursor(super()._cursor(), self._log)  # type: ignore[return-value]


def _short(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql)
    sql = re.sub(r"CASE WHEN c(\d+) < '!'.*?END AS c\1", r"trim(c\1)", sql)
    return sql[:150] + ("…" if len(sql) > 150 else "")


async def one_run(
    root: Path, csv: Path, run: int, test_errors: bool, flights: bool
) -> list[tuple[str, str, float, float]]:
    log: list[tuple[str, str, float, float]] = []
    store = TimedStore(root / f"rows-{run}.duckdb", log)
    try:
        TimedCursor.phase = "parse"
        parsed = await store.ingest_upload(
            csv, "in_1", ParseOptions.from_json({}), content_type="text/csv",
            filename=csv.name, guess_types=flights,
        )  # fmt: skip
        table = parsed[0]
        inputs = {
            c.field_name: ColumnInput(f"NULLIF({c.sql_name}, '')", c.soql_type)
            for c in table.columns
        }
        config = CONFIG_COLUMNS
        if flights:  # no config: the guessed transforms, as the server makes them
            config = [
                (c.field_name, guessed_expression(c.field_name, str(c.guessed_type)))
                for c in table.columns
            ]
        plans = [OutputColumnPlan(f, compile_expression(e, inputs)) for f, e in config]
        TimedCursor.phase = "transforms"
        stats = await store.materialize("in_1", "out_1", plans)
        applied: Sequence[AppliedColumn] = [
            AppliedColumn(p.field_name, p.compiled.output_type, i) for i, p in enumerate(plans)
        ]
        for revision, phase in ((1, "apply (new dataset)"), (2, "apply (replace)")):
            TimedCursor.phase = phase
            target = ApplyTarget("ds_bench", "out_1", revision, revision)
            if not test_errors:
                target = replace(target, error_rows=stats.error_rows)
            await store.apply(target, applied, "replace", None)
    finally:
        store.close()
    return log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", choices=("1m", "flights"), default="1m")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the 1m file")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--min-ms", type=float, default=5.0)
    parser.add_argument(
        "--test-errors",
        action="store_true",
        help="apply as if the error count were unknown (every row tested, as before issue 9)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-stmts-") as tmp:
        root = Path(tmp)
        csv = root / f"{args.file}.csv"
        if args.file == "flights":
            generate_flights(csv)
        else:
            generate(csv, args.rows)
        for run in range(args.repeat):
            log = asyncio.run(one_run(root, csv, run, args.test_errors, args.file == "flights"))
            print(f"\nrun {run + 1}: statements over {args.min_ms} ms (wall s, CPU s)")
            totals: dict[str, list[float]] = {}
            for phase, sql, wall, cpu in log:
                total = totals.setdefault(phase, [0.0, 0.0])
                total[0] += wall
                total[1] += cpu
                if wall * 1000 >= args.min_ms:
                    print(f"  {phase:24} {wall:6.3f} {cpu:6.3f}  {_short(sql)}")
            for phase, (wall, cpu) in totals.items():
                print(f"  total {phase:24} {wall:6.3f} s wall, {cpu:6.3f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
