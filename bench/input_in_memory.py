"""What an input table held in memory instead of the database file would give (issue 9).

The server parses an upload into the input table ``in_N`` in its DuckDB database file,
then the apply writes the typed rows into the dataset table in the same file: every row
is written to the file twice. The input table is derived data (the uploaded source file
is kept), so it could live in an in-memory database attached to the same connection
(``ATTACH ':memory:' AS scratch``), its output view beside it, and only the dataset
table be written to the file.

This runs the server's own flow (``RowStore``, its settings; ingest, materialise, a
``replace`` apply into a new dataset, told the error count as the apply job is) twice
per round, alternating: ``file`` as the server does it, ``memory`` with every statement
on ``in_1``, its row errors and ``out_1`` redirected to ``scratch``. Each run is a fresh
child process, so its peak RSS is its own; the floor (DuckDB's ``read_csv`` of the same
file into a table in a database file, a default connection) runs in a child too. On
``1m``, ``fused`` is a bound for having no input table at all: one statement from
``read_csv`` straight into the dataset's typed columns (trimmed, the three transforms as
plain casts, no error columns, no offsets), into the row store's file.

    .venv/bin/python bench/input_in_memory.py [--file 1m|flights] [--repeat 3]
        [--memory-limit 256MB]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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
from ingest_variants import _guard
from server_ingest import CONFIG_COLUMNS, generate, generate_flights  # bench/ is not a package

_SCRATCH_NAMES = re.compile(r'(?<![.\w])"((?:in|out)_1(?:__errors)?)"')


def _trimmed(column: str) -> str:
    return _guard(column, last=True).rsplit(" AS ", 1)[0]


class ScratchCursor:
    """A cursor that sends every statement on ``in_1``, its errors and ``out_1`` to
    ``scratch`` (an in-memory database attached to the connection)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Any = None) -> ScratchCursor:
        sql = _SCRATCH_NAMES.sub(r'scratch."\1"', sql)
        if isinstance(params, list):
            params = [_scratch_name(p) for p in params]
        self._cur.execute(sql, params)
        return self

    def table(self, name: str) -> duckdb.DuckDBPyRelation:
        return self._cur.table(_scratch_name(name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def _scratch_name(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"(in|out)_1(__errors)?", value):
        return f"scratch.{value}"
    return value


class ScratchStore(RowStore):
    def __init__(self, path: Path, memory_limit: str) -> None:
        super().__init__(path, memory_limit=memory_limit)
        assert self._con is not None
        self._con.execute("ATTACH ':memory:' AS scratch")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return ScratchCursor(super()._cursor())  # type: ignore[return-value]


async def one_run(
    mode: str, root: Path, csv: Path, flights: bool, memory_limit: str
) -> dict[str, float]:
    path = root / f"rows-{mode}.duckdb"
    store: RowStore = (
        ScratchStore(path, memory_limit)
        if mode == "memory"
        else RowStore(path, memory_limit=memory_limit)
    )
    times: dict[str, float] = {}
    try:
        wall, cpu = time.perf_counter(), time.process_time()

        def lap(phase: str) -> None:
            nonlocal wall, cpu
            times[phase] = time.perf_counter() - wall
            times[phase + "_cpu"] = time.process_time() - cpu
            wall, cpu = time.perf_counter(), time.process_time()

        parsed = await store.ingest_upload(
            csv, "in_1", ParseOptions.from_json({}), content_type="text/csv",
            filename=csv.name, guess_types=flights,
        )  # fmt: skip
        lap("parse")
        table = parsed[0]
        inputs = {
            c.field_name: ColumnInput(f"NULLIF({c.sql_name}, '')", c.soql_type)
            for c in table.columns
        }
        config = CONFIG_COLUMNS
        if flights:
            config = [
                (c.field_name, guessed_expression(c.field_name, str(c.guessed_type)))
                for c in table.columns
            ]
        plans = [OutputColumnPlan(f, compile_expression(e, inputs)) for f, e in config]
        stats = await store.materialize("in_1", "out_1", plans)
        lap("transforms")
        applied = [
            AppliedColumn(p.field_name, p.compiled.output_type, i) for i, p in enumerate(plans)
        ]
        target = replace(ApplyTarget("ds_bench", "out_1", 1, 1), error_rows=stats.error_rows)
        await store.apply(target, applied, "replace", None)
        lap("apply")
    finally:
        store.close()
    times["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times["db_mb"] = path.stat().st_size / 1e6
    return times


def floor(root: Path, csv: Path) -> dict[str, float]:
    path = root / "floor.duckdb"
    con = duckdb.connect(str(path))
    wall, cpu = time.perf_counter(), time.process_time()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', header = true)")
    con.close()
    return {"floor": time.perf_counter() - wall, "floor_cpu": time.process_time() - cpu}


def fused(root: Path, csv: Path, memory_limit: str) -> dict[str, float]:
    """A bound for "no input table at all" on ``1m``: one statement from ``read_csv`` to
    the dataset's typed columns (the server's trim guard, strict rejects, the three
    transforms as plain casts, no error columns, no offsets) into the row store's file."""
    store = RowStore(root / "fused.duckdb", memory_limit=memory_limit)
    cells = [_trimmed(f"c{i}") for i in range(10)]
    cells[1] = f"upper({cells[1]})"
    cells[3] = f"TRY_CAST({cells[3]} AS DECIMAL(38, 18))"
    cells[7] = f"TRY_CAST({cells[7]} AS TIMESTAMP)"
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(10))
    cur = store._cursor()
    wall, cpu = time.perf_counter(), time.process_time()
    cur.execute(
        f"CREATE TABLE ds AS SELECT {', '.join(f'{c} AS c{i}' for i, c in enumerate(cells))} "
        f"FROM read_csv('{csv}', columns={{{columns}}}, header=false, skip=1, delim=',', "
        "quote='\"', escape='\"', auto_detect=false, strict_mode=true, ignore_errors=true, "
        "store_rejects=true)"
    )
    cur.execute("CHECKPOINT")
    result = {"fused": time.perf_counter() - wall, "fused_cpu": time.process_time() - cpu}
    cur.close()
    store.close()
    return result


def child(argv: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


_PHASES = ("parse", "transforms", "apply")


def summary(runs: dict[str, list[dict[str, float]]], title: str) -> None:
    """Medians per mode (wall and CPU per phase), and each sum over the floor's."""

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    floor_wall, floor_cpu = med("floor", "floor"), med("floor", "floor_cpu")
    print(f"\n{title}, medians of {len(runs['floor'])} (s; CPU s in brackets):")
    print("| mode | parse | transforms | apply | sum | sum / floor | peak RSS (MB) | file (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in ("file", "memory"):
        cells = [f"{med(mode, p):.2f} ({med(mode, p + '_cpu'):.2f})" for p in _PHASES]
        wall = sum(med(mode, p) for p in _PHASES)
        cpu = sum(med(mode, p + "_cpu") for p in _PHASES)
        print(
            f"| {mode} | {' | '.join(cells)} | {wall:.2f} ({cpu:.2f}) | "
            f"{wall / floor_wall:.2f}x ({cpu / floor_cpu:.2f}x) | {med(mode, 'rss_mb'):.0f} | "
            f"{med(mode, 'db_mb'):.0f} |"
        )
    print(f"| floor: read_csv into a database file | | | | {floor_wall:.2f} ({floor_cpu:.2f}) |")
    if runs.get("fused"):
        wall, cpu = med("fused", "fused"), med("fused", "fused_cpu")
        print(
            f"| fused bound: read_csv into typed columns | | | | {wall:.2f} ({cpu:.2f}) | "
            f"{wall / floor_wall:.2f}x ({cpu / floor_cpu:.2f}x) |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", choices=("1m", "flights"), default="1m")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="256MB")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DIR", "CSV"))
    args = parser.parse_args()
    flights = args.file == "flights"
    if args.child:
        mode, root, csv = args.child[0], Path(args.child[1]), Path(args.child[2])
        if mode == "floor":
            result = floor(root, csv)
        elif mode == "fused":
            result = fused(root, csv, args.memory_limit)
        else:
            result = asyncio.run(one_run(mode, root, csv, flights, args.memory_limit))
        print(json.dumps(result))
        return 0
    print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-inmem-") as tmp:
        root = Path(tmp)
        csv = root / f"{args.file}.csv"
        if flights:
            generate_flights(csv)
        else:
            generate(csv, 1_000_000)
        runs: dict[str, list[dict[str, float]]] = {"floor": [], "file": [], "memory": []}
        if not flights:
            runs["fused"] = []
        extra = ["--file", args.file, "--memory-limit", args.memory_limit]
        for run in range(args.repeat):
            for mode in runs:
                run_dir = root / f"{mode}-{run}"
                run_dir.mkdir()
                result = child([mode, str(run_dir), str(csv), *extra])
                runs[mode].append(result)
                shown = " ".join(f"{k} {v:.2f}" for k, v in result.items())
                print(f"run {run + 1} {mode:6} {shown}")
        summary(runs, f"{args.file}, memory_limit {args.memory_limit}")
    print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
