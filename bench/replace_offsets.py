"""The replace apply and the parse's offsets on ``1m``, in process (issue 9, session 3).

Each run is a fresh child process with a database opened by ``RowStore`` (the server's
settings), on the same generated ``1m`` file; variants alternate within each round.

apply (a ``replace`` of a dataset that already holds the file's 1M rows, checkpointed,
as the benchmark's second and later runs do; the output is the server's view over the
server's input table, three transforms):
  delete+insert  the server's ``apply.apply``: ``DELETE`` every row, ``INSERT … SELECT``
  swap           ``CREATE TABLE`` new name ``AS SELECT`` the new rows, ``DROP`` the old
                 table, ``RENAME`` the new one, the apply log row, ``COMMIT``
  Both are followed by a ``CHECKPOINT``, timed apart (what the 1M deleted rows cost).

parse (``ingest/load.py``'s statement, trimmed text, strict rejects, file order):
  update         the server's: ``CREATE TABLE AS``, ``ADD COLUMN __offset``, ``UPDATE
                 SET __offset = rowid``
  row_number     ``__offset`` in the same statement (``row_number() OVER ()``)
  none           no ``__offset`` at all (a bound)

prototype (``--prototype``; no input table in the file, the output is a table):
  floor          DuckDB's own ``read_csv`` into a table of a database file
  today          the server's flow: ingest, output view and counts, replace apply
  adopt          parse into ``scratch.in_1`` (an in-memory database attached to the
                 connection), the output schema as a TABLE in the file (values, errors,
                 ``__offset``), a replace apply that adopts it as the dataset table
  adopt-any-order  the same, the output table written without keeping insertion order
                 (its ``__offset`` is a column)
  fused          ``read_csv`` straight into that output table (no input table; it would
                 be rebuilt from the kept source file on demand), the same adoption

    .venv/bin/python bench/replace_offsets.py [--repeat 3] [--part apply,parse,prototype]
        [--file 1m|flights]  (flights: its guessed types; prototype: 1m only)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import duckdb

from dsmsyncd.server.jobs.output_schema import guessed_expression
from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.storage.apply import APPLY_LOG, AppliedColumn, ApplyTarget
from dsmsyncd.server.storage.ingest import ParseOptions
from dsmsyncd.server.storage.rowstore import OutputColumnPlan, RowStore
from dsmsyncd.server.transforms import ColumnInput, compile_expression

sys.path.insert(0, str(Path(__file__).parent))
from ingest_variants import _guard
from server_ingest import CONFIG_COLUMNS, generate, generate_flights  # bench/ is not a package

VARIANTS = {
    "apply": ("delete+insert", "swap"),
    "parse": ("update", "row_number", "none"),
    "prototype": ("floor", "today", "adopt", "adopt-any-order", "fused"),
}


class Laps:
    """Wall and CPU seconds per named step, in the order taken."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._written = _written_bytes()
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def written(self) -> None:
        """Bytes this process wrote to storage since the laps began (``/proc``), in MB:
        what the load on the machine does not change."""
        self.times["written_mb"] = (_written_bytes() - self._written) / 1e6

    def lap(self, step: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.times[step] = self.times.get(step, 0.0) + wall - self._wall
        self.times[step + "_cpu"] = self.times.get(step + "_cpu", 0.0) + cpu - self._cpu
        self._wall, self._cpu = wall, cpu

    def skip(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()


def _written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _width(csv: Path) -> int:
    with csv.open(encoding="utf-8") as f:
        return len(f.readline().split(","))


def _read_csv(csv: Path) -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(_width(csv)))
    return (
        f"read_csv('{csv}', columns={{{columns}}}, header=false, skip=1, delim=',', "
        "quote='\"', escape='\"', auto_detect=false, strict_mode=true, ignore_errors=true, "
        "store_rejects=true, rejects_table='t__rejects', rejects_scan='t__rejects_scan', "
        "encoding='utf-8')"
    )


def _trimmed(csv: Path) -> str:
    return ", ".join(_guard(f"c{i}", last=True) for i in range(_width(csv)))


def _plans(names: dict[str, str], guessed: dict[str, str] | None = None) -> list[OutputColumnPlan]:
    """The benchmark's import config (or, with ``guessed``, the expressions the server
    picks for guessed types), compiled over input columns named by ``names``."""
    inputs = {
        field: ColumnInput(f"NULLIF({sql}, '')", SoqlType.TEXT) for field, sql in names.items()
    }
    config = CONFIG_COLUMNS
    if guessed is not None:
        config = [(f, guessed_expression(f, kind)) for f, kind in guessed.items()]
    return [OutputColumnPlan(f, compile_expression(e, inputs)) for f, e in config]


def _cells(plans: list[OutputColumnPlan]) -> str:
    """The output schema's columns as ``output.materialize`` writes them."""
    return "".join(
        f", CAST(({p.compiled.value_sql}) AS {duckdb_type(p.compiled.output_type)}) AS v{i}"
        f", CAST(({p.compiled.error_sql}) AS VARCHAR) AS e{i}"
        for i, p in enumerate(plans)
    )


async def _server_flow(
    store: RowStore, csv: Path, revision: int, laps: Laps | None
) -> tuple[list[AppliedColumn], ApplyTarget]:
    """The server's parse and output schema (``in_1``, ``out_1``), timed into ``laps``."""
    flights = csv.stem == "flights"
    parsed = await store.ingest_upload(
        csv, "in_1", ParseOptions.from_json({}), content_type="text/csv",
        filename=csv.name, guess_types=flights,
    )  # fmt: skip
    if laps:
        laps.lap("parse")
    columns = parsed[0].columns
    guessed = {c.field_name: str(c.guessed_type) for c in columns} if flights else None
    plans = _plans({c.field_name: c.sql_name for c in columns}, guessed)
    stats = await store.materialize("in_1", "out_1", plans)
    if laps:
        laps.lap("transforms")
    applied = [AppliedColumn(p.field_name, p.compiled.output_type, i) for i, p in enumerate(plans)]
    target = ApplyTarget(
        "ds_bench", "out_1", revision, revision, stats.error_rows, stats.total_rows
    )
    return applied, target


def _swap(
    cur: duckdb.DuckDBPyConnection, target: ApplyTarget, applied: list[AppliedColumn]
) -> None:
    """A replace apply as a new table swapped in, in one transaction."""
    values = "".join(f', v{c.source_index} AS "{c.field_name}"' for c in applied)
    cur.execute("BEGIN TRANSACTION")
    row = cur.execute("SELECT coalesce(max(__sid), 0), count(*) FROM ds_bench").fetchone()
    assert row is not None
    cur.execute(
        f"CREATE TABLE ds_bench__new AS SELECT {row[0]} + 1 + __offset AS __sid, "
        f"current_timestamp AS __created_at, current_timestamp AS __updated_at{values} "
        "FROM out_1"
    )
    cur.execute("DROP TABLE ds_bench")
    cur.execute("ALTER TABLE ds_bench__new RENAME TO ds_bench")
    cur.execute(
        f"INSERT INTO {APPLY_LOG} (revision_id, task_set_id, created, updated, deleted, "
        "errors, total_rows_after) VALUES (?, ?, 0, 0, 0, 0, 0)",
        [target.revision_id, target.task_set_id],
    )
    cur.execute("COMMIT")


async def run_apply(variant: str, root: Path, csv: Path) -> dict[str, float]:
    store = RowStore(root / "rows.duckdb")
    try:
        applied, target = await _server_flow(store, csv, 1, None)
        await store.apply(target, applied, "replace", None)
        cur = store._cursor()
        cur.execute("CHECKPOINT")
        laps = Laps()
        second = replace(target, revision_id=2, task_set_id=2)
        if variant == "delete+insert":
            await store.apply(second, applied, "replace", None)
        else:
            _swap(cur, second, applied)
        laps.lap("apply")
        cur.execute("CHECKPOINT")
        laps.lap("checkpoint")
        laps.written()
        rows = cur.execute("SELECT count(*), min(__sid), max(__sid) FROM ds_bench").fetchone()
        assert rows is not None
        assert rows[0] == target.rows, rows
        laps.times["db_mb"] = (root / "rows.duckdb").stat().st_size / 1e6
        cur.close()
    finally:
        store.close()
    return laps.times


def run_parse(variant: str, root: Path, csv: Path) -> dict[str, float]:
    store = RowStore(root / "rows.duckdb")
    cur = store._cursor()
    try:
        cur.execute("SET preserve_insertion_order = true")
        laps = Laps()
        number = ", CAST(row_number() OVER () - 1 AS BIGINT) AS __offset"
        extra = number if variant == "row_number" else ""
        cur.execute(f"CREATE TABLE in_1 AS SELECT {_trimmed(csv)}{extra} FROM {_read_csv(csv)}")
        laps.lap("load")
        if variant == "update":
            cur.execute("ALTER TABLE in_1 ADD COLUMN __offset BIGINT")
            cur.execute("UPDATE in_1 SET __offset = rowid")
        laps.lap("offset")
        cur.execute("CHECKPOINT")
        laps.lap("checkpoint")
        laps.written()
        laps.times["db_mb"] = (root / "rows.duckdb").stat().st_size / 1e6
    finally:
        cur.close()
        store.close()
    return laps.times


def _adopt(
    cur: duckdb.DuckDBPyConnection, output: str, plans: list[OutputColumnPlan], revision: int
) -> None:
    """A replace apply that makes the output table the dataset table (no error rows, no
    row identifier): system columns added, error columns dropped, values renamed."""
    cur.execute("BEGIN TRANSACTION")
    row = cur.execute("SELECT coalesce(max(__sid), 0) FROM ds_bench").fetchone()
    assert row is not None
    cur.execute("DROP TABLE ds_bench")
    for i in range(len(plans)):
        cur.execute(f"ALTER TABLE {output} DROP COLUMN e{i}")
    for i, p in enumerate(plans):
        cur.execute(f'ALTER TABLE {output} RENAME COLUMN v{i} TO "{p.field_name}"')
    now = cur.execute("SELECT CAST(current_timestamp AS VARCHAR)").fetchone()
    assert now is not None
    for column in ("__created_at", "__updated_at"):
        cur.execute(
            f"ALTER TABLE {output} ADD COLUMN {column} TIMESTAMPTZ "
            f"DEFAULT CAST('{now[0]}' AS TIMESTAMPTZ)"
        )
    cur.execute(f"ALTER TABLE {output} RENAME COLUMN __offset TO __sid")
    cur.execute(f"ALTER TABLE {output} RENAME TO ds_bench")
    cur.execute(f"UPDATE ds_bench SET __sid = __sid + {row[0]} + 1")
    cur.execute(
        f"INSERT INTO {APPLY_LOG} (revision_id, task_set_id, created, updated, deleted, "
        "errors, total_rows_after) VALUES (?, ?, 0, 0, 0, 0, 0)",
        [revision, revision],
    )
    cur.execute("COMMIT")


def floor(root: Path, csv: Path) -> dict[str, float]:
    """DuckDB's own ``read_csv`` into a table of a database file (the benchmark's floor)."""
    con = duckdb.connect(str(root / "floor.duckdb"))
    laps = Laps()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', header = true)")
    con.close()
    laps.lap("floor")
    return laps.times


async def run_prototype(variant: str, root: Path, csv: Path) -> dict[str, float]:
    if variant == "floor":
        return floor(root, csv)
    store = RowStore(root / "rows.duckdb")
    try:
        applied, target = await _server_flow(store, csv, 1, None)
        await store.apply(target, applied, "replace", None)
        await store.drop_tables("in_1", "out_1")
        cur = store._cursor()
        cur.execute("CHECKPOINT")
        laps = Laps()
        if variant == "today":
            applied, target = await _server_flow(store, csv, 2, laps)
            await store.apply(target, applied, "replace", None)
            laps.lap("apply")
        else:
            cur.execute("SET preserve_insertion_order = true")
            plans = _plans({f: f"c{i}" for i, (f, _) in enumerate(CONFIG_COLUMNS)})
            if variant.startswith("adopt"):
                cur.execute("ATTACH ':memory:' AS scratch")
                cur.execute(
                    f"CREATE TABLE scratch.in_1 AS SELECT {_trimmed(csv)} FROM {_read_csv(csv)}"
                )
                cur.execute("ALTER TABLE scratch.in_1 ADD COLUMN __offset BIGINT")
                cur.execute("UPDATE scratch.in_1 SET __offset = rowid")
                laps.lap("parse")
                if variant == "adopt-any-order":  # __offset is a column: order is free
                    cur.execute("SET preserve_insertion_order = false")
                cur.execute(
                    f"CREATE TABLE out_1 AS SELECT __offset{_cells(plans)} FROM scratch.in_1"
                )
            else:
                cur.execute(
                    f"CREATE TABLE out_1 AS SELECT CAST(NULL AS BIGINT) AS __offset"
                    f"{_cells(plans)} FROM (SELECT {_trimmed(csv)} FROM {_read_csv(csv)})"
                )
                cur.execute("UPDATE out_1 SET __offset = rowid")
                laps.lap("parse")
            counts = ", ".join(f"count(e{i})" for i in range(len(plans)))
            cur.execute(f"SELECT count(*), {counts} FROM out_1").fetchone()
            laps.lap("transforms")
            _adopt(cur, "out_1", plans, 2)
            laps.lap("apply")
        cur.execute("CHECKPOINT")
        laps.lap("checkpoint")
        laps.written()
        rows = cur.execute(
            "SELECT count(*), min(__sid), max(__sid), count(DISTINCT __created_at), "
            "sum(amount), count(created) FROM ds_bench"
        ).fetchone()
        assert rows is not None
        assert rows[0] == 1_000_000, rows
        laps.times["check"] = float(rows[4])  # the same rows whatever the variant
        laps.times["db_mb"] = (root / "rows.duckdb").stat().st_size / 1e6
        cur.close()
    finally:
        store.close()
    return laps.times


def child(argv: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def report(part: str, runs: dict[str, list[dict[str, float]]]) -> None:
    keys = [k for samples in runs.values() for k in samples[0] if not k.endswith("_cpu")]
    steps = [s for s in dict.fromkeys(keys) if s not in ("db_mb", "check", "written_mb")]
    n = len(next(iter(runs.values())))
    print(f"\n{part}, medians of {n}, seconds (CPU s):")
    print(f"| variant | {' | '.join(steps)} | sum | file (MB) | written (MB) |")
    print("|---|" + "---|" * (len(steps) + 3))
    for name, samples in runs.items():

        def med(key: str, samples: list[dict[str, float]] = samples) -> float:
            return statistics.median(s.get(key, 0.0) for s in samples)

        cells = [f"{med(s):.3f} ({med(s + '_cpu'):.3f})" for s in steps]
        wall = sum(med(s) for s in steps)
        cpu = sum(med(s + "_cpu") for s in steps)
        print(
            f"| {name} | {' | '.join(cells)} | {wall:.3f} ({cpu:.3f}) | {med('db_mb'):.0f} | "
            f"{med('written_mb'):.0f} |"
        )


FILES: dict[str, Callable[[Path], None]] = {
    "1m": lambda path: generate(path, 1_000_000),
    "flights": generate_flights,
}
RUNNERS: dict[str, Callable[[str, Path, Path], dict[str, float]]] = {
    "apply": lambda v, r, c: asyncio.run(run_apply(v, r, c)),
    "parse": run_parse,
    "prototype": lambda v, r, c: asyncio.run(run_prototype(v, r, c)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part", default="apply,parse")
    parser.add_argument("--file", choices=tuple(FILES), default="1m")
    parser.add_argument("--child", nargs=4, metavar=("PART", "VARIANT", "DIR", "CSV"))
    args = parser.parse_args()
    if args.child:
        part, variant, root, csv = args.child
        print(json.dumps(RUNNERS[part](variant, Path(root), Path(csv))))
        return 0
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-replace-") as tmp:
        root = Path(tmp)
        csv = root / f"{args.file}.csv"
        FILES[args.file](csv)
        for part in args.part.split(","):
            print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS[part]}
            for run in range(args.repeat):
                for variant in runs:
                    run_dir = root / f"{part}-{variant}-{run}"
                    run_dir.mkdir()
                    result = child([part, variant, str(run_dir), str(csv)])
                    runs[variant].append(result)
                    shown = " ".join(f"{k} {v:.2f}" for k, v in result.items())
                    print(f"run {run + 1} {part} {variant:13} {shown}", flush=True)
            report(part, runs)
        print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
