"""Cost of the transform functions that run as Python UDFs, against plain SQL ones.

Compiles each expression with the real compiler, runs its value and error SQL over
``--rows`` generated rows in an in-memory DuckDB with the server's UDFs, materialised
into a table (so every row is computed), and prints a Markdown table: seconds per run
(best of ``--repeat``) and microseconds per row over the SQL-only baseline.

    .venv/bin/python bench/transform_functions.py --rows 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, compile_expression, register_udfs

COLUMNS = {"wkt": ColumnInput('"wkt"', SoqlType.TEXT), "txt": ColumnInput('"txt"', SoqlType.TEXT)}
BASELINE = "to_polygon(`wkt`)"
EXPRESSIONS = [
    BASELINE,
    "centroid(to_polygon(`wkt`))",
    "polylabel(to_polygon(`wkt`))",
    "simplify(to_polygon(`wkt`), 5)",
    "simplify_preserve_topology(to_polygon(`wkt`), 5)",
    "validate_geometry(to_polygon(`wkt`))",
    "repair_geometry(to_polygon(`wkt`))",
    "is_within(make_point(1, 1), to_polygon(`wkt`))",
    "make_location('1 Main St', 'Springfield', 'IL', '62701', centroid(to_polygon(`wkt`)))",
    "to_location(`txt`)",
    "xml_pluck('<a><b>' || `txt` || '</b></a>', '/a/b/text()')",
    "uri_parse('https://example.com/' || `txt`).path",
    "reproject(to_polygon(`wkt`), 'EPSG:3857')",
]


def table(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Distinct rows (the UDF memo must not help): an L polygon scaled per row, an address."""
    con.execute(
        f"""CREATE TABLE t AS SELECT
          'POLYGON ((0 0, ' || s || ' 0, ' || s || ' 1, 1 1, 1 ' || s || ', 0 ' || s || ', 0 0))'
            AS wkt,
          i || ' Main St, Springfield, IL 62701 (39.78, -89.65)' AS txt
        FROM (SELECT i, 2 + i / {rows} AS s FROM range({rows}) r(i))"""
    )


def seconds(con: duckdb.DuckDBPyConnection, expr: str, repeat: int) -> float:
    compiled = compile_expression(expr, COLUMNS)
    columns = f"{compiled.value_sql} AS v, {compiled.error_sql} AS e"
    sql = f"CREATE OR REPLACE TEMP TABLE out AS SELECT {columns} FROM t"
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        con.execute(sql)
        best = min(best, time.perf_counter() - start)
    errors = con.execute("SELECT count(e) FROM out").fetchone()
    assert errors == (0,), (expr, errors)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    con = duckdb.connect()
    register_udfs(con)
    table(con, args.rows)
    base = seconds(con, BASELINE, args.repeat)
    print(f"{args.rows} rows, best of {args.repeat}\n")
    print("| expression | seconds | µs per row over the baseline |")
    print("|---|---|---|")
    for expr in EXPRESSIONS:
        took = base if expr == BASELINE else seconds(con, expr, args.repeat)
        extra = (took - base) / args.rows * 1e6
        shown = expr.replace("|", "\\|")  # a pipe would end the table cell
        print(f"| `{shown}` | {took:.2f} | {extra:.1f} |")


if __name__ == "__main__":
    main()
