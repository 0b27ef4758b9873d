"""Alternatives to the server's two big ingest statements, timed side by side on ``1m``.

``ingest_statements.py`` shows that server work on the ``1m`` file is two statements:
the parse's ``CREATE TABLE … AS SELECT … FROM read_csv`` and the apply's ``INSERT …
SELECT``. This times what could replace them, alternating the variants in each round,
each in a fresh database file with the row store's settings (wall and CPU seconds):

parse (``ingest/load.py``'s statement, then ``finish_tables``' numbering):
  server            trimmed text, strict rejects, file order, then ADD COLUMN + UPDATE
                    ``__offset = rowid``
  row_number        ``__offset`` computed in the same statement (``row_number() OVER ()``)
  untrimmed         no trim guard at all (not the server's semantics: a bound)
  first-char guard  trim tested on the first character only (a bound, too)
  any order         ``preserve_insertion_order = false`` (no file order, so no offsets)
  floor             DuckDB's own ``read_csv`` with typed columns (the benchmark's floor,
                    here with the row store's settings)

replace apply (``apply.py``, 1M rows in the dataset already):
  delete+insert     the server's: ``DELETE`` every row, ``INSERT … SELECT`` the new ones
  ctas+swap         ``CREATE TABLE AS`` the new rows, drop the old table, rename

    .venv/bin/python bench/ingest_variants.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dsmsyncd.server.storage.rowstore import RowStore

sys.path.insert(0, str(Path(__file__).parent))
from server_ingest import generate  # bench/ is not a package

WIDTH = 10
_TRIM = "' \t\r\n\x0b\x0c'"


def _guard(column: str, last: bool) -> str:
    test = f"{column} < '!'" + (f" OR right({column}, 1) < '!'" if last else "")
    return f"CASE WHEN {test} THEN trim({column}, {_TRIM}) ELSE {column} END AS {column}"


def _read_csv(path: Path, cells: str, extra: str = "") -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(WIDTH))
    return (
        f"SELECT {cells}{extra} FROM read_csv('{path}', columns={{{columns}}}, header=false, "
        "skip=1, delim=',', quote='\"', escape='\"', auto_detect=false, strict_mode=true, "
        "ignore_errors=true, store_rejects=true, rejects_table='t__rejects', "
        "rejects_scan='t__rejects_scan', encoding='utf-8')"
    )


def _trimmed() -> str:
    return ", ".join(_guard(f"c{i}", last=True) for i in range(WIDTH))


_ROW_NUMBER = ", CAST(row_number() OVER () - 1 AS BIGINT) AS __offset"
_NEW_ROWS = (
    "SELECT 1 + __offset AS __sid, current_timestamp AS __created_at, "
    + ", ".join(f"upper(c{i}) AS v{i}" for i in range(WIDTH))
    + " FROM src"
)


def parse_variants(path: Path) -> dict[str, list[str]]:
    trimmed = _trimmed()
    first_only = ", ".join(_guard(f"c{i}", last=False) for i in range(WIDTH))
    plain = ", ".join(f"c{i}" for i in range(WIDTH))
    ordered = "SET preserve_insertion_order = true"
    any_order = "SET preserve_insertion_order = false"
    number = ["ALTER TABLE t ADD COLUMN __offset BIGINT", "UPDATE t SET __offset = rowid"]
    return {
        "server": [ordered, f"CREATE TABLE t AS {_read_csv(path, trimmed)}", *number],
        "row_number": [ordered, f"CREATE TABLE t AS {_read_csv(path, trimmed, _ROW_NUMBER)}"],
        "untrimmed": [ordered, f"CREATE TABLE t AS {_read_csv(path, plain)}", *number],
        "first-char guard": [ordered, f"CREATE TABLE t AS {_read_csv(path, first_only)}", *number],
        "any order": [any_order, f"CREATE TABLE t AS {_read_csv(path, trimmed)}"],
        "floor": [ordered, f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', header = true)"],
    }  # fmt: skip


def replace_variants() -> dict[str, list[str]]:
    rows = _NEW_ROWS
    return {
        "delete+insert": ["BEGIN", "DELETE FROM ds", f"INSERT INTO ds {rows}", "COMMIT"],
        "ctas+swap": [
            "BEGIN",
            f"CREATE TABLE ds_new AS {rows}",
            "DROP TABLE ds",
            "ALTER TABLE ds_new RENAME TO ds",
            "COMMIT",
        ],
    }


def timed(store: RowStore, statements: list[str]) -> tuple[float, float]:
    """Run ``statements`` on a cursor of the row store, then a checkpoint; (wall, CPU)."""
    cur = store._cursor()  # the store's settings, no worker thread: timed as they run
    wall, cpu = time.perf_counter(), time.process_time()
    for sql in statements:
        cur.execute(sql)
    cur.execute("CHECKPOINT")
    result = time.perf_counter() - wall, time.process_time() - cpu
    cur.close()
    return result


def rounds(
    root: Path, variants: dict[str, list[str]], repeat: int, prepare: Callable[[RowStore], None]
) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for run in range(repeat):
        for name, statements in variants.items():
            store = RowStore(root / f"v{run}-{len(times[name])}-{name[:3]}.duckdb")
            try:
                prepare(store)
                times[name].append(timed(store, statements))
            finally:
                store.close()
    return times


def report(title: str, times: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\n| {title}, medians of {len(next(iter(times.values())))} | wall (s) | CPU (s) |")
    print("|---|---|---|")
    for name, samples in times.items():
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsmsyncd-variants-") as tmp:
        root = Path(tmp)
        csv = root / "1m.csv"
        generate(csv, args.rows)

        def nothing(store: RowStore) -> None:
            return None

        def dataset(store: RowStore) -> None:
            """The input table and a dataset of 1M rows that the replace overwrites."""
            cur = store._cursor()
            cur.execute(f"CREATE TABLE src AS {_read_csv(csv, _trimmed(), _ROW_NUMBER)}")
            cur.execute(f"CREATE TABLE ds AS {_NEW_ROWS}")
            cur.close()

        print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
        report("parse statement", rounds(root, parse_variants(csv), args.repeat, nothing))
        report("replace apply", rounds(root, replace_variants(), args.repeat, dataset))
        print(f"uptime: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
