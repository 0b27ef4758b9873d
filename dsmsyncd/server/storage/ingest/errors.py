"""The row errors of an input table: ``{table}__row_errors``, filled from the census.

One row per record that is not a row of the input table, with its ordinal (``__offset``,
the same numbering as good rows), the physical line it starts on, a type (digest §1.9:
``too_short``, ``too_long``; and ``unquoted_value``, ``line_too_long``,
``invalid_encoding`` for rows that are not even well-formed), the expected and found cell
counts, its raw text, and a message that says what is wrong and how to fix it. The raw
text is split back into cells only when a page is served.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import duckdb

from dsmsyncd.server.storage.sql import literal
from dsmsyncd.server.storage.sql import table as qtable

__all__ = ["create_errors_table", "errors_table", "load_errors", "read_row_errors"]

# How the census writes its errors file (read back below with the same dialect).
ERRORS_DIALECT: dict[str, Any] = {"delimiter": ",", "quotechar": '"', "lineterminator": "\n"}
_COLUMNS = (
    ("__offset", "BIGINT"),
    ("line", "BIGINT"),
    ("type", "VARCHAR"),
    ("wanted", "INTEGER"),
    ("got", "INTEGER"),
    ("raw", "VARCHAR"),
    ("message", "VARCHAR"),
)
# Read back as NULL only if a cell equals this, so an empty raw text stays "".
_NULL_SENTINEL = "\x00\x01dsmsyncd-null\x01\x00"


# Row errors whose cells were read as written; the others also show their raw text.
_WELL_FORMED = ("too_short", "too_long")


def errors_table(table: str) -> str:
    return table + "__row_errors"


def create_errors_table(
    cur: duckdb.DuckDBPyConnection, table: str, separator: str, quote: str
) -> None:
    """An empty row errors table for ``table`` (replacing any earlier one)."""
    name = qtable(errors_table(table))
    cols = ", ".join(f"{col} {kind}" for col, kind in _COLUMNS)
    cur.execute(f"DROP TABLE IF EXISTS {name}")
    cur.execute(
        f"CREATE TABLE {name} ({cols}, delim VARCHAR DEFAULT {literal(separator)}, "
        f"quote VARCHAR DEFAULT {literal(quote)})"
    )


def load_errors(cur: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """Append the errors the census wrote to ``path`` (``ERRORS_DIALECT``, UTF-8)."""
    cols = ", ".join(f"{literal(col)}: {literal(kind)}" for col, kind in _COLUMNS)
    names = ", ".join(col for col, _ in _COLUMNS)
    cur.execute(
        f"INSERT INTO {qtable(errors_table(table))} ({names}) SELECT {names} FROM read_csv("
        f"{literal(str(path))}, columns={{{cols}}}, header=false, delim=',', quote='\"', "
        f"escape='\"', auto_detect=false, strict_mode=true, parallel=false, "
        f"nullstr={literal(_NULL_SENTINEL)}, encoding='utf-8')"
    )


def read_row_errors(
    cur: duckdb.DuckDBPyConnection, table: str, offset: int, limit: int
) -> list[dict[str, Any]]:
    """A page of parse errors in the §3(f) shape, ordered by offset (blocking).

    Each error also names the ``line`` its row starts on and a ``message``. Columns are
    read by name, so a table written by an older version (no ``line``) still reads.
    """
    try:
        result = cur.execute(
            f"SELECT * FROM {qtable(errors_table(table))} ORDER BY __offset LIMIT ? OFFSET ?",
            [limit, offset],
        )
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in result.description or ()]
    page = []
    for values in result.fetchall():
        row = dict(zip(names, values, strict=True))
        contents = _split_raw(row["raw"] or "", row["delim"], row["quote"])
        error: dict[str, Any] = {
            "type": row["type"],
            "wanted": row["wanted"],
            "got": row["got"] or len(contents),
            "contents": contents,
        }
        if row.get("line") is not None:
            error["line"] = row["line"]
        if row["type"] not in _WELL_FORMED:  # the cells above are a best effort
            error["raw"] = (row["raw"] or "").rstrip("\r\n")
        if row.get("message"):
            error["message"] = row["message"]
        page.append({"offset": row["__offset"], "error": error})
    return page


def _split_raw(raw: str, delim: str, quote: str) -> list[str]:
    text = raw.lstrip("\r\n").rstrip("\r\n")
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delim, quotechar=quote))
    except csv.Error:
        return [text]
    cells: list[str] = []
    for row in rows:
        cells.extend(row)
    return cells
